/**
 * The upstream `picture` is kept only when it is an https URL on a host of the allow-list
 * (`federation.safeImageHosts`): exact names, or `*.example.com` for any subdomain of example.com.
 * Anything else (other hosts, http, data: or javascript: URLs, credentials, odd ports) is dropped.
 */
export function safePicture(picture: unknown, allowedHosts: readonly string[]): string | undefined {
  if (typeof picture !== 'string' || picture.length > 2000) return undefined;
  let url: URL;
  try {
    url = new URL(picture);
  } catch {
    return undefined;
  }
  if (url.protocol !== 'https:' || url.username || url.password || url.port) return undefined;
  const host = url.hostname.toLowerCase();
  const allowed = allowedHosts.some((entry) => {
    const pattern = entry.toLowerCase();
    if (pattern.startsWith('*.')) {
      const suffix = pattern.slice(1); // ".example.com"
      return host.endsWith(suffix) && host.length > suffix.length;
    }
    return host === pattern;
  });
  return allowed ? url.href : undefined;
}
