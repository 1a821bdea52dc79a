import type Router from '@koa/router';
import type { Context } from 'koa';
import type { InteractionResults } from 'oidc-provider';
import { LatchkeyError } from '../errors.js';
import type { Services } from '../server/services.js';
import { readForm } from '../server/body.js';
import { csrfToken } from './csrf.js';
import { checkedForm, errorPage, interactionOf, page, redirectWithResult, served, type Details } from './kit.js';
import { layoutFor, SCOPE_DESCRIPTIONS } from './layout.js';

type ConsentDetails = { missingOIDCScope?: string[]; missingOIDCClaims?: string[]; missingResourceScopes?: Record<string, string[]> };

/** The consent page for third-party clients (first-party ones pass through), and cancelling a sign-in. */
export function consentRoutes(router: Router, services: Services): void {
  const { csrfKey, clients } = services;

  async function consentResult(ctx: Context, d: Details): Promise<InteractionResults> {
    const { Grant } = served(ctx).provider;
    const accountId = d.session?.accountId;
    if (!accountId) throw new LatchkeyError('invalid_request', 'sign in before giving consent', 400);
    const grant = d.grantId ? await Grant.find(d.grantId) : new Grant({ accountId, clientId: String(d.params.client_id) });
    if (!grant) throw new LatchkeyError('invalid_request', 'the grant of this sign-in no longer exists', 400);
    const pd = d.prompt.details as ConsentDetails;
    if (pd.missingOIDCScope?.length) grant.addOIDCScope(pd.missingOIDCScope.join(' '));
    if (pd.missingOIDCClaims?.length) grant.addOIDCClaims(pd.missingOIDCClaims);
    for (const [indicator, scopes] of Object.entries(pd.missingResourceScopes ?? {})) grant.addResourceScope(indicator, scopes.join(' '));
    const grantId = await grant.save();
    // the sign-in's tenant (its result's `tenant`) travels on to the grant (src/tenants/grant-tenant.ts),
    // and so does the login of this same interaction: with prompt=login the provider checks that this
    // request's result has one, and would otherwise ask for the sign-in again (and again)
    const last = d.lastSubmission as { tenant?: unknown; login?: InteractionResults['login'] } | undefined;
    return { consent: d.grantId ? {} : { grantId }, ...(last?.login ? { login: last.login } : {}), ...(last && 'tenant' in last ? { tenant: last.tenant } : {}) };
  }

  router.get('/interaction/:uid', async (ctx) => {
    const d = await interactionOf(ctx);
    if (!d) return;
    const s = served(ctx);
    if (d.prompt.name !== 'consent') {
      return errorPage(ctx, 400, 'Unsupported step', `This sign-in needs a step Latchkey does not offer (${d.prompt.name}).`, 'unsupported_prompt');
    }
    const client = await s.provider.Client.find(String(d.params.client_id));
    if (client && (await clients.isFirstParty(s.realm.id, client.clientId))) return redirectWithResult(ctx, d, await consentResult(ctx, d));
    const pd = d.prompt.details as ConsentDetails;
    const scopes = [...new Set([...(pd.missingOIDCScope ?? []), ...Object.values(pd.missingResourceScopes ?? {}).flat()])].map((name) => ({
      name,
      description: SCOPE_DESCRIPTIONS[name] ?? `Use the "${name}" permission`,
    }));
    return page(ctx, 'consent', {
      layout: layoutFor(s, 'Allow access'),
      clientName: client?.clientName ?? client?.clientId,
      scopes,
      claims: pd.missingOIDCClaims ?? [],
      action: `/interaction/${d.uid}/confirm`,
      abortAction: `/interaction/${d.uid}/abort`,
      csrf: csrfToken(csrfKey, d.uid),
    });
  });

  router.post('/interaction/:uid/confirm', async (ctx) => {
    const form = await readForm(ctx);
    const d = await interactionOf(ctx);
    if (!d || !(await checkedForm(ctx, csrfKey, d, form))) return;
    if (d.prompt.name !== 'consent') return errorPage(ctx, 400, 'Nothing to confirm', 'This step is not a consent step. Go back to the application.', 'wrong_step');
    return redirectWithResult(ctx, d, await consentResult(ctx, d));
  });

  router.post('/interaction/:uid/abort', async (ctx) => {
    const form = await readForm(ctx);
    const d = await interactionOf(ctx);
    if (!d || !(await checkedForm(ctx, csrfKey, d, form))) return;
    await services.progress.clear(served(ctx).realm.id, d);
    return redirectWithResult(ctx, d, { error: 'access_denied', error_description: 'End-User aborted interaction' });
  });
}
