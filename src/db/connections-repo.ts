import type { Db } from './knex.js';
import { queryAll, sql } from './statements.js';

// every sign-in page lists the connections it may offer: prepared once (src/db/statements.ts)
const OPEN_TO_REALM = 'not exists (select 1 from tenant_connections tc where tc.realm_id = c.realm_id and tc.connection_id = c.id)';
const AVAILABLE = sql(`select c.* from connections c where c.realm_id = ? and c.enabled = ? and ${OPEN_TO_REALM} order by c.created_at, c.id`);
const AVAILABLE_FOR_TENANT = sql(`
  select c.* from connections c where c.realm_id = ? and c.enabled = ? and (${OPEN_TO_REALM}
    or exists (select 1 from tenant_connections tc where tc.realm_id = c.realm_id and tc.connection_id = c.id and tc.tenant_id = ?))
  order by c.created_at, c.id`);
// the account page offers a user the connections open to the realm and those of the user's tenants
const AVAILABLE_TO_MEMBER = sql(`
  select c.* from connections c where c.realm_id = ? and c.enabled = ? and (${OPEN_TO_REALM}
    or exists (select 1 from tenant_connections tc join tenant_members tm on tm.realm_id = tc.realm_id and tm.tenant_id = tc.tenant_id
               where tc.realm_id = c.realm_id and tc.connection_id = c.id and tm.user_id = ?))
  order by c.created_at, c.id`);

export interface ConnectionRow {
  realmId: string;
  id: string;
  type: 'oidc' | 'oauth2';
  preset: string | null;
  displayName: string;
  /** Issuer, endpoints, client id, scopes, claim mapping (never the secret). */
  config: Record<string, unknown>;
  /** The client secret sealed with the SecretBox, or null for a public client. */
  clientSecret: string | null;
  enabled: boolean;
  createdAt: number;
  updatedAt: number;
}

const toConnection = (r: any): ConnectionRow => ({
  realmId: r.realm_id,
  id: r.id,
  type: r.type,
  preset: r.preset ?? null,
  displayName: r.display_name,
  config: JSON.parse(r.config),
  clientSecret: r.client_secret ?? null,
  enabled: Boolean(r.enabled),
  createdAt: Number(r.created_at),
  updatedAt: Number(r.updated_at),
});

/** Upstream identity providers of a realm, and the tenants a connection is limited to. */
export const connectionsRepo = {
  async find(db: Db, realmId: string, id: string): Promise<ConnectionRow | undefined> {
    const row = await db('connections').where({ realm_id: realmId, id }).first();
    return row ? toConnection(row) : undefined;
  },
  async list(db: Db, realmId: string): Promise<ConnectionRow[]> {
    return (await db('connections').where({ realm_id: realmId }).orderBy('created_at').orderBy('id')).map(toConnection);
  },
  /** Enabled connections open to everyone in the realm, plus (with a tenant) those limited to that tenant. */
  async listAvailable(db: Db, realmId: string, tenantId?: string): Promise<ConnectionRow[]> {
    const rows = tenantId === undefined ? await queryAll(db, AVAILABLE, [realmId, true]) : await queryAll(db, AVAILABLE_FOR_TENANT, [realmId, true, tenantId]);
    return rows.map(toConnection);
  },
  /** Enabled connections open to everyone in the realm, plus those limited to a tenant the user is a member of. */
  async listAvailableToUser(db: Db, realmId: string, userId: string): Promise<ConnectionRow[]> {
    return (await queryAll(db, AVAILABLE_TO_MEMBER, [realmId, true, userId])).map(toConnection);
  },
  async insert(db: Db, c: ConnectionRow): Promise<void> {
    await db('connections').insert({
      realm_id: c.realmId,
      id: c.id,
      type: c.type,
      preset: c.preset,
      display_name: c.displayName,
      config: JSON.stringify(c.config),
      client_secret: c.clientSecret,
      enabled: c.enabled,
      created_at: c.createdAt,
      updated_at: c.updatedAt,
    });
  },
  /** Every connection with a client secret (of one realm, or of every realm): its sealed secret, for checking it opens. */
  async listSealed(db: Db, realmId?: string): Promise<Array<{ realmId: string; id: string; clientSecret: string }>> {
    const q = db('connections').whereNotNull('client_secret').select('realm_id', 'id', 'client_secret').orderBy(['realm_id', 'id']);
    if (realmId !== undefined) q.where({ realm_id: realmId });
    return (await q).map((r: any) => ({ realmId: r.realm_id, id: r.id, clientSecret: r.client_secret }));
  },
  async setClientSecret(db: Db, realmId: string, id: string, sealed: string, at: number): Promise<number> {
    return db('connections').where({ realm_id: realmId, id }).update({ client_secret: sealed, updated_at: at });
  },
  async setEnabled(db: Db, realmId: string, id: string, enabled: boolean, at: number): Promise<number> {
    return db('connections').where({ realm_id: realmId, id }).update({ enabled, updated_at: at });
  },
  async remove(db: Db, realmId: string, id: string): Promise<number> {
    // federated identities and tenant rows go with it (ON DELETE CASCADE); delete them explicitly too,
    // so SQLite databases opened without foreign-key enforcement behave the same
    await db('federated_identities').where({ realm_id: realmId, connection_id: id }).delete();
    await db('tenant_connections').where({ realm_id: realmId, connection_id: id }).delete();
    return db('connections').where({ realm_id: realmId, id }).delete();
  },
  async tenantIds(db: Db, realmId: string, connectionId: string): Promise<string[]> {
    return (await db('tenant_connections').where({ realm_id: realmId, connection_id: connectionId }).orderBy('tenant_id')).map((r: any) => r.tenant_id);
  },
  async addTenants(db: Db, realmId: string, connectionId: string, tenantIds: string[]): Promise<void> {
    if (!tenantIds.length) return;
    await db('tenant_connections').insert(tenantIds.map((tenantId) => ({ realm_id: realmId, tenant_id: tenantId, connection_id: connectionId })));
  },
  /** Which of these tenant ids the realm does not have. */
  async missingTenants(db: Db, realmId: string, tenantIds: string[]): Promise<string[]> {
    if (!tenantIds.length) return [];
    const found = new Set((await db('tenants').where({ realm_id: realmId }).whereIn('id', tenantIds).select('id')).map((r: any) => r.id));
    return tenantIds.filter((id) => !found.has(id));
  },
};
