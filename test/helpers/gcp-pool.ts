/**
 * The Google side most gcp-wif tests start from: one workload identity pool provider ("devices" /
 * "credport") trusting the stack's issuer, a service account bound to it, and the profile table
 * pointing at the emulator. Tests that need another pool make their own.
 */
import type { Emulator } from '../../emulator/index.js';

export const GCP_PROJECT_NUMBER = '123456789012';
export const GCP_SA = 'deployer@my-project.iam.gserviceaccount.com';
export const GCP_AUDIENCE = `//iam.googleapis.com/projects/${GCP_PROJECT_NUMBER}/locations/global/workloadIdentityPools/devices/providers/credport`;

/** A gcp-wif profile for that pool, on the emulator's endpoints; `extra` adds or overrides keys. */
export function gcpWifProfile(extra: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    type: 'gcp-wif',
    audience: GCP_AUDIENCE,
    service_account: GCP_SA,
    project_id: 'my-project',
    sts_endpoint: 'EMULATOR-GCP-STS',
    iamcredentials_endpoint: 'EMULATOR-GCP-IAM',
    ...extra,
  };
}

/** startStack's beforeStart: the pool trusts the stack's issuer and may impersonate GCP_SA. */
export function trustStackIssuer(e: Emulator): void {
  const provider = e.createWorkloadIdentityPoolProvider({
    projectNumber: GCP_PROJECT_NUMBER,
    poolId: 'devices',
    providerId: 'credport',
    issuerUri: e.issuerBaseUrl,
  });
  e.bindServiceAccount(GCP_SA, provider.principalSet);
}
