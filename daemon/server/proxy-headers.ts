/** Recognising a request that came through a proxy, which the metadata-style endpoints refuse. */

/**
 * Headers a proxy adds. Real IMDS refuses a token PUT with X-Forwarded-For, and GCE's metadata server any request
 * with it, so that a misconfigured proxy on the box cannot relay tokens; every proxy marker means the same.
 */
const PROXY_HEADERS = [
  'forwarded',
  'via',
  'x-real-ip',
  'true-client-ip',
  'x-client-ip',
  'x-originating-ip',
  'client-ip',
  'x-cluster-client-ip',
];

export function proxyMarker(headers: Record<string, unknown>): string | undefined {
  for (const name of Object.keys(headers)) if (name.startsWith('x-forwarded-') || PROXY_HEADERS.includes(name)) return name;
  return undefined;
}
