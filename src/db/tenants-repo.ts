import { deleteInBatches } from './batched-delete.js';
import type { Db } from './knex.js';
import { queryAll, queryFirst, runWrite, sql } from './statements.js';

// the sign-in and token paths read these on every flow: prepared once (src/db/statements.ts)
const TENANT_IDS_OF_USER = sql('select tenant_id from tenant_members where realm_id = ? and user_id = ? order by tenant_id');
const GRANT_TENANT = sql('select tenant_id from grant_tenants where realm_id = ? and grant_id = ? limit 1');
const FORGET_GRANT_TENANT = sql('delete from grant_tenants where realm_id = ? and grant_id = ?');
const SET_GRANT_TENANT = sql(`
  insert into grant_tenants (realm_id, grant_id, tenant_id, created_at) values (?, ?, ?, ?)
  on conflict (realm_id, grant_id) do update set tenant_id = excluded.tenant_id, created_at = excluded.created_at`);

export interface TenantBranding {
  logoUrl?: string;
  primaryColor?: string;
}

export interface TenantRow {
  realmId: string;
  id: string;
  displayName: string;
  branding: TenantBranding;
  ssoEnforced: boolean;
  createdAt: number;
  updatedAt: number;
}

const toTenant = (r: any): TenantRow => ({
  realmId: r.realm_id,
  id: r.id,
  displayName: r.display_name,
  branding: JSON.parse(r.branding ?? '{}'),
  ssoEnforced: Boolean(r.sso_enforced),
  createdAt: Number(r.created_at),
  updatedAt: Number(r.updated_at),
});

/** Tenants of a realm with their email domains, members and allowed connections. */
export const tenantsRepo = {
  async find(db: Db, realmId: string, id: string): Promise<TenantRow | undefined> {
    const row = await db('tenants').where({ realm_id: realmId, id }).first();
    return row ? toTenant(row) : undefined;
  },
  async list(db: Db, realmId: string): Promise<TenantRow[]> {
    return (await db('tenants').where({ realm_id: realmId }).orderBy('id')).map(toTenant);
  },
  async findMany(db: Db, realmId: string, ids: string[]): Promise<TenantRow[]> {
    if (!ids.length) return [];
    return (await db('tenants').where({ realm_id: realmId }).whereIn('id', ids).orderBy('id')).map(toTenant);
  },
  async insert(db: Db, t: TenantRow): Promise<void> {
    await db('tenants').insert({
      realm_id: t.realmId,
      id: t.id,
      display_name: t.displayName,
      branding: JSON.stringify(t.branding),
      sso_enforced: t.ssoEnforced,
      created_at: t.createdAt,
      updated_at: t.updatedAt,
    });
  },
  async update(db: Db, realmId: string, id: string, changes: Partial<Pick<TenantRow, 'displayName' | 'branding' | 'ssoEnforced'>>, at: number): Promise<void> {
    const row: Record<string, unknown> = { updated_at: at };
    if (changes.displayName !== undefined) row.display_name = changes.displayName;
    if (changes.branding !== undefined) row.branding = JSON.stringify(changes.branding);
    if (changes.ssoEnforced !== undefined) row.sso_enforced = changes.ssoEnforced;
    await db('tenants').where({ realm_id: realmId, id }).update(row);
  },
  async remove(db: Db, realmId: string, id: string): Promise<number> {
    // children first: SQLite enforces the cascades only when foreign keys are switched on
    for (const table of ['tenant_domains', 'tenant_members', 'tenant_connections', 'grant_tenants']) await db(table).where({ realm_id: realmId, tenant_id: id }).delete();
    return db('tenants').where({ realm_id: realmId, id }).delete();
  },

  async domainsOf(db: Db, realmId: string, tenantId: string): Promise<string[]> {
    return (await db('tenant_domains').where({ realm_id: realmId, tenant_id: tenantId }).orderBy('domain')).map((r: any) => r.domain);
  },
  async setDomains(db: Db, realmId: string, tenantId: string, domains: string[]): Promise<void> {
    await db('tenant_domains').where({ realm_id: realmId, tenant_id: tenantId }).delete();
    if (domains.length) await db('tenant_domains').insert(domains.map((domain) => ({ realm_id: realmId, tenant_id: tenantId, domain })));
  },
  async tenantIdsForDomain(db: Db, realmId: string, domain: string): Promise<string[]> {
    return (await db('tenant_domains').where({ realm_id: realmId, domain }).orderBy('tenant_id')).map((r: any) => r.tenant_id);
  },

  async connectionIdsOf(db: Db, realmId: string, tenantId: string): Promise<string[]> {
    return (await db('tenant_connections').where({ realm_id: realmId, tenant_id: tenantId }).orderBy('connection_id')).map((r: any) => r.connection_id);
  },
  async setConnections(db: Db, realmId: string, tenantId: string, connectionIds: string[]): Promise<void> {
    await db('tenant_connections').where({ realm_id: realmId, tenant_id: tenantId }).delete();
    if (connectionIds.length) await db('tenant_connections').insert(connectionIds.map((connection_id) => ({ realm_id: realmId, tenant_id: tenantId, connection_id })));
  },
  /** Tenants a connection is limited to (none: the connection is open to everyone in the realm). */
  async tenantIdsOfConnection(db: Db, realmId: string, connectionId: string): Promise<string[]> {
    return (await db('tenant_connections').where({ realm_id: realmId, connection_id: connectionId })).map((r: any) => r.tenant_id);
  },
  /** Of these connection ids, the ones that exist in the realm and are enabled. */
  async existingConnections(db: Db, realmId: string, ids: string[]): Promise<Array<{ id: string; enabled: boolean; displayName: string }>> {
    if (!ids.length) return [];
    return (await db('connections').where({ realm_id: realmId }).whereIn('id', ids).orderBy('id')).map((r: any) => ({ id: r.id, enabled: Boolean(r.enabled), displayName: r.display_name }));
  },

  async addMember(db: Db, realmId: string, tenantId: string, userId: string, at: number): Promise<void> {
    await db('tenant_members').insert({ realm_id: realmId, tenant_id: tenantId, user_id: userId, created_at: at }).onConflict(['realm_id', 'tenant_id', 'user_id']).ignore();
  },
  async removeMember(db: Db, realmId: string, tenantId: string, userId: string): Promise<number> {
    return db('tenant_members').where({ realm_id: realmId, tenant_id: tenantId, user_id: userId }).delete();
  },
  async isMember(db: Db, realmId: string, tenantId: string, userId: string): Promise<boolean> {
    return Boolean(await db('tenant_members').where({ realm_id: realmId, tenant_id: tenantId, user_id: userId }).first());
  },
  async tenantIdsOfUser(db: Db, realmId: string, userId: string): Promise<string[]> {
    return (await queryAll(db, TENANT_IDS_OF_USER, [realmId, userId])).map((r) => r.tenant_id as string);
  },
  async memberCount(db: Db, realmId: string, tenantId: string): Promise<number> {
    const row = await db('tenant_members').where({ realm_id: realmId, tenant_id: tenantId }).count({ n: '*' }).first();
    return Number((row as any)?.n ?? 0);
  },

  /** The grants (sign-ins) made for a tenant. */
  async grantIdsOf(db: Db, realmId: string, tenantId: string): Promise<string[]> {
    return (await db('grant_tenants').where({ realm_id: realmId, tenant_id: tenantId }).select('grant_id')).map((r: any) => r.grant_id);
  },
  async grantTenant(db: Db, realmId: string, grantId: string): Promise<string | undefined> {
    const row = await queryFirst(db, GRANT_TENANT, [realmId, grantId]);
    return row?.tenant_id;
  },
  async setGrantTenant(db: Db, realmId: string, grantId: string, tenantId: string | null, at: number): Promise<void> {
    if (tenantId === null) {
      await runWrite(db, FORGET_GRANT_TENANT, [realmId, grantId]);
      return;
    }
    await runWrite(db, SET_GRANT_TENANT, [realmId, grantId, tenantId, at]);
  },
  /** Forgets the tenant of grants that no longer exist (expired, revoked), once they are older than `before`. */
  async purgeOrphanGrantTenants(db: Db, before: number): Promise<number> {
    return deleteInBatches(db, 'grant_tenants', ['realm_id', 'grant_id'], (q) =>
      q.where('created_at', '<', before).whereNotExists(function grantRow() {
        this.select(db.raw('1'))
          .from('oidc_payloads')
          .whereRaw('oidc_payloads.realm_id = grant_tenants.realm_id')
          .andWhere('oidc_payloads.model', 'Grant')
          .andWhereRaw('oidc_payloads.id = grant_tenants.grant_id');
      }),
    );
  },
};
