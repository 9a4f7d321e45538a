// The access tokens the emulator's Google services issued. They are opaque random strings, as Google's
// are to their holders; what they stand for (which principal or service account, which scopes, until
// when) lives only here, so IAM Credentials can authenticate a caller and a test can check that a
// client ended up holding a token this emulator issued.

import { randomBytes } from 'node:crypto';

/** A federated token from STS: a pool identity. */
export interface FederatedTokenRecord {
  kind: 'federated';
  /** principal://iam.googleapis.com/projects/N/locations/global/workloadIdentityPools/P/subject/SUB */
  principal: string;
  /** projects/N/locations/global/workloadIdentityPools/P */
  pool: string;
  /** The mapped google.subject (the JWT's sub). */
  subject: string;
  /** The provider's full resource name: the audience of the exchange. */
  provider: string;
  scopes: readonly string[];
  expiresAt: Date;
}

/** A service-account token from generateAccessToken. */
export interface ServiceAccountTokenRecord {
  kind: 'service-account';
  email: string;
  /** The federated principal that impersonated the account. */
  impersonatedBy: string;
  scopes: readonly string[];
  expiresAt: Date;
}

export type GoogleTokenRecord = FederatedTokenRecord | ServiceAccountTokenRecord;

/** Enough for any test; beyond it, expired entries are dropped first. */
const MAX_RECORDS = 10_000;

export class GoogleTokenStore {
  private readonly records = new Map<string, GoogleTokenRecord>();

  constructor(private readonly now: () => number) {}

  /** Records and returns a new token. The prefix tells a reader of a test log which kind it is, nothing more. */
  issue(record: GoogleTokenRecord): string {
    if (this.records.size >= MAX_RECORDS) this.prune();
    const token = `${record.kind === 'federated' ? 'gcpemu-fed.' : 'gcpemu-sa.'}${randomBytes(48).toString('base64url')}`;
    this.records.set(token, record);
    return token;
  }

  lookup(token: string): GoogleTokenRecord | undefined {
    return this.records.get(token);
  }

  private prune(): void {
    const nowMs = this.now();
    for (const [token, record] of this.records) if (record.expiresAt.getTime() <= nowMs) this.records.delete(token);
    // Still full of live tokens: forget the oldest, as a real service would eventually revoke them.
    for (const token of this.records.keys()) {
      if (this.records.size < MAX_RECORDS) break;
      this.records.delete(token);
    }
  }
}
