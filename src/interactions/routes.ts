import Router from '@koa/router';
import type { Context } from 'koa';
import type { InteractionResults } from 'oidc-provider';
import { LatchkeyError } from '../errors.js';
import type { SignInEvent } from '../events/bus.js';
import type { ServedIssuer } from '../oidc/providers.js';
import { readForm } from '../server/body.js';
import type { Services } from '../server/services.js';
import { renderPage } from '../views/render.js';
import { csrfToken, csrfValid } from './csrf.js';
import { layoutFor, SCOPE_DESCRIPTIONS } from './layout.js';

const MAX_EMAIL = 320;

type Details = Awaited<ReturnType<ServedIssuer['provider']['interactionDetails']>>;

function page(ctx: Context, name: string, data: Record<string, unknown>, status = 200): void {
  ctx.status = status;
  ctx.type = 'html';
  ctx.set('Cache-Control', 'no-store');
  ctx.body = renderPage(name, data);
}

function errorPage(ctx: Context, served: ServedIssuer, status: number, title: string, message: string, code?: string): void {
  page(ctx, 'error', { layout: layoutFor(served, title), title, message, code }, status);
}

/** The sign-in pages: each step ends by handing its result back to node-oidc-provider. */
export function interactionRoutes(services: Services): Router {
  const router = new Router();
  const { users, throttle, events, csrfKey, clients } = services;

  async function details(ctx: Context): Promise<Details | undefined> {
    const served: ServedIssuer = ctx.state.served;
    try {
      const d = await served.provider.interactionDetails(ctx.req, ctx.res);
      if (d.uid !== ctx.params.uid) throw new Error('interaction mismatch');
      return d;
    } catch {
      errorPage(ctx, served, 400, 'This sign-in has expired', 'This sign-in link has expired or was opened in another browser. Go back to the application and start again.', 'interaction_expired');
      return undefined;
    }
  }

  async function finish(ctx: Context, result: InteractionResults): Promise<void> {
    const served: ServedIssuer = ctx.state.served;
    const url = await served.provider.interactionResult(ctx.req, ctx.res, result, { mergeWithLastSubmission: false });
    ctx.status = 303;
    ctx.redirect(url);
  }

  function loginPage(ctx: Context, d: Details, clientName: string | undefined, extra: { email?: string; error?: string }, status = 200): void {
    const served: ServedIssuer = ctx.state.served;
    page(
      ctx,
      'login',
      {
        layout: layoutFor(served, 'Sign in'),
        clientName,
        action: `/interaction/${d.uid}/login`,
        abortAction: `/interaction/${d.uid}/abort`,
        csrf: csrfToken(csrfKey, d.uid),
        email: extra.email ?? (typeof d.params.login_hint === 'string' ? d.params.login_hint : ''),
        error: extra.error,
      },
      status,
    );
  }

  async function clientOf(ctx: Context, d: Details) {
    const served: ServedIssuer = ctx.state.served;
    return served.provider.Client.find(String(d.params.client_id));
  }

  async function consentResult(ctx: Context, d: Details): Promise<InteractionResults> {
    const served: ServedIssuer = ctx.state.served;
    const { Grant } = served.provider;
    const accountId = d.session?.accountId;
    if (!accountId) throw new LatchkeyError('invalid_request', 'sign in before giving consent', 400);
    const grant = d.grantId ? await Grant.find(d.grantId) : new Grant({ accountId, clientId: String(d.params.client_id) });
    if (!grant) throw new LatchkeyError('invalid_request', 'the grant of this sign-in no longer exists', 400);
    const pd = d.prompt.details as { missingOIDCScope?: string[]; missingOIDCClaims?: string[]; missingResourceScopes?: Record<string, string[]> };
    if (pd.missingOIDCScope?.length) grant.addOIDCScope(pd.missingOIDCScope.join(' '));
    if (pd.missingOIDCClaims?.length) grant.addOIDCClaims(pd.missingOIDCClaims);
    for (const [indicator, scopes] of Object.entries(pd.missingResourceScopes ?? {})) grant.addResourceScope(indicator, scopes.join(' '));
    const grantId = await grant.save();
    return { consent: d.grantId ? {} : { grantId } };
  }

  router.get('/interaction/:uid', async (ctx) => {
    const d = await details(ctx);
    if (!d) return;
    const client = await clientOf(ctx, d);
    const clientName = client?.clientName ?? client?.clientId;
    if (d.prompt.name === 'login') return loginPage(ctx, d, clientName, {});
    if (d.prompt.name === 'consent') {
      if (client && (await clients.isFirstParty(ctx.state.served.realm.id, client.clientId))) return finish(ctx, await consentResult(ctx, d));
      const pd = d.prompt.details as { missingOIDCScope?: string[]; missingOIDCClaims?: string[]; missingResourceScopes?: Record<string, string[]> };
      const scopes = [...new Set([...(pd.missingOIDCScope ?? []), ...Object.values(pd.missingResourceScopes ?? {}).flat()])].map((name) => ({
        name,
        description: SCOPE_DESCRIPTIONS[name] ?? `Use the "${name}" permission`,
      }));
      return page(ctx, 'consent', {
        layout: layoutFor(ctx.state.served, 'Allow access'),
        clientName,
        scopes,
        claims: pd.missingOIDCClaims ?? [],
        action: `/interaction/${d.uid}/confirm`,
        abortAction: `/interaction/${d.uid}/abort`,
        csrf: csrfToken(csrfKey, d.uid),
      });
    }
    return errorPage(ctx, ctx.state.served, 400, 'Unsupported step', `This sign-in needs a step Latchkey does not offer (${d.prompt.name}).`, 'unsupported_prompt');
  });

  router.post('/interaction/:uid/login', async (ctx) => {
    const served: ServedIssuer = ctx.state.served;
    const form = await readForm(ctx);
    const d = await details(ctx);
    if (!d) return;
    if (!csrfValid(csrfKey, d.uid, form.csrf)) {
      return errorPage(ctx, served, 403, 'This form has expired', 'The form could not be verified. Go back and try again.', 'csrf_failed');
    }
    if (d.prompt.name !== 'login') return errorPage(ctx, served, 400, 'Already signed in', 'This step is already done. Go back to the application.', 'wrong_step');
    const client = await clientOf(ctx, d);
    const clientName = client?.clientName ?? client?.clientId;
    const email = (form.email ?? '').trim().slice(0, MAX_EMAIL);
    const password = form.password ?? '';
    const base: Omit<SignInEvent, 'type' | 'reason'> = {
      at: new Date().toISOString(),
      realm: served.realm.id,
      issuer: served.issuer,
      method: 'password',
      clientId: client?.clientId,
      address: ctx.ip,
      userAgent: ctx.get('user-agent') || undefined,
    };
    if (!email || !password) {
      events.emit({ ...base, type: 'signin.failure', reason: 'invalid_input' });
      return loginPage(ctx, d, clientName, { email, error: 'Enter your email and your password.' }, 400);
    }
    if (password.length > services.config.passwords.maxLength * 4) {
      events.emit({ ...base, type: 'signin.failure', reason: 'invalid_input' });
      return loginPage(ctx, d, clientName, { email, error: 'Incorrect email or password.' }, 401);
    }
    const keys = { email, ip: ctx.ip };
    const gate = await throttle.check(served.realm.id, keys);
    if (!gate.allowed) {
      events.emit({ ...base, type: 'signin.failure', reason: 'throttled' });
      const minutes = Math.max(1, Math.ceil(gate.retryAfterSeconds / 60));
      ctx.set('Retry-After', String(gate.retryAfterSeconds));
      return loginPage(ctx, d, clientName, { email, error: `Too many failed attempts. Try again in ${minutes} minute${minutes === 1 ? '' : 's'}.` }, 429);
    }
    const result = await users.verifyPassword(served.realm.id, email, password);
    if (!result.ok) {
      await throttle.recordFailure(served.realm.id, keys);
      events.emit({ ...base, type: 'signin.failure', reason: result.reason });
      const message = result.reason === 'account_disabled' ? 'This account is disabled. Contact your administrator.' : 'Incorrect email or password.';
      return loginPage(ctx, d, clientName, { email, error: message }, 401);
    }
    await throttle.recordSuccess(served.realm.id, keys);
    events.emit({ ...base, type: 'signin.success', userId: result.user.id });
    return finish(ctx, { login: { accountId: result.user.id, amr: ['pwd'], acr: 'urn:latchkey:loa:1', remember: true } });
  });

  router.post('/interaction/:uid/confirm', async (ctx) => {
    const served: ServedIssuer = ctx.state.served;
    const form = await readForm(ctx);
    const d = await details(ctx);
    if (!d) return;
    if (!csrfValid(csrfKey, d.uid, form.csrf)) return errorPage(ctx, served, 403, 'This form has expired', 'The form could not be verified. Go back and try again.', 'csrf_failed');
    if (d.prompt.name !== 'consent') return errorPage(ctx, served, 400, 'Nothing to confirm', 'This step is not a consent step. Go back to the application.', 'wrong_step');
    return finish(ctx, await consentResult(ctx, d));
  });

  router.post('/interaction/:uid/abort', async (ctx) => {
    const served: ServedIssuer = ctx.state.served;
    const form = await readForm(ctx);
    const d = await details(ctx);
    if (!d) return;
    if (!csrfValid(csrfKey, d.uid, form.csrf)) return errorPage(ctx, served, 403, 'This form has expired', 'The form could not be verified. Go back and try again.', 'csrf_failed');
    return finish(ctx, { error: 'access_denied', error_description: 'End-User aborted interaction' });
  });

  return router;
}
