import { randomBytes } from 'node:crypto';
import type { AdapterPayload } from 'oidc-provider';
import { hashHighEntropySecret } from '../crypto/secret-box.js';
import { clientsRepo, type ClientRow } from '../db/clients-repo.js';
import type { Db } from '../db/knex.js';
import { payloadsRepo } from '../db/payloads-repo.js';
import { realmsRepo } from '../db/realms-repo.js';
import { invalid, invalidField, notFound, type FieldProblem } from '../errors.js';
import { MAX_URL_LENGTH, SIGNING_ALGS, type SigningAlg } from '../realms/settings.js';
import { checkedName } from '../display-name.js';

export const GRANT_TYPES = [
  'authorization_code',
  'refresh_token',
  'client_credentials',
  'urn:ietf:params:oauth:grant-type:device_code',
  'urn:ietf:params:oauth:grant-type:token-exchange',
] as const;
/** The scopes a client may be limited to (its `scope`): the realm providers' OpenID Connect scopes. */
export const CLIENT_SCOPES = ['openid', 'offline_access', 'email', 'profile'] as const;
export const AUTH_METHODS = ['client_secret_basic', 'client_secret_post', 'private_key_jwt', 'none'] as const;

export interface CreateClientInput {
  realmId: string;
  name: string;
  redirectUris?: string[];
  postLogoutRedirectUris?: string[];
  public?: boolean;
  grants?: string[];
  firstParty?: boolean;
  authMethod?: string;
  idTokenAlg?: string;
  /** For private_key_jwt: the client's public keys, inline or by URL. */
  jwks?: unknown;
  jwksUri?: string;
  /** Scopes the client may request (space separated). */
  scope?: string;
  /** May request client_credentials tokens for the admin API (resource urn:latchkey:admin-api). */
  adminApi?: boolean;
  /**
   * A native (desktop or mobile) app, RFC 8252: a public client whose redirect URIs may use a
   * private-use URI scheme (com.example.app:/callback) or the loopback interface over http, where any
   * port matches (the app listens on whatever port it gets).
   */
  native?: boolean;
  /**
   * OpenID Connect Back-Channel Logout: where the server posts a logout token when a session of this
   * client ends through sign-out (every token names the session, `sid`).
   */
  backchannelLogoutUri?: string;
  /**
   * OpenID Connect Front-Channel Logout: a page of the application the sign-out page loads in a hidden
   * iframe when a session of this client ends through sign-out (src/oidc/frontchannel-logout.ts).
   */
  frontchannelLogoutUri?: string;
  /** With the front-channel logout URI: `iss` and `sid` are added to its query (default: true, as Keycloak does). */
  frontchannelLogoutSessionRequired?: boolean;
}

export interface CreatedClient {
  client_id: string;
  client_secret?: string;
  realm: string;
  name: string;
  public: boolean;
  first_party: boolean;
  redirect_uris: string[];
  post_logout_redirect_uris: string[];
  grant_types: string[];
  token_endpoint_auth_method: string;
  id_token_signed_response_alg?: string;
  scope?: string;
  admin_api?: boolean;
  application_type: 'web' | 'native';
  backchannel_logout_uri?: string;
  frontchannel_logout_uri?: string;
  frontchannel_logout_session_required?: boolean;
}

/** Redirect (and post-logout redirect) URIs one client may register. */
const MAX_URIS = 100;
const FORBIDDEN_SCHEMES = new Set(['javascript:', 'vbscript:', 'data:', 'blob:', 'file:', 'about:']);
const LOOPBACK_HOSTS = new Set(['127.0.0.1', '[::1]', 'localhost']);

/**
 * A redirect URI as registered: absolute, no fragment, no scheme a browser would run or read locally.
 * A web client's are http(s); a native app's (RFC 8252) may also use a private-use scheme, and use
 * http only on the loopback interface. `field` is where it was given (`redirectUris.0`, `jwksUri`).
 */
function checkUri(uri: string, what: string, field: string, native = false): string {
  const wrong = (problem: FieldProblem['problem']) => invalidField(field, problem);
  // not echoed: the message would be as long as the mistake
  if (uri.length > MAX_URL_LENGTH) throw wrong(`${what} is ${uri.length} characters long; at most ${MAX_URL_LENGTH} are allowed`);
  let url: URL;
  try {
    url = new URL(uri);
  } catch {
    throw wrong(`${what} "${uri}" is not an absolute URL`);
  }
  if (url.hash || uri.includes('#')) throw wrong(`${what} "${uri}" must not contain a fragment`);
  if (FORBIDDEN_SCHEMES.has(url.protocol)) throw wrong(`${what} "${uri}" uses a forbidden scheme`);
  const web = url.protocol === 'https:' || url.protocol === 'http:';
  if (!native && !web) throw wrong((name) => `${what} "${uri}" must be an https (or http) URL; a desktop or mobile app's private-use scheme needs a native client (${name('native')})`);
  if (native && url.protocol === 'http:' && !LOOPBACK_HOSTS.has(url.hostname)) throw wrong(`${what} "${uri}": a native app receives http redirects only on the loopback interface (http://127.0.0.1/...); use https or a private-use scheme`);
  if (native && !web && !/^[a-z][a-z0-9+.-]*\.[a-z0-9+.-]+:$/.test(url.protocol)) {
    throw wrong(`${what} "${uri}": a private-use scheme must be a reverse domain name the app owns, like com.example.app:/callback (RFC 8252, section 7.1)`);
  }
  return uri; // stored verbatim: matching is exact, character for character (a native app's loopback port aside)
}

/**
 * A random client id that never starts with "-" or "_": operators paste ids into command lines
 * (`--client-id ID`), where a leading dash reads as an option.
 */
export function newClientId(): string {
  for (;;) {
    const id = randomBytes(16).toString('base64url');
    if (/^[A-Za-z0-9]/.test(id)) return id;
  }
}

/**
 * Checks a new client's metadata (in node-oidc-provider's shape) the way the realm's provider will
 * when the client is used; throws a LatchkeyError saying what it refuses.
 */
export interface UpdateClientInput {
  name?: string;
  redirectUris?: string[];
  postLogoutRedirectUris?: string[];
  grants?: string[];
  firstParty?: boolean;
  idTokenAlg?: string;
  jwks?: unknown;
  jwksUri?: string;
  scope?: string;
  adminApi?: boolean;
  /** A new back-channel logout URI, or null to stop sending logout tokens. */
  backchannelLogoutUri?: string | null;
  /** A new front-channel logout URI, or null to stop loading one at sign-out. */
  frontchannelLogoutUri?: string | null;
  frontchannelLogoutSessionRequired?: boolean;
}

const hasSecret = (authMethod: string): boolean => authMethod === 'client_secret_basic' || authMethod === 'client_secret_post';
const newSecret = (): string => randomBytes(32).toString('base64url');

/** A client's settings, resolved: what {@link clientMetadata} checks and turns into stored metadata. */
interface ClientSpec {
  name: string | undefined;
  native: boolean;
  authMethod: string;
  grants: string[];
  redirectUris: string[];
  postLogoutRedirectUris: string[];
  idTokenAlg?: string;
  jwks?: unknown;
  jwksUri?: string;
  scope?: string;
  adminApi: boolean;
  backchannelLogoutUri?: string;
  frontchannelLogoutUri?: string;
  frontchannelLogoutSessionRequired?: boolean;
}

/**
 * Checks a client's settings (for a new client and for a change alike) and returns its stored metadata;
 * throws an InvalidFieldsError naming the first thing it refuses by the field of CreateClientInput it
 * came from (`redirectUris.1`, `grants`), which the CLI calls by its flag and the admin API by its
 * body field.
 */
function clientMetadata(spec: ClientSpec, { keptName = false }: { keptName?: boolean } = {}): Record<string, unknown> {
  // shown on the consent and sign-in pages: the shared name rule (src/display-name.ts). A stored name an
  // update leaves alone (`keptName`) is not checked again: one stored before the rule tightened would
  // otherwise refuse every change to the client until someone renamed it.
  const name = keptName ? spec.name : checkedName(spec.name, 'name');
  const { native, authMethod } = spec;
  const isPublic = authMethod === 'none';
  const grants = [...new Set(spec.grants)];
  if (!grants.length) throw invalidField('grants', 'a client needs at least one grant');
  for (const g of grants) {
    if (!(GRANT_TYPES as readonly string[]).includes(g)) throw invalidField('grants', `unknown grant "${g}"; use one of ${GRANT_TYPES.join(', ')} (implicit and password grants are not supported)`);
  }
  if (isPublic && grants.includes('client_credentials')) throw invalidField('grants', 'a public client cannot use the client_credentials grant');
  if (isPublic && grants.includes('urn:ietf:params:oauth:grant-type:token-exchange')) throw invalidField('grants', 'a public client cannot use the token-exchange grant');
  if (grants.includes('refresh_token') && !grants.includes('authorization_code') && !grants.includes('urn:ietf:params:oauth:grant-type:device_code')) {
    throw invalidField('grants', 'the refresh_token grant needs authorization_code or device_code as well');
  }
  for (const [list, field] of [[spec.redirectUris, 'redirectUris'], [spec.postLogoutRedirectUris, 'postLogoutRedirectUris']] as const) {
    if (list.length > MAX_URIS) throw invalidField(field, `${list.length} URIs given; a client may register at most ${MAX_URIS}`);
  }
  const redirectUris = spec.redirectUris.map((u, i) => checkUri(u, 'redirect URI', `redirectUris.${i}`, native));
  if (grants.includes('authorization_code') && !redirectUris.length) throw invalidField('redirectUris', 'the authorization_code grant needs at least one redirect URI');
  const postLogout = spec.postLogoutRedirectUris.map((u, i) => checkUri(u, 'post-logout redirect URI', `postLogoutRedirectUris.${i}`, native));
  if (authMethod === 'private_key_jwt' && !spec.jwks && !spec.jwksUri) throw invalidField('jwks', (n) => `private_key_jwt needs the client's public keys (${n('jwksUri')} or ${n('jwks')})`);
  if (spec.idTokenAlg && !(SIGNING_ALGS as readonly string[]).includes(spec.idTokenAlg)) throw invalidField('idTokenAlg', `unknown ID token algorithm "${spec.idTokenAlg}"; use one of ${SIGNING_ALGS.join(', ')}`);
  if (spec.adminApi && !grants.includes('client_credentials')) throw invalidField('grants', (n) => `an admin API client (${n('adminApi')}) needs the client_credentials grant`);
  if (spec.jwksUri) checkUri(spec.jwksUri, 'JWKS URI', 'jwksUri');
  // the server posts to it itself: a web URL whatever the kind of client (OpenID Connect Back-Channel Logout 1.0, section 2.2)
  if (spec.backchannelLogoutUri !== undefined) checkUri(spec.backchannelLogoutUri, 'back-channel logout URI', 'backchannelLogoutUri');
  // loaded by the browser in an iframe of the sign-out page: a web URL whatever the kind of client; a query
  // is allowed, a fragment is not (OpenID Connect Front-Channel Logout 1.0, section 2)
  if (spec.frontchannelLogoutUri !== undefined) {
    const origin = new URL(checkUri(spec.frontchannelLogoutUri, 'front-channel logout URI', 'frontchannelLogoutUri')).origin;
    // "The domain, port, and scheme of this URL MUST be the same as that of a registered Redirection URI value"
    if (!redirectUris.some((u) => URL.canParse(u) && new URL(u).origin === origin)) {
      throw invalidField('frontchannelLogoutUri', (n) => `a front-channel logout URI must be on the scheme, host and port of one of the client's redirect URIs (${n('redirectUris')}); ${origin} is not`);
    }
  }
  if (spec.frontchannelLogoutSessionRequired !== undefined && spec.frontchannelLogoutUri === undefined) {
    throw invalidField('frontchannelLogoutSessionRequired', (n) => `applies to a front-channel logout URI, and the client has none (${n('frontchannelLogoutUri')})`);
  }
  if (spec.jwksUri && spec.jwks !== undefined) throw invalidField('jwks', (n) => `give the client's keys either by URL (${n('jwksUri')}) or inline (${n('jwks')}), not both`);
  const scope = spec.scope?.split(' ').filter(Boolean).join(' ');
  for (const s of scope?.split(' ') ?? []) {
    if (!(CLIENT_SCOPES as readonly string[]).includes(s)) throw invalidField('scope', `scope "${s}" cannot be given to a client (it takes ${CLIENT_SCOPES.join(', ')}); the scopes of an API are listed in the realm's resources`);
  }
  if (spec.jwks !== undefined && (typeof spec.jwks !== 'object' || spec.jwks === null || !Array.isArray((spec.jwks as { keys?: unknown }).keys))) {
    throw invalidField('jwks', 'must be a JSON Web Key Set: {"keys": [...]}');
  }
  return {
    client_name: name,
    redirect_uris: redirectUris,
    post_logout_redirect_uris: postLogout,
    grant_types: grants,
    response_types: grants.includes('authorization_code') ? ['code'] : [],
    token_endpoint_auth_method: authMethod,
    ...(spec.idTokenAlg ? { id_token_signed_response_alg: spec.idTokenAlg as SigningAlg } : {}),
    ...(spec.jwks ? { jwks: spec.jwks } : {}),
    ...(spec.jwksUri ? { jwks_uri: spec.jwksUri } : {}),
    ...(scope ? { scope } : {}),
    ...(spec.adminApi ? { admin_api: true } : {}),
    ...(native ? { application_type: 'native' } : {}),
    ...(spec.backchannelLogoutUri !== undefined ? { backchannel_logout_uri: spec.backchannelLogoutUri, backchannel_logout_session_required: true } : {}),
    ...(spec.frontchannelLogoutUri !== undefined
      ? { frontchannel_logout_uri: spec.frontchannelLogoutUri, frontchannel_logout_session_required: spec.frontchannelLogoutSessionRequired ?? true }
      : {}),
  };
}

/** What the CLI prints about a client (never its secret). */
function view(c: ClientRow): Omit<CreatedClient, 'client_secret'> {
  return {
    client_id: c.clientId,
    realm: c.realmId,
    name: c.name,
    public: c.metadata.token_endpoint_auth_method === 'none',
    first_party: c.firstParty,
    redirect_uris: c.metadata.redirect_uris as string[],
    post_logout_redirect_uris: c.metadata.post_logout_redirect_uris as string[],
    grant_types: c.metadata.grant_types as string[],
    token_endpoint_auth_method: c.metadata.token_endpoint_auth_method as string,
    ...(c.metadata.id_token_signed_response_alg ? { id_token_signed_response_alg: c.metadata.id_token_signed_response_alg as string } : {}),
    ...(c.metadata.scope ? { scope: c.metadata.scope as string } : {}),
    ...(c.metadata.admin_api ? { admin_api: true } : {}),
    application_type: c.metadata.application_type === 'native' ? 'native' : 'web',
    ...(typeof c.metadata.backchannel_logout_uri === 'string' ? { backchannel_logout_uri: c.metadata.backchannel_logout_uri } : {}),
    ...(typeof c.metadata.frontchannel_logout_uri === 'string'
      ? { frontchannel_logout_uri: c.metadata.frontchannel_logout_uri, frontchannel_logout_session_required: c.metadata.frontchannel_logout_session_required !== false }
      : {}),
  };
}

export type ClientMetadataValidator = (realmId: string, metadata: AdapterPayload) => Promise<void>;

/** Clients of a realm; the secret is returned once and stored as a hash. */
export class ClientService {
  constructor(
    private readonly db: Db,
    private readonly validateMetadata?: ClientMetadataValidator,
  ) {}

  async create(input: CreateClientInput): Promise<CreatedClient> {
    const native = Boolean(input.native);
    // a native app cannot keep a secret (RFC 8252, section 8.5): it is a public client with PKCE
    if (native && input.authMethod && input.authMethod !== 'none') throw invalidField('authMethod', (n) => `a native app (${n('native')}) is a public client and has no secret: drop ${n('authMethod')}`);
    const isPublic = Boolean(input.public) || native;
    const authMethod = isPublic ? 'none' : (input.authMethod ?? 'client_secret_basic');
    if (!(AUTH_METHODS as readonly string[]).includes(authMethod)) throw invalidField('authMethod', `unknown auth method "${authMethod}"; use one of ${AUTH_METHODS.filter((m) => m !== 'none').join(', ')}`);
    if (!isPublic && authMethod === 'none') throw invalidField('authMethod', (n) => `auth method "none" is only for public clients (${n('public')})`);
    if (input.authMethod && isPublic && input.authMethod !== 'none') throw invalidField('authMethod', (n) => `a public client has no secret: drop ${n('authMethod')} or ${n('public')}`);
    const metadata = clientMetadata({
      name: input.name,
      native,
      authMethod,
      grants: input.grants?.length ? input.grants : ['authorization_code', 'refresh_token'],
      redirectUris: input.redirectUris ?? [],
      postLogoutRedirectUris: input.postLogoutRedirectUris ?? [],
      idTokenAlg: input.idTokenAlg,
      jwks: input.jwks,
      jwksUri: input.jwksUri,
      scope: input.scope,
      adminApi: Boolean(input.adminApi),
      backchannelLogoutUri: input.backchannelLogoutUri,
      frontchannelLogoutUri: input.frontchannelLogoutUri,
      frontchannelLogoutSessionRequired: input.frontchannelLogoutSessionRequired,
    });

    const realm = await realmsRepo.find(this.db, input.realmId);
    if (!realm) throw notFound(`realm "${input.realmId}"`);

    const clientId = newClientId();
    const secret = hasSecret(authMethod) ? newSecret() : undefined;
    const now = Date.now();
    const row: ClientRow = {
      clientId,
      realmId: input.realmId,
      name: metadata.client_name as string,
      metadata,
      secretHash: secret ? hashHighEntropySecret(secret) : null,
      firstParty: Boolean(input.firstParty),
      createdAt: now,
      updatedAt: now,
    };
    // what the provider would refuse at every request of this client is refused now, before anything is written
    await this.validateMetadata?.(input.realmId, toProviderMetadata(row));
    await this.db.transaction(async (trx) => {
      await clientsRepo.insert(trx, row);
      await realmsRepo.bumpRevision(trx, input.realmId, now);
    });
    const { client_id, ...rest } = view(row);
    return { client_id, ...(secret ? { client_secret: secret } : {}), ...rest };
  }

  /**
   * Changes a client's name, redirect URIs, grants, scopes, ID token algorithm, keys or first-party flag;
   * what is not given stays. A list given replaces the stored one. What makes the client the kind it is
   * (public, native, how it authenticates) stays: a client of another kind is a new client. Checked as a
   * new client is, before anything is written; running servers use the change at once (the realm's
   * revision grows).
   */
  async update(realmId: string, clientId: string, changes: UpdateClientInput): Promise<Omit<CreatedClient, 'client_secret'>> {
    const row = await this.existing(realmId, clientId);
    const m = row.metadata;
    const given = <T>(v: T | undefined, stored: T): T => (v === undefined ? stored : v);
    const keysChange = changes.jwks !== undefined || changes.jwksUri !== undefined;
    const metadata = clientMetadata({
      name: given(changes.name, row.name),
      native: m.application_type === 'native',
      authMethod: m.token_endpoint_auth_method as string,
      grants: given(changes.grants, m.grant_types as string[]),
      redirectUris: given(changes.redirectUris, m.redirect_uris as string[]),
      postLogoutRedirectUris: given(changes.postLogoutRedirectUris, m.post_logout_redirect_uris as string[]),
      idTokenAlg: given(changes.idTokenAlg, m.id_token_signed_response_alg as string | undefined),
      // new keys replace the old ones, by URL or inline
      jwks: keysChange ? changes.jwks : m.jwks,
      jwksUri: keysChange ? changes.jwksUri : (m.jwks_uri as string | undefined),
      scope: given(changes.scope, m.scope as string | undefined),
      adminApi: given(changes.adminApi, Boolean(m.admin_api)),
      backchannelLogoutUri: changes.backchannelLogoutUri === null ? undefined : given(changes.backchannelLogoutUri, m.backchannel_logout_uri as string | undefined),
      // removing the front-channel logout URI removes its session flag with it
      ...(changes.frontchannelLogoutUri === null
        ? { frontchannelLogoutUri: undefined, frontchannelLogoutSessionRequired: changes.frontchannelLogoutSessionRequired }
        : {
            frontchannelLogoutUri: given(changes.frontchannelLogoutUri, m.frontchannel_logout_uri as string | undefined),
            frontchannelLogoutSessionRequired: given(changes.frontchannelLogoutSessionRequired, m.frontchannel_logout_session_required as boolean | undefined),
          }),
    }, { keptName: changes.name === undefined });
    const now = Date.now();
    const updated: ClientRow = { ...row, name: metadata.client_name as string, metadata, firstParty: given(changes.firstParty, row.firstParty), updatedAt: now };
    await this.validateMetadata?.(realmId, toProviderMetadata(updated));
    await this.db.transaction(async (trx) => {
      await clientsRepo.update(trx, updated);
      await realmsRepo.bumpRevision(trx, realmId, now);
    });
    return view(updated);
  }

  /**
   * A new secret for a confidential client, returned once (stored as a hash); the old one stops working
   * at once, on every instance.
   */
  async rotateSecret(realmId: string, clientId: string): Promise<{ client_id: string; client_secret: string; realm: string }> {
    const row = await this.existing(realmId, clientId);
    const authMethod = row.metadata.token_endpoint_auth_method as string;
    if (!hasSecret(authMethod)) {
      throw invalid(`client "${clientId}" has no secret to rotate: it ${authMethod === 'none' ? 'is a public client' : `authenticates with ${authMethod}`}`);
    }
    const secret = newSecret();
    const now = Date.now();
    await this.db.transaction(async (trx) => {
      await clientsRepo.update(trx, { ...row, secretHash: hashHighEntropySecret(secret), updatedAt: now });
      await realmsRepo.bumpRevision(trx, realmId, now);
    });
    return { client_id: clientId, client_secret: secret, realm: realmId };
  }

  /**
   * Deletes a client and revokes what it was given: its grants, with the refresh tokens, codes and
   * stored access tokens issued under them. JWT access tokens it holds stay valid until they expire
   * (they are checked by signature alone).
   */
  async delete(realmId: string, clientId: string): Promise<{ client_id: string; realm: string; deleted: true; revoked_grants: number }> {
    await this.existing(realmId, clientId);
    const now = Date.now();
    let revoked = 0;
    await this.db.transaction(async (trx) => {
      await clientsRepo.delete(trx, realmId, clientId);
      await realmsRepo.bumpRevision(trx, realmId, now);
      revoked = await payloadsRepo.revokeClientGrants(trx, realmId, clientId);
    });
    return { client_id: clientId, realm: realmId, deleted: true, revoked_grants: revoked };
  }

  private async existing(realmId: string, clientId: string): Promise<ClientRow> {
    const realm = await realmsRepo.find(this.db, realmId);
    if (!realm) throw notFound(`realm "${realmId}"`);
    if (clientId === ACCOUNT_CLIENT_ID) throw invalid(`"${ACCOUNT_CLIENT_ID}" is the account page's own client and cannot be changed`);
    const row = await clientsRepo.find(this.db, realmId, clientId);
    if (!row) throw notFound(`client "${clientId}" in realm "${realmId}"`);
    return row;
  }

  async list(realmId: string): Promise<Array<Omit<CreatedClient, 'client_secret'>>> {
    return (await clientsRepo.list(this.db, realmId)).map(view);
  }

  /** One client as `list` shows it (never its secret). */
  async get(realmId: string, clientId: string): Promise<Omit<CreatedClient, 'client_secret'>> {
    return view(await this.existing(realmId, clientId));
  }

  /** Client metadata in node-oidc-provider's shape (read by the adapter). */
  async providerMetadata(realmId: string, clientId: string): Promise<AdapterPayload | undefined> {
    if (clientId === ACCOUNT_CLIENT_ID) return this.accountClient(realmId);
    const row = await clientsRepo.find(this.db, realmId, clientId);
    return row ? toProviderMetadata(row) : undefined;
  }

  /**
   * Every client of a realm in node-oidc-provider's shape (the account page's included), or undefined
   * when the realm has more than `limit`: a provider built with them as static clients answers each
   * request from memory instead of re-reading, re-parsing and re-hashing the client's metadata.
   */
  async allProviderMetadata(realmId: string, limit = 1000): Promise<AdapterPayload[] | undefined> {
    const rows = await clientsRepo.list(this.db, realmId);
    if (rows.length > limit) return undefined;
    const account = await this.accountClient(realmId);
    return [...rows.map(toProviderMetadata), ...(account ? [account] : [])];
  }

  async isFirstParty(realmId: string, clientId: string): Promise<boolean> {
    if (clientId === ACCOUNT_CLIENT_ID) return (await this.accountClient(realmId)) !== undefined;
    return Boolean((await clientsRepo.find(this.db, realmId, clientId))?.firstParty);
  }

  /**
   * The account page's client (src/account): a public first-party client every realm has, built from
   * the realm's issuers rather than stored, so it is not listed and cannot be changed. Adding an
   * issuer bumps the realm's revision, which rebuilds the providers and with them this metadata.
   */
  private async accountClient(realmId: string): Promise<AdapterPayload | undefined> {
    const issuers = (await realmsRepo.issuers(this.db, realmId)).map((i) => i.issuer);
    if (!issuers.length) return undefined;
    return {
      client_id: ACCOUNT_CLIENT_ID,
      client_name: 'Your account',
      token_endpoint_auth_method: 'none',
      grant_types: ['authorization_code'],
      response_types: ['code'],
      redirect_uris: issuers.map((i) => `${i}/account/callback`),
      post_logout_redirect_uris: issuers.map((i) => `${i}/account/signed-out`),
      first_party: true,
    } as AdapterPayload;
  }
}

/** Client id of the account page in every realm; never stored in the clients table. */
export const ACCOUNT_CLIENT_ID = 'latchkey-account';

export function toProviderMetadata(row: ClientRow): AdapterPayload {
  return {
    ...row.metadata,
    client_id: row.clientId,
    ...(row.secretHash ? { client_secret: row.secretHash } : {}),
    first_party: row.firstParty,
  } as AdapterPayload;
}
