/** Where an azure-federated profile's client assertion comes from: credport's RSA key, or Google. */

export interface ClientAssertion {
  /** A JWT: a credential, never logged. */
  token: string;
  /** Our clock. */
  expiration: Date;
}

export interface AssertionSource {
  /** An assertion valid for at least `minSeconds` more (the federated token file wants an hour). */
  get(minSeconds: number, signal?: AbortSignal): Promise<ClientAssertion>;
  /** For /health: what signs it. */
  readonly description: string;
  /** False when signing needs a person present. */
  readonly unattended: boolean;
  close(): Promise<void>;
}
