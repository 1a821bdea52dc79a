import { randomBytes } from 'node:crypto';
import type Router from '@koa/router';
import type { Context } from 'koa';
import { LatchkeyError } from '../errors.js';
import { emitSignIn, interactionOf, page, seeOther, served, type Details } from '../interactions/kit.js';
import { layoutFor } from '../interactions/layout.js';
import type { SignInSteps } from '../interactions/next-step.js';
import type { Services } from '../server/services.js';
import { PendingStore } from './pending.js';
import { CALLBACK_PATH, callbackUrl, LINK_RETURN_PATH, LINK_STATE_PREFIX, type UsableConnection } from './service.js';

const random = () => randomBytes(32).toString('base64url');

const REFUSALS = {
  email_missing: {
    title: 'No email address was shared',
    message: (name: string) => `${name} did not share a verified email address with us, and an account here needs one. Allow access to your email at ${name}, or sign in another way.`,
  },
  email_unverified: {
    title: 'This email already has an account',
    message: (name: string) =>
      `An account here already uses the email address your ${name} account gives, but ${name} does not confirm that the address is yours, so the two cannot be joined. Sign in with your email instead; to use ${name}, verify the address there first.`,
  },
  account_disabled: {
    title: 'This account cannot sign in',
    message: () => 'This account is disabled. Contact your administrator.',
  },
} as const;

/**
 * Sign-in through an upstream identity provider: the start (from the login page's button), the one
 * callback per issuer that operators register upstream, and the return into the interaction.
 */
export function connectionRoutes(router: Router, services: Services, steps: SignInSteps): void {
  const { connections, upstream, linking, progress, events } = services;
  const pending = new PendingStore(services.db);
  const signInUrl = (d: Details) => `/interaction/${d.uid}`;

  /** An upstream address the policy refused is a setting to fix, not a passing failure: the page says which host and why. */
  const refusedText = (name: string, err: LatchkeyError) => `Signing in with ${name} is not possible: ${err.message}. Ask your administrator to check this connection's settings, or sign in another way.`;

  function failure(ctx: Context, status: number, title: string, message: string, code: string, backUrl?: string): void {
    page(ctx, 'error', { layout: layoutFor(served(ctx), title), title, message, code, backUrl }, status);
  }

  router.get('/interaction/:uid/connection/:connectionId', async (ctx) => {
    const s = served(ctx);
    const d = await interactionOf(ctx);
    if (!d) return;
    if (d.prompt.name !== 'login') return failure(ctx, 400, 'Already signed in', 'This step is already done. Go back to the application.', 'wrong_step');
    // a connection limited to tenants is usable when this sign-in is for one of them
    const tenantId = (await progress.get(s.realm.id, d))?.tenantId;
    const connection = await connections.usable(s.realm.id, ctx.params.connectionId!, { tenantId });
    if (!connection) return failure(ctx, 404, 'Sign-in option not available', 'This way of signing in is not available here. Choose another one.', 'unknown_connection', signInUrl(d));
    const flow = { uid: d.uid, connectionId: connection.id, tenantId, state: random(), nonce: random(), verifier: random(), redirectUri: callbackUrl(s.issuer) };
    let target: URL;
    try {
      target = await pending.begin(upstream, connection, flow);
    } catch (err) {
      if (!(err instanceof LatchkeyError)) throw err;
      services.log.warn({ realm: s.realm.id, connection: connection.id, err: err.message }, 'upstream sign-in could not start');
      if (err.code === 'upstream_address_refused') return failure(ctx, 502, `${connection.name} is not reachable`, refusedText(connection.name, err), err.code, signInUrl(d));
      return failure(ctx, 502, `${connection.name} is not reachable`, `Signing in with ${connection.name} is not possible right now. Try again later, or sign in another way.`, err.code, signInUrl(d));
    }
    ctx.set('Cache-Control', 'no-store');
    seeOther(ctx, target.href);
  });

  // The upstream sends the browser here; the interaction's cookie is scoped to /interaction/<uid>, so
  // the state names the interaction and the browser is sent on to it (where the cookie proves it is
  // the same browser that started).
  router.get(CALLBACK_PATH, async (ctx) => {
    const s = served(ctx);
    const state = typeof ctx.query.state === 'string' ? ctx.query.state : undefined;
    const flow = await pending.peekFlow(s.realm.id, state);
    // a link started on the account page goes back there (src/account/linked-accounts-routes.ts), which
    // also explains an expired or used one
    if (flow?.link || (!flow && state?.startsWith(LINK_STATE_PREFIX))) {
      ctx.set('Cache-Control', 'no-store');
      return seeOther(ctx, `${LINK_RETURN_PATH}?${ctx.querystring}`);
    }
    if (!flow) return failure(ctx, 400, 'This sign-in could not be completed', 'The answer from the sign-in provider does not belong to a sign-in in progress here (it expired, or was already used). Go back to the application and start again.', 'connection_state_invalid');
    ctx.set('Cache-Control', 'no-store');
    seeOther(ctx, `/interaction/${encodeURIComponent(flow.uid)}/connection-return?${ctx.querystring}`);
  });

  router.get('/interaction/:uid/connection-return', async (ctx) => {
    const s = served(ctx);
    const state = typeof ctx.query.state === 'string' ? ctx.query.state : undefined;
    // taken first: whatever happens below, this answer is used up
    const flow = await pending.takeFlow(s.realm.id, state);
    const d = await interactionOf(ctx);
    if (!d) return;
    if (!flow || flow.link || flow.uid !== d.uid) {
      emitSignIn(events, ctx, d, 'signin.failure', 'federated', { reason: 'connection_state_invalid' });
      return failure(ctx, 400, 'This sign-in could not be completed', 'The answer from the sign-in provider does not match this sign-in (it expired, or was already used). Start again.', 'connection_state_invalid', signInUrl(d));
    }
    if (d.prompt.name !== 'login') return failure(ctx, 400, 'Already signed in', 'This step is already done. Go back to the application.', 'wrong_step');
    const connection = await connections.usable(s.realm.id, flow.connectionId, { tenantId: flow.tenantId });
    if (!connection) {
      // removed, switched off or closed to this sign-in's tenant while the person was at the provider
      emitSignIn(events, ctx, d, 'signin.failure', 'federated', { reason: 'unknown_connection', connectionId: flow.connectionId });
      return failure(ctx, 404, 'Sign-in option not available', 'This way of signing in was removed meanwhile. Choose another one.', 'unknown_connection', signInUrl(d));
    }
    const fail = (reason: string) => emitSignIn(events, ctx, d, 'signin.failure', 'federated', { reason, connectionId: connection.id });

    const error = typeof ctx.query.error === 'string' ? ctx.query.error : undefined;
    if (error) {
      fail(error === 'access_denied' ? 'upstream_access_denied' : 'upstream_error');
      if (error === 'access_denied') {
        return failure(ctx, 400, `${connection.name} sign-in was cancelled`, `You did not allow signing in with ${connection.name}. Try again, or sign in another way.`, 'upstream_access_denied', signInUrl(d));
      }
      return failure(ctx, 502, `${connection.name} could not sign you in`, `${connection.name} answered with an error. Try again later, or sign in another way.`, `upstream_${/^[a-z_]{1,40}$/.test(error) ? error : 'error'}`, signInUrl(d));
    }

    let identity;
    try {
      identity = await upstream.complete(connection.upstream, connection.clientSecret, flow.redirectUri, new URLSearchParams(ctx.querystring), flow);
    } catch (err) {
      if (!(err instanceof LatchkeyError)) throw err;
      fail(err.code);
      services.log.warn({ realm: s.realm.id, connection: connection.id, err: err.message }, 'upstream sign-in failed');
      if (err.code === 'upstream_address_refused') return failure(ctx, 502, `${connection.name} sign-in failed`, refusedText(connection.name, err), err.code, signInUrl(d));
      return failure(ctx, 502, `${connection.name} sign-in failed`, `The sign-in with ${connection.name} could not be verified. Try again, or sign in another way.`, err.code, signInUrl(d));
    }
    return finishWith(ctx, d, connection, flow.tenantId, await linking.resolve(connection, identity));
  });

  async function finishWith(ctx: Context, d: Details, connection: UsableConnection, tenantId: string | undefined, resolution: Awaited<ReturnType<typeof linking.resolve>>): Promise<void> {
    const s = served(ctx);
    const tenant = tenantId ? { tenantId } : {};
    switch (resolution.kind) {
      case 'signed-in': {
        const { user } = resolution;
        emitSignIn(events, ctx, d, 'signin.success', 'federated', { userId: user.id, connectionId: connection.id, ...(resolution.created ? { reason: 'signup' } : {}) });
        // the realm's MFA policy applies as after any first factor
        return seeOther(ctx, await steps.afterFirstFactor(ctx, d, user, { stage: 'identify', email: user.email, amr: ['fed'], viaConnection: connection.id, ...tenant }));
      }
      case 'proof-needed': {
        const { user, link } = resolution;
        await linking.awaitProof(s.realm.id, d.uid, link);
        const f = await steps.factors(ctx, user.id);
        // the owner proves the account with its own method; the link is made when that sign-in completes
        await progress.put(s.realm.id, d, { stage: f.passkeys || !user.passwordHash ? 'passkey' : 'password', email: user.email, amr: [], linking: { connectionId: connection.id, name: connection.name }, ...tenant });
        return seeOther(ctx, signInUrl(d));
      }
      case 'refused': {
        emitSignIn(events, ctx, d, 'signin.failure', 'federated', { reason: resolution.reason, connectionId: connection.id });
        const r = REFUSALS[resolution.reason];
        return failure(ctx, resolution.reason === 'account_disabled' ? 401 : 409, r.title, r.message(connection.name), resolution.reason, signInUrl(d));
      }
    }
  }
}
