import { createHmac, timingSafeEqual } from 'node:crypto';

/** A CSRF token bound to one interaction: HMAC of its uid under a key derived from LATCHKEY_SECRET. */
export function csrfToken(key: Buffer, uid: string): string {
  return createHmac('sha256', key).update(`interaction:${uid}`).digest('base64url');
}

export function csrfValid(key: Buffer, uid: string, candidate: string | undefined): boolean {
  if (!candidate) return false;
  const expected = Buffer.from(csrfToken(key, uid));
  const actual = Buffer.from(candidate);
  return expected.length === actual.length && timingSafeEqual(expected, actual);
}
