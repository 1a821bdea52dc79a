import type { Context, Next } from 'koa';

const DIRECTIVES = [
  "default-src 'self'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self' https: data:",
  "connect-src 'self'",
  "base-uri 'none'",
  "object-src 'none'",
  "frame-ancestors 'none'",
];
const CSP = DIRECTIVES.join('; ');

/** An http(s) origin as URL.origin gives it (nothing that could end a directive or add a source). */
const ORIGIN = /^https?:\/\/[A-Za-z0-9.\-[\]:]+$/;

/**
 * The policy every page gets, or, for a page that frames other sites (the front-channel logout page,
 * src/oidc/frontchannel-logout.ts), that policy with `frame-src` naming exactly those origins.
 */
export function contentSecurityPolicy(options: { frameSrc?: readonly string[] } = {}): string {
  const origins = (options.frameSrc ?? []).filter((o) => ORIGIN.test(o));
  if (!origins.length) return CSP;
  return [...DIRECTIVES, `frame-src ${origins.join(' ')}`].join('; ');
}

const HEADERS: Array<[string, string]> = [
  ['Content-Security-Policy', CSP],
  ['X-Content-Type-Options', 'nosniff'],
  ['Referrer-Policy', 'no-referrer'],
  ['X-Frame-Options', 'DENY'],
  ['Cross-Origin-Opener-Policy', 'same-origin'],
];

/** Sets the same headers on a raw response (the fast path, which bypasses Koa). */
export function applySecurityHeaders(res: { setHeader(name: string, value: string): unknown }, https: boolean): void {
  for (const [name, value] of HEADERS) res.setHeader(name, value);
  if (https) res.setHeader('Strict-Transport-Security', 'max-age=31536000');
}

/** Strict headers on every response (node-oidc-provider's form_post page replaces the CSP with its own). */
export function securityHeaders() {
  return async (ctx: Context, next: Next) => {
    applySecurityHeaders(ctx.res, ctx.protocol === 'https');
    await next();
  };
}
