import type { Context, Next } from 'koa';

const CSP = [
  "default-src 'self'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self' https: data:",
  "connect-src 'self'",
  "base-uri 'none'",
  "object-src 'none'",
  "frame-ancestors 'none'",
].join('; ');

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
