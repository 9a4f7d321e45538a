/** Which identity-provider URLs the emulated services will fetch from. */

function isLoopbackHostname(hostname: string): boolean {
  // URL.hostname keeps IPv6 brackets; names other than localhost are not resolved, so they never count.
  if (hostname === 'localhost' || hostname === '[::1]') return true;
  return /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(hostname);
}

/**
 * STS only talks https to identity providers. The emulator also allows plain http to loopback, where its
 * own /oidc lives, and nothing else: a discovery document cannot send it to fetch from the network.
 */
export function isAllowedIdpUrl(url: URL): boolean {
  return url.protocol === 'https:' || (url.protocol === 'http:' && isLoopbackHostname(url.hostname));
}
