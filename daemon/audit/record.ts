/** One credential handed to a local process, as the audit log records it. Never a secret. */
export interface HandoutEvent {
  time: Date;
  profile: string;
  endpoint: string;
  accessKeyId: string;
  expiration: Date;
  uid: number;
  pid: number | null;
  exe: string | null;
  argv0: string | null;
}
