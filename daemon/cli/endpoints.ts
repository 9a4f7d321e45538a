/** The URLs a client on this machine uses to reach the daemon's endpoints, in the form AWS documents them. */
import type { ResolvedConfig } from '../config/load.js';
import { clientBaseUrl } from './shared.js';

/**
 * AWS_CONTAINER_CREDENTIALS_FULL_URI for a profile: the default profile at /v1/credentials, the
 * others at /v1/credentials/NAME. Always an IP literal (127.0.0.1 for localhost) and a non-empty
 * path: SDKs accept a full URI over plain HTTP only for loopback addresses they can see as such.
 */
export function credentialsUrl(cfg: ResolvedConfig, profile?: string): string {
  const path = profile === undefined || profile === cfg.defaultProfile ? '/v1/credentials' : `/v1/credentials/${encodeURIComponent(profile)}`;
  return clientBaseUrl(cfg.daemon.listen) + path;
}

/** AWS_EC2_METADATA_SERVICE_ENDPOINT (serves the default profile), without a trailing slash as in AWS's documentation. */
export function imdsEndpoint(cfg: ResolvedConfig): string {
  return clientBaseUrl(cfg.daemon.listen);
}
