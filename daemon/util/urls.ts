/** Checks on the upstream URLs a config names. */

export function isLoopbackHost(host: string): boolean {
  const h = host.replace(/^\[|\]$/g, '').toLowerCase();
  return h === 'localhost' || h.startsWith('127.') || h === '::1';
}

/**
 * An upstream URL: http(s), https unless the host is loopback (a local emulator), no query,
 * fragment or credentials. Problems are pushed as "KEY: what is wrong".
 */
export function checkUrl(value: string, key: string, problems: string[]): void {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    problems.push(`${key}: expected a URL, got "${value}"`);
    return;
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') {
    problems.push(`${key}: expected an http(s) URL, got "${value}"`);
  } else if (url.protocol === 'http:' && !isLoopbackHost(url.hostname)) {
    problems.push(
      `${key}: must use https (plain http is accepted only for loopback hosts, such as a local emulator): the JWT and credentials would cross the network unencrypted, got "${value}"`,
    );
  }
  if (url.search || url.hash) problems.push(`${key}: must not have a query or fragment`);
  if (url.username || url.password) problems.push(`${key}: must not contain credentials`);
}
