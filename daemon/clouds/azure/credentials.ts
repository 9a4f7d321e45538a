/** What an azure-federated profile holds: one Entra access token per configured resource. */

export interface AzureAccessToken {
  /** The scope asked of Entra (RESOURCE/.default). */
  scope: string;
  /** The resource the managed identity protocol names (the scope without /.default). */
  resource: string;
  accessToken: string;
  /** Our clock. */
  expiration: Date;
}

export interface AzureCredentials {
  /** The earliest of the tokens' expirations: the refresher renews them together. */
  readonly expiration: Date;
  readonly tokens: readonly AzureAccessToken[];
  readonly clientId: string;
}

/** The managed identity protocol's `resource` for an Entra scope: https://vault.azure.net/.default -> https://vault.azure.net */
export function resourceOf(scope: string): string {
  return scope.replace(/\/\.default$/, '');
}

/**
 * The configured token a managed identity request's `resource` names. Clients write the same resource
 * with and without a trailing slash (https://management.azure.com/ is ARM's own spelling).
 */
export function tokenFor(c: AzureCredentials, resource: string): AzureAccessToken | undefined {
  const want = resource.replace(/\/+$/, '');
  return c.tokens.find((t) => t.resource.replace(/\/+$/, '') === want);
}
