import { createHmac, timingSafeEqual } from 'node:crypto';
import type { Context } from 'koa';

/** Where the account page's cookies live: only requests under /account carry them. */
export const COOKIE_PATH = '/account';

export interface CookieOptions {
  /** Lifetime in seconds; the cookie is also refused by `openCookie` once `exp` in its payload has passed. */
  maxAgeSeconds: number;
  /** Secure flag: set when the issuer is https. */
  secure: boolean;
}

const mac = (key: Buffer, name: string, body: string): Buffer => createHmac('sha256', key).update(`${name}=${body}`).digest();

/**
 * A cookie value the server can trust again: base64url(JSON) "." base64url(HMAC-SHA256(name=body)).
 * The cookie's name is part of the MAC, so one of our cookies cannot be passed off as another.
 */
export function sealCookie(key: Buffer, name: string, payload: Record<string, unknown>): string {
  const body = Buffer.from(JSON.stringify(payload), 'utf8').toString('base64url');
  return `${body}.${mac(key, name, body).toString('base64url')}`;
}

/** The payload of a cookie made by `sealCookie`, or undefined when it is missing, altered or expired (`exp`, epoch ms). */
export function openCookie<T extends { exp: number }>(key: Buffer, name: string, value: string | undefined, now = Date.now()): T | undefined {
  if (!value || value.length > 4096) return undefined;
  const dot = value.indexOf('.');
  if (dot <= 0) return undefined;
  const body = value.slice(0, dot);
  const given = Buffer.from(value.slice(dot + 1), 'base64url');
  const expected = mac(key, name, body);
  if (given.length !== expected.length || !timingSafeEqual(given, expected)) return undefined;
  let payload: unknown;
  try {
    payload = JSON.parse(Buffer.from(body, 'base64url').toString('utf8'));
  } catch {
    return undefined;
  }
  if (!payload || typeof payload !== 'object' || typeof (payload as { exp?: unknown }).exp !== 'number') return undefined;
  if ((payload as { exp: number }).exp <= now) return undefined;
  return payload as T;
}

/** Reads a cookie's raw value from the request (no Koa keys involved: the MAC is ours). */
export function readCookie(ctx: Context, name: string): string | undefined {
  return ctx.cookies.get(name) ?? undefined;
}

/**
 * Writes the Set-Cookie header by hand: Koa's cookie helper refuses `Secure` on a request it did not
 * see arrive over TLS, while here the issuer's scheme decides (a TLS-terminating proxy is common).
 */
export function setCookie(ctx: Context, name: string, value: string, options: CookieOptions): void {
  const parts = [`${name}=${value}`, `Path=${COOKIE_PATH}`, `Max-Age=${Math.max(0, Math.floor(options.maxAgeSeconds))}`, 'HttpOnly', 'SameSite=Lax'];
  if (options.secure) parts.push('Secure');
  ctx.append('Set-Cookie', parts.join('; '));
}

export function clearCookie(ctx: Context, name: string, secure: boolean): void {
  const parts = [`${name}=`, `Path=${COOKIE_PATH}`, 'Max-Age=0', 'Expires=Thu, 01 Jan 1970 00:00:00 GMT', 'HttpOnly', 'SameSite=Lax'];
  if (secure) parts.push('Secure');
  ctx.append('Set-Cookie', parts.join('; '));
}
