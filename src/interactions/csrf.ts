import { createHmac, timingSafeEqual } from 'node:crypto';

/** A form token bound to `binding` (what the form belongs to): HMAC under a key derived from LATCHKEY_SECRET. */
export function formToken(key: Buffer, binding: string): string {
  return createHmac('sha256', key).update(binding).digest('base64url');
}

export function formTokenValid(key: Buffer, binding: string, candidate: string | undefined): boolean {
  if (!candidate) return false;
  const expected = Buffer.from(formToken(key, binding));
  const actual = Buffer.from(candidate);
  return expected.length === actual.length && timingSafeEqual(expected, actual);
}

/** A CSRF token bound to one interaction. */
export function csrfToken(key: Buffer, uid: string): string {
  return formToken(key, `interaction:${uid}`);
}

export function csrfValid(key: Buffer, uid: string, candidate: string | undefined): boolean {
  return formTokenValid(key, `interaction:${uid}`, candidate);
}
