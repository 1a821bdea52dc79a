import type { SecretBox } from '../crypto/secret-box.js';
import { connectionsRepo, type ConnectionRow } from '../db/connections-repo.js';
import type { Db } from '../db/knex.js';
import { conflict, invalidField, notFound } from '../errors.js';
import type { RealmService } from '../realms/service.js';
import { resolveUpstreamConfig, type ConnectionInput, type UpstreamConfig } from './settings.js';

const CONNECTION_ID = /^[a-z0-9][a-z0-9_-]{0,62}$/;
const MAX_SECRET = 4096;

/** The one redirect URI per issuer that operators register at the upstream provider. */
export const CALLBACK_PATH = '/connections/callback';
export const callbackUrl = (issuer: string) => `${issuer}${CALLBACK_PATH}`;
/** Where the callback sends an answer to a link started on the account page. */
export const LINK_RETURN_PATH = '/account/linked-accounts/return';
/** How the state of a link starts: an answer with an unknown or used one goes back to the account page too. */
export const LINK_STATE_PREFIX = 'link-';

/** Where a sign-in page (or home realm discovery) sends the browser to continue with a connection. */
export function connectionStartPath(uid: string, connectionId: string): string {
  return `/interaction/${encodeURIComponent(uid)}/connection/${encodeURIComponent(connectionId)}`;
}

/** Locally served icon of a connection (a neutral monogram per preset, a key for generic connections). */
export const iconPath = (preset: string | null) => `/assets/connections/${preset ?? 'generic'}.svg`;

/** A connection as the CLI and admin callers see it: never the client secret. */
export interface PublicConnection {
  id: string;
  realm: string;
  type: 'oidc' | 'oauth2';
  preset: string | null;
  name: string;
  client_id: string;
  issuer?: string;
  authorization_endpoint?: string;
  token_endpoint?: string;
  userinfo_endpoint?: string;
  emails_endpoint?: string;
  scopes: string[];
  claims?: Record<string, string>;
  has_client_secret: boolean;
  tenants: string[];
  enabled: boolean;
  /** Register these at the upstream provider (one per issuer domain of the realm). */
  redirect_uris: string[];
  created_at: string;
}

/** A connection ready to sign in with: its upstream settings and the opened client secret. */
export interface UsableConnection {
  realmId: string;
  id: string;
  name: string;
  preset: string | null;
  upstream: UpstreamConfig;
  clientSecret?: string;
}

/** What a login page shows: the button's name and icon. */
export interface ConnectionButton {
  id: string;
  name: string;
  icon: string;
}

const secretContext = (realmId: string, id: string) => `connection:${realmId}:${id}`;

/** Upstream identity providers of a realm (generic OIDC, generic OAuth 2.0 and presets). */
export class ConnectionService {
  constructor(
    private readonly db: Db,
    private readonly box: SecretBox,
    private readonly realms: RealmService,
  ) {}

  async create(input: ConnectionInput): Promise<PublicConnection> {
    if (!CONNECTION_ID.test(input.id ?? '')) throw invalidField('id', `connection id "${input.id ?? ''}" must be 1-63 lower-case letters, digits, "-" or "_", starting with a letter or digit`);
    const realm = await this.realms.get(input.realmId);
    const resolved = resolveUpstreamConfig(input);
    if (input.clientSecret !== undefined && (input.clientSecret.length === 0 || input.clientSecret.length > MAX_SECRET)) {
      throw invalidField('clientSecret', `the client secret must be 1-${MAX_SECRET} characters`);
    }
    const tenantIds = [...new Set(input.tenantIds ?? [])];
    const now = Date.now();
    const { type, ...config } = resolved.config;
    const row: ConnectionRow = {
      realmId: realm.id,
      id: input.id,
      type,
      preset: resolved.preset,
      displayName: resolved.displayName,
      config,
      clientSecret: input.clientSecret ? this.box.seal(input.clientSecret, secretContext(realm.id, input.id)) : null,
      enabled: true,
      createdAt: now,
      updatedAt: now,
    };
    await this.db.transaction(async (trx) => {
      if (await connectionsRepo.find(trx, realm.id, input.id)) throw conflict(`connection "${input.id}" already exists in realm "${realm.id}"`);
      const missing = await connectionsRepo.missingTenants(trx, realm.id, tenantIds);
      if (missing.length) throw invalidField('tenantIds', `realm "${realm.id}" has no tenant ${missing.map((t) => `"${t}"`).join(', ')}: create the tenant first, or leave it out`);
      try {
        await connectionsRepo.insert(trx, row);
        await connectionsRepo.addTenants(trx, realm.id, input.id, tenantIds);
      } catch {
        // checked above: only a concurrent change (the same id created, a tenant removed) gets here
        throw conflict(`connection "${input.id}" could not be saved: it was created, or one of its tenants (${tenantIds.join(', ') || 'none'}) removed, at the same time; try again`);
      }
    });
    return this.#public(row, tenantIds, realm.issuers);
  }

  async list(realmId: string): Promise<PublicConnection[]> {
    const realm = await this.realms.get(realmId);
    const rows = await connectionsRepo.list(this.db, realm.id);
    return Promise.all(rows.map(async (r) => this.#public(r, await connectionsRepo.tenantIds(this.db, realm.id, r.id), realm.issuers)));
  }

  async get(realmId: string, id: string): Promise<PublicConnection> {
    const realm = await this.realms.get(realmId);
    const row = await connectionsRepo.find(this.db, realm.id, id);
    if (!row) throw notFound(`connection "${id}" in realm "${realmId}"`);
    return this.#public(row, await connectionsRepo.tenantIds(this.db, realm.id, id), realm.issuers);
  }

  /**
   * Replaces a connection's client secret (sealed with this LATCHKEY_SECRET): after a rotation at the
   * upstream provider, or when the stored one was sealed with another secret (`latchkey secrets check`).
   * Sign-ins use it at once; the secret is never returned.
   */
  async setClientSecret(realmId: string, id: string, clientSecret: string): Promise<PublicConnection> {
    const realm = await this.realms.get(realmId);
    if (clientSecret.length === 0 || clientSecret.length > MAX_SECRET) throw invalidField('clientSecret', `the client secret must be 1-${MAX_SECRET} characters`);
    const sealed = this.box.seal(clientSecret, secretContext(realm.id, id));
    if (!(await connectionsRepo.setClientSecret(this.db, realm.id, id, sealed, Date.now()))) throw notFound(`connection "${id}" in realm "${realmId}"`);
    return this.get(realm.id, id);
  }

  /**
   * The connections (of one realm, or of every realm) whose stored client secret this LATCHKEY_SECRET
   * cannot open: sealed with another secret, their sign-ins fail. Ids only, never a secret.
   */
  async unreadableSecrets(realmId?: string): Promise<{ total: number; unreadable: Array<{ realmId: string; id: string }> }> {
    const rows = await connectionsRepo.listSealed(this.db, realmId);
    const unreadable = rows.filter((r) => {
      try {
        this.box.open(r.clientSecret, secretContext(r.realmId, r.id));
        return false;
      } catch {
        return true;
      }
    });
    return { total: rows.length, unreadable: unreadable.map((r) => ({ realmId: r.realmId, id: r.id })) };
  }

  /** Turns a connection off (its button disappears, its sign-ins are refused; links are kept) or back on. */
  async setEnabled(realmId: string, id: string, enabled: boolean): Promise<PublicConnection> {
    await this.realms.get(realmId);
    if (!(await connectionsRepo.setEnabled(this.db, realmId, id, enabled, Date.now()))) throw notFound(`connection "${id}" in realm "${realmId}"`);
    return this.get(realmId, id);
  }

  async remove(realmId: string, id: string): Promise<{ removed: string; realm: string }> {
    await this.realms.get(realmId);
    const removed = await this.db.transaction((trx) => connectionsRepo.remove(trx, realmId, id));
    if (!removed) throw notFound(`connection "${id}" in realm "${realmId}"`);
    return { removed: id, realm: realmId };
  }

  /** Connections a sign-in may use: those open to the whole realm, plus those limited to `tenantId`. */
  async availableFor(realmId: string, options: { tenantId?: string } = {}): Promise<ConnectionButton[]> {
    const rows = await connectionsRepo.listAvailable(this.db, realmId, options.tenantId);
    return rows.map((r) => ({ id: r.id, name: r.displayName, icon: iconPath(r.preset) }));
  }

  /** A connection this sign-in may use (enabled, and open to it), with its secret opened; undefined otherwise. */
  async usable(realmId: string, id: string, options: { tenantId?: string } = {}): Promise<UsableConnection | undefined> {
    const available = await connectionsRepo.listAvailable(this.db, realmId, options.tenantId);
    return this.#usable(realmId, available.find((r) => r.id === id));
  }

  /**
   * Connections a signed-in user may link on the account page: those open to the whole realm, plus those
   * limited to a tenant the user is a member of (as their tenant's sign-in page would offer them).
   */
  async availableToUser(realmId: string, userId: string): Promise<ConnectionButton[]> {
    const rows = await connectionsRepo.listAvailableToUser(this.db, realmId, userId);
    return rows.map((r) => ({ id: r.id, name: r.displayName, icon: iconPath(r.preset) }));
  }

  /** A connection `availableToUser` lists, ready to link with; undefined otherwise. */
  async usableByUser(realmId: string, id: string, userId: string): Promise<UsableConnection | undefined> {
    const available = await connectionsRepo.listAvailableToUser(this.db, realmId, userId);
    return this.#usable(realmId, available.find((r) => r.id === id));
  }

  #usable(realmId: string, row: ConnectionRow | undefined): UsableConnection | undefined {
    if (!row) return undefined;
    return {
      realmId,
      id: row.id,
      name: row.displayName,
      preset: row.preset,
      upstream: { type: row.type, ...row.config } as UpstreamConfig,
      clientSecret: row.clientSecret ? this.box.open(row.clientSecret, secretContext(realmId, row.id)) : undefined,
    };
  }

  #public(row: ConnectionRow, tenants: string[], issuers: string[]): PublicConnection {
    const c = row.config as Record<string, any>;
    return {
      id: row.id,
      realm: row.realmId,
      type: row.type,
      preset: row.preset,
      name: row.displayName,
      client_id: c.clientId,
      ...(row.type === 'oidc'
        ? { issuer: c.issuer }
        : {
            authorization_endpoint: c.authorizationEndpoint,
            token_endpoint: c.tokenEndpoint,
            userinfo_endpoint: c.userinfoEndpoint,
            ...(c.emailsEndpoint ? { emails_endpoint: c.emailsEndpoint } : {}),
            claims: c.claims,
          }),
      scopes: c.scopes,
      has_client_secret: row.clientSecret !== null,
      tenants,
      enabled: row.enabled,
      redirect_uris: issuers.map(callbackUrl),
      created_at: new Date(row.createdAt).toISOString(),
    };
  }
}
