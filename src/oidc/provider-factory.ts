import Provider, { errors, interactionPolicy, type AdapterPayload, type Configuration, type KoaContextWithOIDC } from 'oidc-provider';
import type { Logger } from 'pino';
import type { AuthorizationModule } from '../authz/module.js';
import { RESERVED_CLAIMS } from '../authz/module.js';
import { CLIENT_SCOPES, type ClientService } from '../clients/service.js';
import type { LatchkeyConfig } from '../config/schema.js';
import { verifyHighEntropySecret } from '../crypto/secret-box.js';
import { NodeSigningKey } from '../keys/node-signing-key.js';
import { cookieSigner } from '../crypto/cookie-signer.js';
import type { Db } from '../db/knex.js';
import type { Realm } from '../realms/service.js';
import type { SigningMaterial } from '../keys/service.js';
import { createAdapterClass } from './adapter.js';
import { createFindAccount } from './find-account.js';
import type { UserService } from '../accounts/user-service.js';
import { providerPages } from '../interactions/provider-pages.js';
import { ACR_VALUES_SUPPORTED, wantsMultiFactor } from '../interactions/acr.js';
import { ADMIN_API_AUDIENCE, ADMIN_SCOPES } from '../admin/audience.js';
import type { TrustService } from '../trust/service.js';
import { enableTokenExchange } from './token-exchange.js';
import { holdFirstPageRedirect } from './first-page.js';
import { holdResumeRedirect } from './resume-in-process.js';
import { addModuleClaimsToIdTokens } from './id-token-module-claims.js';
import { undoFailedTokenRequests } from './failed-token-request.js';
import type { EventBus } from '../events/bus.js';
import { deviceSignInEvents } from './device-events.js';
import { emitSessionSignIns } from './session-events.js';
import { recordSessionDevices } from './session-device.js';
import { logBackchannelDeliveries, providerFetch } from './backchannel-logout.js';
import { enableFrontchannelLogout, FRONTCHANNEL_CLIENT_METADATA, FRONTCHANNEL_DISCOVERY } from './frontchannel-logout.js';
import { grantTypeOf, refreshTokenTtl, withoutProviderAsyncContext } from './request-context.js';
import type { TenantService } from '../tenants/service.js';
import type { LoginThrottle } from '../accounts/login-throttle.js';
import { markWrongUserCodes, throttleUserCodeGuesses } from './user-code-throttle.js';
import { recordGrantTenant, resultTenant, tenantOfGrant } from '../tenants/grant-tenant.js';

export interface ProviderDeps {
  db: Db;
  config: LatchkeyConfig;
  clients: ClientService;
  users: UserService;
  authz: AuthorizationModule;
  tenants: TenantService;
  cookieKeys: string[];
  log: Logger;
  trust: TrustService;
  /** Rate-limits device-flow user code guesses; absent on the throwaway provider that validates client metadata. */
  throttle?: LoginThrottle;
  /** Where the device flow's outcomes go (src/oidc/device-events.ts); absent on that throwaway provider too. */
  events?: EventBus;
}

const SCOPE_CLAIMS = {
  // every ID token says how (amr, RFC 8176), when and at which level (acr) the user signed in, and for which tenant
  openid: ['sub', 'acr', 'amr', 'auth_time', 'tenant_id'],
  email: ['email', 'email_verified'],
  profile: ['name', 'picture', 'updated_at'],
};

const SIGNING = ['EdDSA', 'RS256', 'PS256', 'ES256'];

function isFirstParty(client: { metadata(): Record<string, unknown> } | undefined): boolean {
  return Boolean(client?.metadata().first_party);
}

/**
 * The default prompts plus login checks: a session signed in for a tenant the user has left, or not for
 * the tenant the request names, signs in again; so does a session whose account findAccount no longer
 * returns (a disabled or deleted user: without it the consent checks run without a grant and the
 * request ends in a server error); and a single-factor session asked for multi-factor. `sessionTenant`
 * gives the tenant of the session's grant and, only when asked, whether the user is still its member.
 */
function signInPolicy(sessionTenant: (ctx: KoaContextWithOIDC) => Promise<{ tenantId?: string; member(): Promise<boolean> } | undefined>) {
  const policy = interactionPolicy.base();
  const login = policy.get('login')!;
  // the session's grant with this client was signed in for a tenant the user has been removed from
  login.checks.add(
    new interactionPolicy.Check('tenant_membership_ended', 'the signed-in account is no longer a member of the tenant it signed in for', 'login_required', async (ctx) => {
      const t = await sessionTenant(ctx);
      return Boolean(t?.tenantId && !(await t.member()));
    }),
  );
  // a request naming a tenant (tenant_id) that the session did not sign in for needs a sign-in for it
  login.checks.add(
    new interactionPolicy.Check('tenant_not_signed_in', 'the session is not signed in for the requested tenant', 'login_required', async (ctx) => {
      const requested = ctx.oidc.params?.tenant_id;
      if (typeof requested !== 'string' || !requested) return false;
      const t = await sessionTenant(ctx);
      return Boolean(t && t.tenantId !== requested);
    }),
  );
  login.checks.add(
    new interactionPolicy.Check('account_unavailable', 'the signed-in account is no longer available', 'login_required', (ctx) =>
      Boolean(ctx.oidc.session?.accountId && !ctx.oidc.account),
    ),
  );
  // step-up: a client asking for multi-factor (acr_values) gets it even inside a live single-factor session
  login.checks.add(
    new interactionPolicy.Check('mfa_required', 'multi-factor authentication is required', 'interaction_required', (ctx) => {
      const session = ctx.oidc.session as { accountId?: string; amr?: string[] } | undefined;
      return Boolean(session?.accountId && wantsMultiFactor(ctx.oidc.params?.acr_values) && !(session.amr ?? []).includes('mfa'));
    }),
  );
  return policy;
}

/** Builds the node-oidc-provider instance serving one issuer URL of a realm. */
export function createProvider(issuer: string, realm: Realm, keys: SigningMaterial, deps: ProviderDeps, staticClients?: AdapterPayload[]): Provider {
  const { config, authz } = deps;
  const t = config.tokens;
  const settings = realm.settings;
  const resources = new Map(settings.resources.map((r) => [r.uri, r]));
  const deviceEvents = deps.events ? deviceSignInEvents(deps.events, realm.id, issuer) : undefined;
  const userCodeInput = deps.throttle ? markWrongUserCodes(providerPages.deviceInput) : providerPages.deviceInput;
  const resourceServerInfo = (resourceIndicator: string) => {
    const resource = resources.get(resourceIndicator);
    if (!resource) throw new errors.InvalidTarget(`resource ${resourceIndicator} is not an API of this realm`);
    return {
      audience: resource.uri,
      scope: resource.scopes.join(' '),
      accessTokenTTL: t.accessTokenTtlSeconds,
      accessTokenFormat: 'jwt',
      jwt: { sign: { alg: settings.signingAlg } },
    };
  };

  const configuration: Configuration = {
    adapter: createAdapterClass(deps.db, realm.id, { find: (realmId, id) => deps.clients.providerMetadata(realmId, id) }, issuer),
    // static when the realm has few enough (see ClientService.allProviderMetadata); the adapter finds the rest
    clients: (staticClients ?? []) as any,
    // Ed25519 and P-256 keys sign with node:crypto on the spot (src/keys/node-signing-key.ts)
    jwks: { keys: keys.privateJwks.map((jwk) => NodeSigningKey.forProvider(jwk)) as any },
    findAccount: createFindAccount(
      deps.users,
      authz,
      realm.id,
      issuer,
      (grantId, ctx) => tenantOfGrant(deps.tenants, realm.id, grantId, ctx),
      (tenantId, userId) => deps.tenants.isMember(realm.id, tenantId, userId),
    ),
    // the tenant a sign-in is for, and a connection to go straight to (src/interactions/tenant-resolution.ts)
    extraParams: ['tenant_id', 'connection_id'],
    claims: SCOPE_CLAIMS,
    acrValues: ACR_VALUES_SUPPORTED,
    scopes: [...CLIENT_SCOPES],
    responseTypes: ['code'],
    pkce: {
      required: (_ctx, client) => settings.pkceRequired === 'all' || client.clientAuthMethod === 'none',
    },
    rotateRefreshToken: true,
    // Like Auth0, Keycloak and Logto: scope-granted claims also go into the ID token.
    conformIdTokenClaims: false,
    cookies: {
      // a Keygrip-compatible signer (one HMAC per check instead of three): see crypto/cookie-signer.ts
      keys: cookieSigner(deps.cookieKeys) as any,
      long: { httpOnly: true, sameSite: 'lax', signed: true },
      short: { httpOnly: true, sameSite: 'lax', signed: true },
    },
    clientDefaults: {
      grant_types: ['authorization_code'],
      response_types: ['code'],
      token_endpoint_auth_method: 'client_secret_basic',
      id_token_signed_response_alg: settings.signingAlg,
    },
    // front-channel logout's fields are Latchkey's (src/oidc/frontchannel-logout.ts): node-oidc-provider has no such feature
    extraClientMetadata: { properties: ['first_party', 'admin_api', ...FRONTCHANNEL_CLIENT_METADATA] },
    enabledJWA: {
      idTokenSigningAlgValues: SIGNING as any,
      userinfoSigningAlgValues: SIGNING as any,
      introspectionSigningAlgValues: SIGNING as any,
      authorizationSigningAlgValues: SIGNING as any,
      requestObjectSigningAlgValues: SIGNING as any,
      clientAuthSigningAlgValues: settings.clientAuthSigningAlgs as any,
    },
    discovery: {
      // RFC 8707 resource indicators are accepted at /auth and /token (see the README).
      resource_indicators_supported: true,
      service_documentation: 'https://github.com/latchkey-idp/latchkey#readme',
      ...FRONTCHANNEL_DISCOVERY,
    } as any,
    ttl: {
      // numbers and ctx-free functions: node-oidc-provider hands these no ctx (src/oidc/request-context.ts)
      AccessToken: t.accessTokenTtlSeconds,
      AuthorizationCode: 60,
      ClientCredentials: t.clientCredentialsTtlSeconds,
      DeviceCode: t.deviceCodeTtlSeconds,
      IdToken: t.idTokenTtlSeconds,
      Interaction: t.interactionTtlSeconds,
      Session: t.sessionTtlSeconds,
      Grant: t.refreshTokenTtlSeconds,
      RefreshToken: (_ctx, token) => refreshTokenTtl(t.refreshTokenTtlSeconds, token as Parameters<typeof refreshTokenTtl>[1]),
    },
    interactions: {
      url: (_ctx, interaction) => `/interaction/${interaction.uid}`,
      // the tenant the session's grant with this client was signed in for; undefined without a signed-in
      // session, or when a sign-in in this very request has just decided the tenant (see loadExistingGrant)
      policy: signInPolicy(async (ctx) => {
        const accountId = ctx.oidc.session?.accountId;
        const grantId = ctx.oidc.grant?.jti;
        if (!accountId || !grantId || resultTenant(ctx) !== undefined) return undefined;
        const tenantId = await tenantOfGrant(deps.tenants, realm.id, grantId, ctx);
        // membership is read only by the check that needs it (the requested-tenant check does not)
        return { tenantId, member: () => (tenantId ? deps.tenants.isMember(realm.id, tenantId, accountId) : Promise.resolve(false)) };
      }),
    },
    features: {
      devInteractions: { enabled: false },
      // lets jwks.keys hold NodeSigningKey instances; the ack pins the experiment's version, so an upgrade
      // of node-oidc-provider that changes it stops at start-up instead of signing differently
      externalSigningSupport: { enabled: true, ack: 'experimental-01' },
      clientCredentials: { enabled: true },
      introspection: {
        enabled: true,
        // a client may only introspect tokens issued to itself; a disabled or deleted user's tokens are inactive
        allowedPolicy: async (_ctx, client, token) => {
          const { clientId, accountId } = token as { clientId?: string; accountId?: string };
          if ('clientId' in token && clientId !== client.clientId) return false;
          if (!accountId) return true;
          const user = await deps.users.findById(realm.id, accountId);
          return Boolean(user && !user.disabled);
        },
      },
      revocation: {
        enabled: true,
        // a client may only revoke tokens issued to itself: a confidential client is told so,
        // a public one gets RFC 7009's silent success (the library's rule, stated explicitly)
        allowedPolicy: async (_ctx, client, token) => {
          if ((token as { clientId?: string }).clientId === client.clientId) return true;
          if (client.clientAuthMethod === 'none') return false;
          throw new errors.InvalidRequest('client is not authorized to revoke the presented token');
        },
      },
      userinfo: { enabled: true },
      // logout tokens to the applications of a session that ends (src/oidc/backchannel-logout.ts)
      backchannelLogout: { enabled: true },
      deviceFlow: {
        enabled: true,
        userCodeInputSource: deviceEvents ? deviceEvents.inputSource(userCodeInput) : userCodeInput,
        userCodeConfirmSource: providerPages.deviceConfirm,
        successSource: deviceEvents ? deviceEvents.successSource(providerPages.deviceSuccess) : providerPages.deviceSuccess,
      },
      rpInitiatedLogout: {
        enabled: true,
        logoutSource: providerPages.logout,
        postLogoutSuccessSource: providerPages.loggedOut,
      },
      resourceIndicators: {
        enabled: true,
        defaultResource: async (ctx, _client, oneOf) => {
          if (oneOf) return oneOf;
          if (ctx.oidc.route === 'token' && ctx.oidc.params?.grant_type === 'client_credentials') return settings.defaultAudience;
          return undefined;
        },
        useGrantedResource: async () => true,
        getResourceServerInfo: async (_ctx, resourceIndicator, client) => {
          if (resourceIndicator === ADMIN_API_AUDIENCE) {
            // only clients registered for the admin API (its admin_api setting) may hold admin API tokens;
            // the description goes to the client, so it names no operator tool's flag
            if (!client.metadata().admin_api) throw new errors.InvalidTarget(`client ${client.clientId} is not registered for the admin API`);
            return {
              audience: ADMIN_API_AUDIENCE,
              scope: ADMIN_SCOPES.join(' '),
              accessTokenTTL: t.clientCredentialsTtlSeconds,
              accessTokenFormat: 'jwt',
              jwt: { sign: { alg: settings.signingAlg } },
            } as any;
          }
          return resourceServerInfo(resourceIndicator) as any;
        },
      },
    },
    loadExistingGrant: async (ctx) => {
      const client = ctx.oidc.client!;
      const grantId = ctx.oidc.result?.consent?.grantId || ctx.oidc.session!.grantIdFor(client.clientId);
      let grant = grantId ? await ctx.oidc.provider.Grant.find(grantId) : undefined;
      const tenant = resultTenant(ctx);
      if (!isFirstParty(client)) {
        if (grant) await recordGrantTenant(deps.tenants, realm.id, grant.jti, tenant);
        return grant;
      }
      // a sign-in for another tenant starts a new grant: tokens of the old one keep the old tenant
      if (grant && tenant !== undefined && ((await tenantOfGrant(deps.tenants, realm.id, grant.jti)) ?? null) !== tenant) grant = undefined;
      // a grant kept here already has this sign-in's tenant; a new one has none yet
      const fresh = !grant;
      // First-party clients are trusted: everything they ask for is granted without a consent page.
      const accountId = ctx.oidc.session!.accountId;
      if (!accountId) return grant;
      grant ??= new ctx.oidc.provider.Grant({ clientId: client.clientId, accountId });
      const scopes = String(ctx.oidc.params?.scope ?? '').split(' ').filter(Boolean);
      if (scopes.length) grant.addOIDCScope(scopes.join(' '));
      const claims = ctx.oidc.claims;
      for (const section of ['id_token', 'userinfo'] as const) {
        const names = Object.keys(claims?.[section] ?? {});
        if (names.length) grant.addOIDCClaims(names);
      }
      const resourceParam = ctx.oidc.params?.resource;
      for (const r of Array.isArray(resourceParam) ? resourceParam : resourceParam ? [resourceParam as string] : []) {
        const info = resources.get(r);
        if (info) grant.addResourceScope(r, [...new Set([...info.scopes, ...scopes])].join(' '));
      }
      await grant.save();
      if (fresh && typeof tenant === 'string') await recordGrantTenant(deps.tenants, realm.id, grant.jti, tenant);
      return grant;
    },
    // called without ctx (src/oidc/request-context.ts): everything it needs is on the token
    extraTokenClaims: async (_ctx, token) => {
      const kind = (token as { kind?: string }).kind;
      if (kind !== 'AccessToken' && kind !== 'ClientCredentials') return undefined;
      const tok = token as unknown as { kind: string; gty?: string; accountId?: string; clientId: string; grantId?: string; scope?: string; aud?: string | string[]; resourceServer?: { audience?: string } };
      const tenantId = tok.accountId ? await tenantOfGrant(deps.tenants, realm.id, tok.grantId) : undefined;
      const decision = await authz.onIssue({
        realmId: realm.id,
        issuer,
        clientId: tok.clientId,
        subject: tok.accountId,
        grantType: grantTypeOf(tok),
        token: 'access_token',
        scopes: tok.scope ? tok.scope.split(' ') : [],
        audience: tok.resourceServer?.audience,
        tenantId,
      });
      if (!decision.allow) throw new errors.AccessDenied(decision.reason ?? 'the authorization module denied this token');
      const extra = Object.fromEntries(Object.entries(decision.claims ?? {}).filter(([k]) => !RESERVED_CLAIMS.has(k) && k !== 'tenant_id'));
      if (tenantId) extra.tenant_id = tenantId;
      return Object.keys(extra).length ? extra : undefined;
    },
    // back-channel logout deliveries and client JWKS URIs (src/oidc/backchannel-logout.ts)
    fetch: providerFetch(config.outbound.allowPrivateNetworks) as any,
    renderError: providerPages.error,
    clientBasedCORS: (_ctx, origin, client) =>
      client.clientAuthMethod === 'none' && (client.redirectUris ?? []).some((uri) => URL.parse(uri)?.origin === origin),
  };

  withoutProviderAsyncContext();
  const provider = new Provider(issuer, configuration);
  provider.proxy = config.server.trustProxy;
  if (deps.throttle) throttleUserCodeGuesses(provider, deps.throttle, realm.id, deviceEvents?.throttled);
  holdFirstPageRedirect(provider);
  addModuleClaimsToIdTokens(provider);
  if (deps.events) emitSessionSignIns(provider, deps.events, realm.id, issuer);
  holdResumeRedirect(provider);
  recordSessionDevices(provider);
  enableTokenExchange(provider, { realmId: realm.id, trust: deps.trust, defaultAudience: settings.defaultAudience, resourceServerInfo });
  const log = deps.log.child({ realm: realm.id, issuer });
  undoFailedTokenRequests(provider, deps.db, realm.id, log);
  provider.on('server_error', (_ctx: unknown, err: Error) => log.error({ err }, 'provider error'));
  logBackchannelDeliveries(provider, log);
  enableFrontchannelLogout(provider, providerPages.frontchannelLogout, config.logout.frontchannelWaitSeconds);
  // A request that arrived without a session (the device code form posted once the browser's session was
  // ended, expired or its cookie blocked) fails its form check; the error page then writes a fresh form
  // secret into that session after its middleware has finished, and the provider's final save of touched
  // sessions throws for a session never stored (a 500 instead of the page). Such a session has no cookie
  // and nobody can come back to it: it is not saved.
  const session = provider.Session.prototype as unknown as { persist(this: { exp?: number }): Promise<unknown> };
  const persistSession = session.persist;
  session.persist = async function persist() {
    if (typeof this.exp !== 'number') return undefined;
    return persistSession.call(this);
  };
  // Client secrets are stored as hashes: compare the hash of what the client sent.
  (provider.Client.prototype as unknown as { compareClientSecret(this: { clientSecret?: string }, actual: string): Promise<boolean> }).compareClientSecret =
    async function compareClientSecret(actual: string) {
      return typeof this.clientSecret === 'string' && verifyHighEntropySecret(this.clientSecret, actual);
    };
  return provider;
}
