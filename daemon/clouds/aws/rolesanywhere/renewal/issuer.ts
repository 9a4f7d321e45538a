/** What every renewal method is: something that turns a CSR into a certificate chain (PEM, leaf first). */
export interface IssueRequest {
  csrPem: string;
  /** Now, on the daemon's clock. */
  now: number;
  /** Lifetime to ask for, in ms (methods that let the requester choose). */
  validityMs: number;
  signal?: AbortSignal;
}

export interface CertificateIssuer {
  /** The method's name for /health and messages: "credport-ca", "command", "aws-private-ca". */
  readonly method: string;
  /** Where the certificate comes from, for messages: a directory, a program, a CA ARN. */
  readonly source: string;
  /** The chain as PEM text, untrusted: the caller checks it. Failures are RenewalErrors. */
  issue(request: IssueRequest): Promise<string>;
}
