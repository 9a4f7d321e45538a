/** What a Google Cloud provider hands out. Holds a bearer token: never logged, never in an error. */
export interface GcpAccessToken {
  accessToken: string;
  /** Local clock (the service's expiry shifted by the learnt clock skew). */
  expiration: Date;
  scopes: string[];
  /** The service account email, or the federated principal (principal://iam.googleapis.com/...). */
  principal: string;
}
