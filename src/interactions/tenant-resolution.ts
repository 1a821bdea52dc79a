import { EMAIL_ADDRESS as EMAIL } from '../accounts/email-address.js';
import type { Context } from 'koa';
import type { TenantRow } from '../db/tenants-repo.js';
import type { Services } from '../server/services.js';
import { served, type Details } from './kit.js';
import type { Progress } from './progress.js';

/** What the sign-in does next about tenants: nothing, an error page, or another URL (a connection, the picker, the SSO page). */
export type TenantOutcome = { kind: 'continue' } | { kind: 'error'; status: number; title: string; message: string; code: string } | { kind: 'redirect'; url: string };

/** How a sign-in ends with respect to tenants (see finish in next-step.ts). */
export type TenantAtFinish = { kind: 'tenant'; tenantId: string | null } | { kind: 'pick'; choices: string[] } | { kind: 'refuse'; description: string };

const CONTINUE: TenantOutcome = { kind: 'continue' };
const param = (d: Details, name: string): string | undefined => (typeof d.params[name] === 'string' && d.params[name] ? (d.params[name] as string) : undefined);
// a value with control characters names nothing here (and PostgreSQL cannot even look up text holding a NUL)
const CONTROL = /\p{Cc}/u;

/**
 * Which tenant a sign-in is for, in the order: the `tenant_id` authorization parameter, the
 * `connection_id` parameter (straight to that connection), the email's domain (home realm discovery),
 * then `login_hint` (the same discovery on the hinted email). Membership is required for a tenant to
 * reach the tokens: a user whose email domain matches a tenant but who is not its member is refused
 * (an administrator adds members; nothing joins a tenant by itself). A tenant with `ssoEnforced` never
 * gets a password: its sign-ins go to its connections, and a password sign-in for it is refused.
 *
 * Account enumeration: tenants matched by email domain are public knowledge. Memberships are only
 * used before the password when the email belongs to an SSO-enforced tenant (the password must not be
 * offered); otherwise a member of several tenants chooses one after the first factor.
 */
export class TenantResolver {
  constructor(private readonly services: Services) {}

  connectionUrl(d: Details, connectionId: string): string {
    return `/interaction/${d.uid}/connection/${encodeURIComponent(connectionId)}`;
  }

  /** The first sign-in page of an interaction: apply tenant_id, connection_id and login_hint. */
  async start(ctx: Context, d: Details, fresh: boolean): Promise<TenantOutcome> {
    const { tenants, progress } = this.services;
    const realmId = served(ctx).realm.id;
    const tenantParam = param(d, 'tenant_id');
    const tenant = tenantParam && !CONTROL.test(tenantParam) ? await tenants.find(realmId, tenantParam) : undefined;
    if (tenantParam && !tenant) {
      return { kind: 'error', status: 400, title: 'Unknown organisation', message: `The application asked to sign in for the organisation "${tenantParam}", which does not exist here. Go back to the application.`, code: 'unknown_tenant' };
    }
    const connectionId = fresh ? param(d, 'connection_id') : undefined;
    if (connectionId) {
      const allowed = CONTROL.test(connectionId) ? undefined : await tenants.resolveConnection(realmId, connectionId, tenant?.id);
      if (!allowed) {
        return {
          kind: 'error',
          status: 400,
          title: 'Unknown sign-in method',
          message: tenant ? `The sign-in method "${connectionId}" does not exist or is not available for ${tenant.displayName}.` : `The sign-in method "${connectionId}" does not exist or is not available.`,
          code: 'unknown_connection',
        };
      }
      await progress.put(realmId, d, { stage: 'identify', amr: [], ...(allowed.tenantId ? { tenantId: allowed.tenantId } : {}) });
      return { kind: 'redirect', url: this.connectionUrl(d, connectionId) };
    }
    if (tenant) {
      await progress.put(realmId, d, { stage: 'identify', amr: [], tenantId: tenant.id });
      if (tenant.ssoEnforced) return this.route(ctx, d, tenant, undefined);
    }
    const hint = fresh ? param(d, 'login_hint') : undefined;
    if (hint && EMAIL.test(hint) && hint.length <= 320 && !d.session?.accountId) return this.afterEmail(ctx, d, hint.trim());
    return CONTINUE;
  }

  /** After the email is known (typed, or login_hint): home realm discovery. */
  async afterEmail(ctx: Context, d: Details, email: string): Promise<TenantOutcome> {
    const { tenants, progress } = this.services;
    const realmId = served(ctx).realm.id;
    const current = (await progress.get(realmId, d))?.tenantId;
    if (current) {
      const tenant = await tenants.find(realmId, current);
      return tenant?.ssoEnforced ? this.route(ctx, d, tenant, email) : CONTINUE;
    }
    const found = await tenants.tenantsForEmail(realmId, email);
    const domain = email.toLowerCase().split('@')[1];
    const ssoMember = found.some((t) => t.member && t.ssoEnforced);
    const candidates: TenantRow[] = [];
    for (const t of found) {
      const domainRoute = (await this.#ownsDomain(realmId, t.id, domain)) && (await this.#routable(realmId, t));
      if (domainRoute || (ssoMember && t.member)) candidates.push(t);
    }
    if (candidates.length === 0) return CONTINUE;
    if (candidates.length === 1) return this.route(ctx, d, candidates[0]!, email);
    await progress.put(realmId, d, { stage: 'tenant-pick', email, amr: [], tenantChoices: candidates.map((t) => t.id) });
    return { kind: 'redirect', url: `/interaction/${d.uid}` };
  }

  /** Signs in for this tenant: its single connection, the list of its connections, or (no SSO) the password step. */
  async route(ctx: Context, d: Details, tenant: TenantRow, email: string | undefined): Promise<TenantOutcome> {
    const { tenants, progress } = this.services;
    const realmId = served(ctx).realm.id;
    const connections = await tenants.connectionsOf(realmId, tenant.id);
    const base: Progress = { stage: 'identify', amr: [], tenantId: tenant.id, ...(email ? { email } : {}) };
    if (connections.length === 1) {
      await progress.put(realmId, d, base);
      return { kind: 'redirect', url: this.connectionUrl(d, connections[0]!.id) };
    }
    if (connections.length > 1 || tenant.ssoEnforced) {
      await progress.put(realmId, d, { ...base, stage: 'sso' });
      return { kind: 'redirect', url: `/interaction/${d.uid}` };
    }
    // no connection and no SSO: the ordinary steps, for this tenant
    await progress.put(realmId, d, email ? { ...base, stage: 'password' } : base);
    return email ? { kind: 'redirect', url: `/interaction/${d.uid}` } : CONTINUE;
  }

  /**
   * The tenant enforcing single sign-on that rules out a password here: the sign-in's tenant, or, when
   * none is chosen yet, the tenant the email is sent to by home realm discovery (its domain, or its
   * membership) when that one enforces it. A password posted straight to the password step, past the
   * email step that would have sent the user to the tenant's connection, is refused the same way.
   */
  async ssoOnly(ctx: Context, d: Details, email?: string): Promise<TenantRow | undefined> {
    const realmId = served(ctx).realm.id;
    const tenantId = (await this.services.progress.get(realmId, d))?.tenantId ?? param(d, 'tenant_id');
    if (tenantId) {
      const tenant = CONTROL.test(tenantId) ? undefined : await this.services.tenants.find(realmId, tenantId);
      return tenant?.ssoEnforced ? tenant : undefined;
    }
    if (!email || email.length > 320 || !EMAIL.test(email)) return undefined;
    const domain = email.toLowerCase().split('@')[1];
    for (const t of await this.services.tenants.tenantsForEmail(realmId, email)) {
      if (t.ssoEnforced && (t.member || (await this.#ownsDomain(realmId, t.id, domain)))) return t;
    }
    return undefined;
  }

  /**
   * At the end of a sign-in: the tenant that goes into the tokens, the picker, or a refusal. An
   * SSO-enforced tenant is only ever signed in for through one of its own connections: a password, a
   * passkey, a recovery code or another connection neither gets a sign-in for it nor puts it in the tokens.
   */
  async atFinish(ctx: Context, d: Details, accountId: string, amr: string[], p: Progress | undefined): Promise<TenantAtFinish> {
    const { tenants } = this.services;
    const realmId = served(ctx).realm.id;
    const requested = p?.tenantId ?? param(d, 'tenant_id');
    // this sign-in came through one of the tenant's own connections: signed in by it (amr `fed`), or its
    // upstream identity waits for this very account's proof, which this sign-in just gave (it is linked at finish)
    const came = p?.viaConnection && amr.includes('fed') ? p.viaConnection : undefined;
    const linking = p?.linking ? await this.services.linking.waitingFor(realmId, d.uid, accountId) : undefined;
    const viaOwnConnection = async (tenantId: string) => {
      if (!came && !linking) return false;
      const own = await tenants.connectionIdsOf(realmId, tenantId);
      return Boolean((came && own.includes(came)) || (linking && own.includes(linking)));
    };
    if (requested) {
      const tenant = CONTROL.test(requested) ? undefined : await tenants.find(realmId, requested);
      if (!tenant) return { kind: 'refuse', description: `tenant ${requested} does not exist` };
      const own = await viaOwnConnection(tenant.id);
      if (!(await tenants.isMember(realmId, tenant.id, accountId))) {
        // just-in-time membership (Auth0's auto-membership): signing in through one of the tenant's own
        // connections proves the user belongs to it; any other way in needs an operator to add them
        if (!own) return { kind: 'refuse', description: `the user is not a member of tenant ${tenant.id}` };
        await tenants.addMember(realmId, tenant.id, { userId: accountId });
      }
      if (tenant.ssoEnforced && !own) return { kind: 'refuse', description: `tenant ${tenant.id} requires single sign-on through its connections` };
      return { kind: 'tenant', tenantId: tenant.id };
    }
    const mine: TenantRow[] = [];
    for (const t of await tenants.tenantsOfUser(realmId, accountId)) if (!t.ssoEnforced || (await viaOwnConnection(t.id))) mine.push(t);
    if (mine.length === 0) return { kind: 'tenant', tenantId: null };
    if (mine.length === 1) return { kind: 'tenant', tenantId: mine[0]!.id };
    return { kind: 'pick', choices: mine.map((t) => t.id) };
  }

  async #routable(realmId: string, t: TenantRow): Promise<boolean> {
    return t.ssoEnforced || (await this.services.tenants.connectionIdsOf(realmId, t.id)).length > 0;
  }

  async #ownsDomain(realmId: string, tenantId: string, domain: string | undefined): Promise<boolean> {
    if (!domain) return false;
    return (await this.services.tenants.get(realmId, tenantId)).domains.includes(domain);
  }
}
