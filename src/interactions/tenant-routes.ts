import type Router from '@koa/router';
import type { Context } from 'koa';
import { readForm } from '../server/body.js';
import type { Services } from '../server/services.js';
import { stepAnswerer } from './answer-step.js';
import { csrfToken } from './csrf.js';
import { checkedForm, errorPage, interactionOf, page, seeOther, served, type Details } from './kit.js';
import { layoutFor } from './layout.js';
import type { SignInSteps } from './next-step.js';
import type { Progress } from './progress.js';
import type { TenantOutcome, TenantResolver } from './tenant-resolution.js';

/**
 * Tenant-aware sign-in: applies tenant_id, connection_id and login_hint on the first page, and serves
 * the tenant picker and the single sign-on page. Registered before the sign-in routes.
 */
export function tenantRoutes(router: Router, services: Services, resolver: TenantResolver, steps: SignInSteps): void {
  const { progress, tenants, csrfKey } = services;
  const answerStep = stepAnswerer(services);

  function follow(ctx: Context, outcome: TenantOutcome): boolean {
    if (outcome.kind === 'error') {
      errorPage(ctx, outcome.status, outcome.title, outcome.message, outcome.code);
      return true;
    }
    if (outcome.kind === 'redirect') {
      seeOther(ctx, outcome.url);
      return true;
    }
    return false;
  }

  async function picker(ctx: Context, d: Details, p: Progress, error?: string): Promise<void> {
    const realmId = served(ctx).realm.id;
    const rows = await Promise.all((p.tenantChoices ?? []).map((id) => tenants.find(realmId, id)));
    page(
      ctx,
      'tenant-picker',
      {
        layout: layoutFor(served(ctx), 'Choose an organisation'),
        action: `/interaction/${d.uid}/tenant`,
        csrf: csrfToken(csrfKey, d.uid),
        email: p.email,
        tenants: rows.filter((t) => t !== undefined).map((t) => ({ id: t.id, name: t.displayName })),
        error,
        changeEmailAction: p.userId ? undefined : `/interaction/${d.uid}/restart`,
      },
      error ? 400 : 200,
    );
  }

  async function sso(ctx: Context, d: Details, p: Progress): Promise<void> {
    const realmId = served(ctx).realm.id;
    const tenant = p.tenantId ? await tenants.find(realmId, p.tenantId) : undefined;
    if (!tenant) return errorPage(ctx, 400, 'Unknown organisation', 'This sign-in is for an organisation that no longer exists. Go back to the application.', 'unknown_tenant');
    const connections = await tenants.connectionsOf(realmId, tenant.id);
    page(ctx, 'tenant-sso', {
      layout: layoutFor(served(ctx), `Sign in to ${tenant.displayName}`, tenant),
      tenantName: tenant.displayName,
      connections: connections.map((c) => ({ name: c.displayName, url: resolver.connectionUrl(d, c.id) })),
      csrf: csrfToken(csrfKey, d.uid),
      changeEmailAction: `/interaction/${d.uid}/restart`,
    });
  }

  router.get('/interaction/:uid', async (ctx, next) => {
    const d = await interactionOf(ctx);
    if (!d) return;
    if (d.prompt.name !== 'login') return next();
    const realmId = served(ctx).realm.id;
    const p = await progress.get(realmId, d);
    // the first page of the interaction, or the email page again after "Use another email"
    if (!p || (p.stage === 'identify' && !p.tenantId && !p.email)) {
      if (follow(ctx, await resolver.start(ctx, d, !p))) return;
    }
    const now = await progress.get(realmId, d);
    if (now?.stage === 'tenant-pick') return picker(ctx, d, now);
    if (now?.stage === 'sso') return sso(ctx, d, now);
    return next();
  });

  /** The tenant picker's answer: before the password (route to the tenant) or after the first factor (finish). */
  router.post('/interaction/:uid/tenant', async (ctx) => {
    const form = await readForm(ctx);
    const d = await interactionOf(ctx);
    if (!d || !(await checkedForm(ctx, csrfKey, d, form))) return;
    const realmId = served(ctx).realm.id;
    const p = await progress.get(realmId, d);
    if (!p || p.stage !== 'tenant-pick') return errorPage(ctx, 400, 'Nothing to choose', 'This sign-in is not choosing an organisation. Go back to the application and start again.', 'wrong_step');
    const choice = form.tenant ?? '';
    const tenant = p.tenantChoices?.includes(choice) ? await tenants.find(realmId, choice) : undefined;
    if (!tenant) return picker(ctx, d, p, 'Choose one of the organisations listed.');
    if (p.userId) {
      await progress.put(realmId, d, { ...p, tenantId: tenant.id, tenantChoices: undefined });
      const userId = p.userId;
      return answerStep(ctx, d, userId, 'redirect', () => steps.finish(ctx, d, userId, p.amr));
    }
    const outcome = await resolver.route(ctx, d, tenant, p.email);
    if (!follow(ctx, outcome)) seeOther(ctx, `/interaction/${d.uid}`);
  });
}
