import type Provider from 'oidc-provider';
import { errors, type KoaContextWithOIDC } from 'oidc-provider';
import { LatchkeyError } from '../errors.js';
import type { TrustService } from '../trust/service.js';

/** RFC 8693 token exchange: a JWT from a trusted issuer becomes a realm access token for the computed user id. */
export const TOKEN_EXCHANGE_GRANT = 'urn:ietf:params:oauth:grant-type:token-exchange';

export const TOKEN_TYPES = {
  jwt: 'urn:ietf:params:oauth:token-type:jwt',
  idToken: 'urn:ietf:params:oauth:token-type:id_token',
  accessToken: 'urn:ietf:params:oauth:token-type:access_token',
} as const;

const SUBJECT_TOKEN_TYPES: readonly string[] = [TOKEN_TYPES.jwt, TOKEN_TYPES.idToken, TOKEN_TYPES.accessToken];
// actor_token is accepted as a parameter only to refuse it by name (delegation is not supported)
const PARAMETERS = ['subject_token', 'subject_token_type', 'requested_token_type', 'actor_token', 'actor_token_type', 'audience', 'resource', 'scope'];

export interface TokenExchangeOptions {
  realmId: string;
  trust: Pick<TrustService, 'verify'>;
  /** The realm's default audience, used when the request names no resource or audience. */
  defaultAudience?: string;
  /** The resource server configuration for a resource indicator; throws InvalidTarget for an unknown one. */
  resourceServerInfo: (resource: string) => { audience: string; scope: string; [k: string]: unknown };
}

const invalidGrant = (description: string) => new errors.CustomOIDCProviderError('invalid_grant', description);

/** Registers the token-exchange grant on a provider (listed in discovery's grant_types_supported). */
export function enableTokenExchange(provider: Provider, options: TokenExchangeOptions): void {
  provider.registerGrantType(TOKEN_EXCHANGE_GRANT, (ctx) => exchange(ctx as unknown as KoaContextWithOIDC, options), PARAMETERS);

  // RFC 6749 §5.2: a client not registered for the grant gets unauthorized_client (the library says invalid_request)
  provider.use(async (ctx, next) => {
    await next();
    const body = ctx.body as { error?: string; error_description?: string } | undefined;
    if (
      ctx.status === 400 &&
      body?.error === 'invalid_request' &&
      body.error_description === 'requested grant type is not allowed for this client' &&
      (ctx as unknown as KoaContextWithOIDC).oidc?.params?.grant_type === TOKEN_EXCHANGE_GRANT
    ) {
      ctx.body = { error: 'unauthorized_client', error_description: 'this client is not allowed to use the token-exchange grant' };
    }
  });
}

async function exchange(ctx: KoaContextWithOIDC, options: TokenExchangeOptions): Promise<void> {
  const params = ctx.oidc.params as Record<string, string | undefined>;
  const client = ctx.oidc.client!;
  if (client.clientAuthMethod === 'none') throw new errors.UnauthorizedClient('token exchange requires an authenticated (confidential) client');
  if (!params.subject_token) throw new errors.InvalidRequest('missing required parameter "subject_token"');
  if (!params.subject_token_type) throw new errors.InvalidRequest('missing required parameter "subject_token_type"');
  if (!SUBJECT_TOKEN_TYPES.includes(params.subject_token_type)) {
    throw new errors.InvalidRequest(`unsupported subject_token_type "${params.subject_token_type}"; use one of ${SUBJECT_TOKEN_TYPES.join(', ')}`);
  }
  if (params.actor_token !== undefined || params.actor_token_type !== undefined) throw new errors.InvalidRequest('actor_token (delegation) is not supported');
  if (params.requested_token_type !== undefined && params.requested_token_type !== TOKEN_TYPES.accessToken) {
    throw new errors.InvalidRequest(`unsupported requested_token_type "${params.requested_token_type}"; only ${TOKEN_TYPES.accessToken} is issued`);
  }
  if (params.resource !== undefined && params.audience !== undefined && params.resource !== params.audience) {
    throw new errors.InvalidTarget('resource and audience name different targets: give one of them');
  }
  const target = params.resource ?? params.audience ?? options.defaultAudience;
  if (!target) throw new errors.InvalidTarget('give a resource (or audience): the realm has no default audience');
  const info = options.resourceServerInfo(target);

  const requested = (params.scope ?? '').split(' ').filter(Boolean);
  const offered = new Set(info.scope.split(' ').filter(Boolean));
  const allowed = client.scope === undefined ? undefined : new Set(client.scope.split(' '));
  for (const s of requested) {
    if (!offered.has(s)) throw new errors.InvalidScope(`scope "${s}" is not offered by ${target}`, s);
    if (allowed && !allowed.has(s)) throw new errors.InvalidScope(`scope "${s}" is not allowed for this client`, s);
  }

  let identity: Awaited<ReturnType<TokenExchangeOptions['trust']['verify']>>;
  try {
    identity = await options.trust.verify(options.realmId, params.subject_token);
  } catch (err) {
    if (err instanceof LatchkeyError) throw invalidGrant(`subject_token: ${err.message}`);
    throw err;
  }

  const { AccessToken, ResourceServer } = ctx.oidc.provider;
  // a JWT access token is not stored and belongs to no grant: no grantId (the type asks for one)
  const token = new AccessToken({
    accountId: identity.userId,
    client,
    gty: 'token_exchange',
    scope: requested.join(' ') || undefined,
  } as ConstructorParameters<typeof AccessToken>[0]);
  token.resourceServer = new ResourceServer(target, info as any);
  ctx.oidc.entity('AccessToken', token);
  const value = await token.save();

  ctx.body = {
    access_token: value,
    issued_token_type: TOKEN_TYPES.accessToken,
    token_type: token.tokenType,
    expires_in: token.expiration,
    ...(token.scope ? { scope: token.scope } : {}),
  };
}
