import type { Context } from 'koa';
import { createLocalJWKSet, decodeJwt, jwtVerify, type JWTVerifyGetKey } from 'jose';
import type { ServedIssuer } from '../oidc/providers.js';
import type { Services } from '../server/services.js';
import { ADMIN_API_AUDIENCE } from './audience.js';
import { ProblemError } from './problem.js';

/** Who is calling the admin API. */
export interface AdminPrincipal {
  /** `client`: a client_credentials token of this realm; `trusted`: a JWT of a trusted external issuer. */
  kind: 'client' | 'trusted';
  /** The client id, or the user id computed from the trusted token. */
  subject: string;
  clientId?: string;
  /** What the principal may do: `admin` (read and write) or `admin:read`. */
  access: 'write' | 'read';
  /** The trusted issuer's registration id, for trusted tokens. */
  trustedIssuerId?: string;
}

const unauthorized = (message: string) => new ProblemError('invalid_token', message, 401);
const forbidden = (message: string) => new ProblemError('insufficient_scope', message, 403);

const jwksOf = new WeakMap<ServedIssuer, JWTVerifyGetKey>();

function realmKeys(served: ServedIssuer): JWTVerifyGetKey {
  let keys = jwksOf.get(served);
  if (!keys) {
    keys = createLocalJWKSet(JSON.parse(served.jwks.body));
    jwksOf.set(served, keys);
  }
  return keys;
}

function bearerToken(ctx: Context): string {
  const header = ctx.get('authorization');
  if (!header) throw unauthorized('send an access token: Authorization: Bearer <token>');
  const match = /^Bearer[ ]+([A-Za-z0-9\-._~+/]+=*)$/i.exec(header);
  if (!match) throw unauthorized('the Authorization header must be "Bearer <token>"');
  return match[1]!;
}

/**
 * A client_credentials JWT minted by this realm for the admin API, whose client still exists and is
 * still registered with --admin-api: the token outlives neither (it is a JWT that would otherwise stay
 * good for the whole client_credentials TTL after the client was deleted or demoted).
 */
async function realmPrincipal(services: Services, served: ServedIssuer, token: string): Promise<AdminPrincipal> {
  let payload;
  try {
    ({ payload } = await jwtVerify(token, realmKeys(served), {
      issuer: served.realm.issuers,
      audience: ADMIN_API_AUDIENCE,
      typ: 'at+jwt',
      clockTolerance: 5,
    }));
  } catch (err) {
    const code = (err as { code?: string }).code;
    if (code === 'ERR_JWT_EXPIRED') throw unauthorized('the access token has expired');
    if (code === 'ERR_JWT_CLAIM_VALIDATION_FAILED') throw unauthorized(`the access token is not for the admin API (${(err as Error).message}); request it with resource=${ADMIN_API_AUDIENCE}`);
    throw unauthorized('the access token is not valid for this realm');
  }
  const scopes = typeof payload.scope === 'string' ? payload.scope.split(' ') : [];
  const clientId = typeof payload.client_id === 'string' ? payload.client_id : undefined;
  if (!clientId) throw unauthorized('the access token names no client');
  const client = await services.clients.providerMetadata(served.realm.id, clientId);
  if (!client) throw unauthorized(`the access token's client "${clientId}" no longer exists`);
  if (!client.admin_api) throw forbidden(`the access token's client "${clientId}" is no longer registered for the admin API (its admin_api setting is off)`);
  const access = scopes.includes('admin') ? 'write' : scopes.includes('admin:read') ? 'read' : undefined;
  if (!access) throw forbidden('the access token has neither the "admin" nor the "admin:read" scope');
  return { kind: 'client', subject: typeof payload.sub === 'string' ? payload.sub : clientId, clientId, access };
}

/**
 * Authenticates an admin API request: a realm-issued admin token, or a JWT from one of the realm's
 * trusted issuers whose computed user id is registered as an admin.
 */
export async function authenticateAdmin(ctx: Context, services: Services, served: ServedIssuer): Promise<AdminPrincipal> {
  const token = bearerToken(ctx);
  let iss: unknown;
  try {
    iss = decodeJwt(token).iss;
  } catch {
    throw unauthorized('the access token is not a JWT (the admin API takes JWT access tokens)');
  }
  if (typeof iss === 'string' && served.realm.issuers.includes(iss)) return realmPrincipal(services, served, token);
  return trustedPrincipal(services, served, token);
}

async function trustedPrincipal(services: Services, served: ServedIssuer, token: string): Promise<AdminPrincipal> {
  const verified = await services.trust.verify(served.realm.id, token).catch((err: { message?: string; code?: string }) => {
    throw unauthorized(err?.code === 'untrusted_issuer' ? 'the access token was not issued by this realm or one of its trusted issuers' : (err?.message ?? 'the token is not valid'));
  });
  if (!services.trust.isAdmin(verified.trustedIssuer, verified.userId)) {
    throw forbidden(`the trusted identity "${verified.userId}" is not an admin of realm "${served.realm.id}"`);
  }
  return { kind: 'trusted', subject: verified.userId, access: 'write', trustedIssuerId: verified.trustedIssuer.id };
}
