import { invalid } from '../errors.js';

const DEV_HOSTS = new Set(['localhost', '127.0.0.1', '[::1]']);

/**
 * A trusted issuer (and its jwks_uri) must be https; plain http only for local development and tests
 * (localhost, *.localhost, 127.0.0.1, [::1]). No query, fragment or credentials.
 */
export function checkIssuerUrl(value: string, what = 'issuer'): string {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw invalid(`${what} "${value}" is not an absolute URL`);
  }
  const devHost = DEV_HOSTS.has(url.hostname) || url.hostname.endsWith('.localhost');
  if (url.protocol !== 'https:' && !(url.protocol === 'http:' && devHost)) {
    throw invalid(`${what} "${value}" must use https (plain http only for localhost, *.localhost and 127.0.0.1)`);
  }
  if (url.username || url.password) throw invalid(`${what} "${value}" must not contain credentials`);
  if (what === 'issuer' && (url.search || url.hash || value.includes('#') || value.includes('?'))) {
    throw invalid(`${what} "${value}" must not have a query or fragment`);
  }
  return value;
}
