import { randomUUID } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Logger } from 'pino';
import { ADMIN_PREFIX } from '../admin/audience.js';
import { CALLBACK_PATH as CONNECTION_CALLBACK_PATH } from '../connections/service.js';
import type { RealmRequest } from '../interactions/layout.js';
import { providerCallback } from '../oidc/provider-callback.js';
import type { ProviderCache, ServedIssuer } from '../oidc/providers.js';
import type { RealmRegistry } from '../realms/registry.js';
import { applySecurityHeaders } from './security-headers.js';

export const MAX_BODY = 64 * 1024;
export const JWKS_PATHS = new Set(['/jwks', '/.well-known/openid-configuration/jwks']);
const SAFE_ID = /^[A-Za-z0-9._-]{1,100}$/;

/** Answers a JWKS request with the realm's precomputed document (ETag, 304, CORS, short caching). */
export function writeJwks(req: IncomingMessage, res: ServerResponse, served: ServedIssuer): void {
  res.setHeader('Cache-Control', 'public, max-age=60, stale-while-revalidate=60');
  res.setHeader('Access-Control-Allow-Origin', '*');
  res.setHeader('ETag', served.jwks.etag);
  if (req.headers['if-none-match'] === served.jwks.etag) {
    res.statusCode = 304;
    res.end();
    return;
  }
  res.statusCode = 200;
  res.setHeader('Content-Type', 'application/jwk-set+json; charset=utf-8');
  res.setHeader('Content-Length', Buffer.byteLength(served.jwks.body));
  res.end(req.method === 'HEAD' ? undefined : served.jwks.body);
}

/** Paths Latchkey itself answers (pages, assets, health, sign-in dispatch): these always go through Koa. */
function ours(path: string): boolean {
  return (
    path === '/auth' ||
    path.startsWith('/interaction/') ||
    path === CONNECTION_CALLBACK_PATH ||
    path === '/account' ||
    path.startsWith('/account/') ||
    path.startsWith('/assets/') ||
    path === '/favicon.ico' ||
    path === '/healthz' ||
    path === '/readyz' ||
    path === '/.well-known/webauthn' ||
    path === ADMIN_PREFIX ||
    path.startsWith(`${ADMIN_PREFIX}/`)
  );
}

/**
 * The hot endpoints (JWKS, token, userinfo, introspection, discovery...) of an issuer whose provider is
 * already built go straight to it, or to the precomputed JWKS, without a second Koa stack around it.
 * Same headers, body limit, request id and log line as the Koa path; anything unusual (unknown host,
 * a provider being rebuilt, our own pages) returns false and Koa handles it.
 */
export function createFastPath(deps: { registry: RealmRegistry; providers: ProviderCache; log: Logger; trustProxy: boolean }) {
  const { registry, providers, log, trustProxy } = deps;
  const logRequests = () => log.isLevelEnabled('info');

  return function fastPath(req: IncomingMessage, res: ServerResponse): boolean {
    const url = req.url ?? '/';
    const q = url.indexOf('?');
    const path = q === -1 ? url : url.slice(0, q);
    if (ours(path)) return false;
    const forwarded = trustProxy ? req.headers['x-forwarded-host'] : undefined;
    const host = (typeof forwarded === 'string' && forwarded ? forwarded.split(',')[0]!.trim() : req.headers.host) ?? '';
    const issuer = registry.lookup(host);
    const served = issuer && providers.peek(issuer);
    if (!served) return false;
    const length = Number(req.headers['content-length'] ?? 0);
    if (length > MAX_BODY) return false; // Koa answers 413 with its error shape

    const incoming = req.headers['x-request-id'];
    const id = typeof incoming === 'string' && SAFE_ID.test(incoming) ? incoming : randomUUID();
    res.setHeader('X-Request-Id', id);
    const proto = trustProxy && typeof req.headers['x-forwarded-proto'] === 'string' ? req.headers['x-forwarded-proto'].split(',')[0]!.trim() : (req.socket as { encrypted?: boolean }).encrypted ? 'https' : 'http';
    applySecurityHeaders(res, proto === 'https');
    if (logRequests()) {
      const started = process.hrtime.bigint();
      res.once('finish', () =>
        log.info({ reqId: id, method: req.method, host, path, status: res.statusCode, ms: Number(process.hrtime.bigint() - started) / 1e6 }, 'request'),
      );
    }

    if ((req.method === 'GET' || req.method === 'HEAD') && JWKS_PATHS.has(path)) {
      writeJwks(req, res, served);
      return true;
    }

    // the provider stops reading at its own limit; drain what is left so keep-alive keeps working
    res.once('finish', () => {
      if (!req.complete) req.resume();
    });
    (req as RealmRequest).latchkey = served;
    void providerCallback(served.provider)(req, res);
    return true;
  };
}
