import type { Db } from '../db/knex.js';
import { payloadsRepo } from '../db/payloads-repo.js';
import { realmsRepo } from '../db/realms-repo.js';
import { tenantsRepo, type TenantBranding, type TenantRow } from '../db/tenants-repo.js';
import { usersRepo, type UserRow } from '../db/users-repo.js';
import { conflict, invalid, invalidField, LatchkeyError, notFound } from '../errors.js';
import { checkedName } from '../display-name.js';
import { logoUrlProblem, realmSettingsSchema } from '../realms/settings.js';

const TENANT_ID = /^[a-z0-9][a-z0-9-]{0,62}$/;
const LABEL = /^(?!-)[a-z0-9-]{1,63}(?<!-)$/;
// the realm's branding rules (https logo URL, #hex colour) apply to tenants too
const brandingSchema = realmSettingsSchema.shape.branding;

export interface Tenant {
  id: string;
  realm: string;
  display_name: string;
  domains: string[];
  connections: string[];
  sso_enforced: boolean;
  branding: TenantBranding;
  created_at: string;
  updated_at: string;
}

export interface TenantInput {
  id: string;
  displayName: string;
  domains?: string[];
  connections?: string[];
  ssoEnforced?: boolean;
  branding?: TenantBranding;
}

export type TenantChanges = Partial<Omit<TenantInput, 'id'>>;

/** A lower-case hostname (no scheme, port, "@" or trailing dot), or an invalid_input error naming it. */
export function normalizeDomain(value: string): string {
  const domain = String(value ?? '').trim().toLowerCase().replace(/^@/, '');
  const labels = domain.split('.');
  if (domain.length > 253 || labels.length < 2 || !labels.every((l) => LABEL.test(l)) || /^[0-9]+$/.test(labels.at(-1)!)) {
    throw invalidField('domains', `"${value}" is not a valid email domain (expected a hostname such as example.com)`);
  }
  return domain;
}

function parseBranding(raw: unknown): TenantBranding {
  const parsed = brandingSchema.safeParse(raw ?? {});
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    throw invalidField(`branding${issue.path.map((p) => `.${String(p)}`).join('')}`, issue.message);
  }
  const logo = logoUrlProblem(parsed.data.logoUrl);
  if (logo) throw invalidField('branding.logoUrl', logo);
  return parsed.data;
}

/**
 * Tenants of a realm (its B2B customers): display name, email domains (home realm discovery),
 * allowed connections, SSO enforcement, branding, and members. Every write is one transaction.
 */
export class TenantService {
  constructor(private readonly db: Db) {}

  async create(realmId: string, input: TenantInput): Promise<Tenant> {
    const id = String(input.id ?? '').trim();
    if (!TENANT_ID.test(id)) throw invalidField('id', `tenant id "${input.id ?? ''}" must be a lower-case slug (a-z, 0-9 and "-", at most 63 characters)`);
    const displayName = this.#name(input.displayName);
    const domains = [...new Set((input.domains ?? []).map(normalizeDomain))];
    const connections = [...new Set((input.connections ?? []).map((c) => String(c).trim()))];
    const branding = parseBranding(input.branding);
    if (!(await realmsRepo.find(this.db, realmId))) throw notFound(`realm "${realmId}"`);
    const now = Date.now();
    const exists = () => conflict(`tenant "${id}" already exists in realm "${realmId}"`);
    try {
      await this.db.transaction(async (trx) => {
        if (await tenantsRepo.find(trx, realmId, id)) throw exists();
        await this.#checkConnections(trx, realmId, connections);
        await tenantsRepo.insert(trx, { realmId, id, displayName, branding, ssoEnforced: Boolean(input.ssoEnforced), createdAt: now, updatedAt: now });
        await tenantsRepo.setDomains(trx, realmId, id, domains);
        await tenantsRepo.setConnections(trx, realmId, id, connections);
      });
    } catch (err) {
      // the same id created at the same moment (PostgreSQL): the primary key refused the insert after the check
      if (!(err instanceof LatchkeyError) && (await tenantsRepo.find(this.db, realmId, id))) throw exists();
      throw err;
    }
    return this.get(realmId, id);
  }

  async update(realmId: string, id: string, changes: TenantChanges): Promise<Tenant> {
    const displayName = changes.displayName === undefined ? undefined : this.#name(changes.displayName);
    const domains = changes.domains === undefined ? undefined : [...new Set(changes.domains.map(normalizeDomain))];
    const connections = changes.connections === undefined ? undefined : [...new Set(changes.connections.map((c) => String(c).trim()))];
    const branding = changes.branding === undefined ? undefined : parseBranding(changes.branding);
    await this.db.transaction(async (trx) => {
      if (!(await tenantsRepo.find(trx, realmId, id))) throw notFound(`tenant "${id}" in realm "${realmId}"`);
      if (connections) {
        await this.#checkConnections(trx, realmId, connections);
        await tenantsRepo.setConnections(trx, realmId, id, connections);
      }
      if (domains) await tenantsRepo.setDomains(trx, realmId, id, domains);
      await tenantsRepo.update(trx, realmId, id, { displayName, branding, ssoEnforced: changes.ssoEnforced }, Date.now());
    });
    return this.get(realmId, id);
  }

  async get(realmId: string, id: string): Promise<Tenant> {
    const row = await tenantsRepo.find(this.db, realmId, id);
    if (!row) throw notFound(`tenant "${id}" in realm "${realmId}"`);
    return this.#public(row);
  }

  find(realmId: string, id: string): Promise<TenantRow | undefined> {
    return tenantsRepo.find(this.db, realmId, id);
  }

  async list(realmId: string): Promise<Tenant[]> {
    return Promise.all((await tenantsRepo.list(this.db, realmId)).map((t) => this.#public(t)));
  }

  async delete(realmId: string, id: string): Promise<{ deleted: string }> {
    const removed = await this.db.transaction(async (trx) => {
      // the sign-ins made for the tenant end with it, as a removed member's do: without their tenant
      // (its grant_tenants rows go with it) their refresh tokens would go on as realm-wide sign-ins
      for (const grantId of await tenantsRepo.grantIdsOf(trx, realmId, id)) await payloadsRepo.revokeGrant(trx, realmId, grantId);
      return tenantsRepo.remove(trx, realmId, id);
    });
    if (!removed) throw notFound(`tenant "${id}" in realm "${realmId}"`);
    return { deleted: id };
  }

  /** Adds a user (by id or email) to a tenant; adding a member again changes nothing. */
  async addMember(realmId: string, tenantId: string, who: { userId?: string; email?: string }): Promise<{ tenant: string; user: string; email: string }> {
    const { tenant, user } = await this.#memberParts(realmId, tenantId, who);
    await tenantsRepo.addMember(this.db, realmId, tenant.id, user.id, Date.now());
    return { tenant: tenant.id, user: user.id, email: user.email };
  }

  async removeMember(realmId: string, tenantId: string, who: { userId?: string; email?: string }): Promise<{ tenant: string; user: string; removed: boolean }> {
    const { tenant, user } = await this.#memberParts(realmId, tenantId, who);
    const removed = await tenantsRepo.removeMember(this.db, realmId, tenant.id, user.id);
    return { tenant: tenant.id, user: user.id, removed: removed > 0 };
  }

  isMember(realmId: string, tenantId: string, userId: string): Promise<boolean> {
    return tenantsRepo.isMember(this.db, realmId, tenantId, userId);
  }

  async tenantsOfUser(realmId: string, userId: string): Promise<TenantRow[]> {
    return tenantsRepo.findMany(this.db, realmId, await tenantsRepo.tenantIdsOfUser(this.db, realmId, userId));
  }

  /**
   * Tenants an email leads to: those whose member it is (when the account exists) and those owning
   * its domain. Callers must not reveal the difference between the two to the person typing.
   */
  async tenantsForEmail(realmId: string, email: string): Promise<Array<TenantRow & { member: boolean }>> {
    const domain = email.trim().toLowerCase().split('@')[1] ?? '';
    const user = await usersRepo.findByEmail(this.db, realmId, email);
    const memberOf = user ? await tenantsRepo.tenantIdsOfUser(this.db, realmId, user.id) : [];
    const byDomain = domain ? await tenantsRepo.tenantIdsForDomain(this.db, realmId, domain) : [];
    const rows = await tenantsRepo.findMany(this.db, realmId, [...new Set([...memberOf, ...byDomain])]);
    return rows.map((t) => ({ ...t, member: memberOf.includes(t.id) }));
  }

  /** The tenant's connections that exist and are enabled, in id order. */
  async connectionsOf(realmId: string, tenantId: string): Promise<Array<{ id: string; displayName: string }>> {
    const ids = await tenantsRepo.connectionIdsOf(this.db, realmId, tenantId);
    return (await tenantsRepo.existingConnections(this.db, realmId, ids)).filter((c) => c.enabled).map(({ id, displayName }) => ({ id, displayName }));
  }

  connectionIdsOf(realmId: string, tenantId: string): Promise<string[]> {
    return tenantsRepo.connectionIdsOf(this.db, realmId, tenantId);
  }

  /**
   * Whether a sign-in may use this connection, and for which tenant. It must exist and be enabled; a
   * connection with tenant_connections rows is limited to those tenants: with a known tenant it must be
   * one of them, without one a connection of exactly one tenant signs in for that tenant.
   * Undefined when the connection may not be used.
   */
  async resolveConnection(realmId: string, connectionId: string, tenantId?: string): Promise<{ tenantId?: string } | undefined> {
    const [connection] = await tenantsRepo.existingConnections(this.db, realmId, [connectionId]);
    if (!connection?.enabled) return undefined;
    const limitedTo = await tenantsRepo.tenantIdsOfConnection(this.db, realmId, connectionId);
    if (tenantId) return limitedTo.includes(tenantId) ? { tenantId } : undefined;
    return limitedTo.length === 1 ? { tenantId: limitedTo[0] } : {};
  }

  /** The tenant a grant was signed in for (see src/tenants/grant-tenant.ts). */
  grantTenant(realmId: string, grantId: string): Promise<string | undefined> {
    return tenantsRepo.grantTenant(this.db, realmId, grantId);
  }

  setGrantTenant(realmId: string, grantId: string, tenantId: string | null): Promise<void> {
    return tenantsRepo.setGrantTenant(this.db, realmId, grantId, tenantId, Date.now());
  }

  #name(value: unknown): string {
    // shown on the sign-in pages: the shared name rule (src/display-name.ts)
    return checkedName(value, 'displayName');
  }

  async #checkConnections(db: Db, realmId: string, ids: string[]): Promise<void> {
    const found = new Set((await tenantsRepo.existingConnections(db, realmId, ids)).map((c) => c.id));
    const missing = ids.filter((c) => !found.has(c));
    if (missing.length) throw notFound(`connection${missing.length > 1 ? 's' : ''} ${missing.map((c) => `"${c}"`).join(', ')} in realm "${realmId}"`);
  }

  async #memberParts(realmId: string, tenantId: string, who: { userId?: string; email?: string }): Promise<{ tenant: TenantRow; user: UserRow }> {
    const tenant = await tenantsRepo.find(this.db, realmId, tenantId);
    if (!tenant) throw notFound(`tenant "${tenantId}" in realm "${realmId}"`);
    if (!who.userId && !who.email) throw invalid('name the member by user id or email');
    const user = who.userId ? await usersRepo.findById(this.db, realmId, who.userId) : await usersRepo.findByEmail(this.db, realmId, who.email!);
    if (!user) throw notFound(`user ${who.userId ?? who.email} in realm "${realmId}"`);
    return { tenant, user };
  }

  async #public(t: TenantRow): Promise<Tenant> {
    const [domains, connections] = await Promise.all([tenantsRepo.domainsOf(this.db, t.realmId, t.id), tenantsRepo.connectionIdsOf(this.db, t.realmId, t.id)]);
    return {
      id: t.id,
      realm: t.realmId,
      display_name: t.displayName,
      domains,
      connections,
      sso_enforced: t.ssoEnforced,
      branding: t.branding,
      created_at: new Date(t.createdAt).toISOString(),
      updated_at: new Date(t.updatedAt).toISOString(),
    };
  }
}
