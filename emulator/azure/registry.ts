// The directory the Entra emulator knows: applications (or user-assigned managed identities, which
// federate the same way) by tenant and client id, each with its federated identity credentials.

export interface FederatedCredentialSpec {
  /** Matched exactly against the assertion's iss. */
  issuer: string;
  /** Matched exactly against its sub (Entra's wildcard subjects exist for a few named issuers only). */
  subject: string;
  /** Default ["api://AzureADTokenExchange"]. */
  audiences?: string[];
}

export interface ApplicationSpec {
  tenantId: string;
  clientId: string;
  federatedCredentials: FederatedCredentialSpec[];
}

export interface Application {
  tenantId: string;
  clientId: string;
  federatedCredentials: Array<Required<FederatedCredentialSpec>>;
}

/** Entra allows at most 20 federated credentials per application. */
export const MAX_FEDERATED_CREDENTIALS = 20;

export class EntraDirectory {
  readonly #apps = new Map<string, Application>();

  add(spec: ApplicationSpec): Application {
    if (spec.federatedCredentials.length > MAX_FEDERATED_CREDENTIALS)
      throw new Error(`at most ${MAX_FEDERATED_CREDENTIALS} federated identity credentials per application`);
    const app: Application = {
      tenantId: spec.tenantId.toLowerCase(),
      clientId: spec.clientId.toLowerCase(),
      federatedCredentials: spec.federatedCredentials.map((f) => ({
        issuer: f.issuer,
        subject: f.subject,
        audiences: f.audiences ?? ['api://AzureADTokenExchange'],
      })),
    };
    this.#apps.set(`${app.tenantId}/${app.clientId}`, app);
    return app;
  }

  find(tenantId: string, clientId: string): Application | undefined {
    return this.#apps.get(`${tenantId.toLowerCase()}/${clientId.toLowerCase()}`);
  }
}
