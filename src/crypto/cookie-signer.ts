import { createHmac, createSecretKey, timingSafeEqual, type KeyObject } from 'node:crypto';

/**
 * Signs and checks node-oidc-provider's cookies (the `.sig` companions of `_session`, `_interaction`,
 * ...), as a drop-in for the Keygrip object the `cookies` package would build from a key list.
 *
 * Same signatures as Keygrip's defaults (HMAC-SHA1, base64 made URL-safe without padding, which is
 * exactly base64url), so cookies signed before an upgrade stay valid; the first key signs, every key
 * verifies (rotation). The difference is the comparison: Keygrip's `tsscmp` hides timing by computing two
 * more HMACs per check, with random keys; here the two equal-length digests are compared with
 * crypto.timingSafeEqual, one HMAC per check and key. Each request to a provider page checks one to
 * three signed cookies, so this is measurable (bench/README.md).
 */
export interface CookieSigner {
  sign(data: string): string;
  verify(data: string, digest: string): boolean;
  index(data: string, digest: string): number;
}

export function cookieSigner(keys: readonly string[]): CookieSigner {
  if (keys.length === 0) throw new Error('cookieSigner needs at least one key');
  // key objects made once: a string key is converted again on every createHmac
  const secrets: KeyObject[] = keys.map((key) => createSecretKey(Buffer.from(key, 'utf8')));
  const hmac = (data: string, key: KeyObject): string => createHmac('sha1', key).update(data).digest('base64url');
  const index = (data: string, digest: string): number => {
    if (typeof data !== 'string' || typeof digest !== 'string') return -1;
    const got = Buffer.from(digest, 'utf8');
    for (let i = 0; i < secrets.length; i++) {
      const want = Buffer.from(hmac(data, secrets[i]!), 'utf8');
      if (got.length === want.length && timingSafeEqual(got, want)) return i;
    }
    return -1;
  };
  return {
    sign: (data) => hmac(data, secrets[0]!),
    verify: (data, digest) => index(data, digest) > -1,
    index,
  };
}
