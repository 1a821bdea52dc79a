import type { Context } from 'koa';
import { cookieSigner } from '../crypto/cookie-signer.js';
import { providerCallback } from '../oidc/provider-callback.js';
import { withHeldInteraction } from '../oidc/held-interactions.js';
import { canResumeInProcess, resumeInProcess } from '../oidc/resume-in-process.js';
import type { Services } from '../server/services.js';
import { seeOther, served, type Details } from './kit.js';

/**
 * How a sign-in step that verified something sends the browser on: a form post is answered with a 303,
 * the passkey script's fetch with `{ redirect }` JSON.
 */
export type StepAnswer = 'redirect' | 'json';

/**
 * Answers a sign-in step with where the browser goes next, `step()` being what follows the verified
 * factor (src/interactions/next-step.ts). When that is node-oidc-provider's resume of this sign-in
 * (`/auth/<uid>`), the resume runs within this request (src/oidc/resume-in-process.ts) and the answer
 * points past it: to the client with its code, or to the next interaction (consent). The browser saves
 * a round trip, and the server the work of one more request. Meanwhile the interaction's saves are held
 * (src/oidc/held-interactions.ts): the resume reads and deletes it at once, so its result need not be
 * written at all.
 *
 * Where the resume would not end in a redirect (a form_post response mode, another account signed in on
 * this browser) the browser is sent to `/auth/<uid>` as before, and the provider answers it there.
 */
export function stepAnswerer(services: Services) {
  const signer = cookieSigner(services.cookieKeys);

  function answer(ctx: Context, as: StepAnswer, url: string): void {
    if (as === 'redirect') return seeOther(ctx, url);
    ctx.status = 200;
    ctx.set('Cache-Control', 'no-store');
    ctx.body = { redirect: url };
  }

  return async function answerStep(ctx: Context, d: Details, accountId: string, as: StepAnswer, step: () => Promise<string>): Promise<void> {
    if (!canResumeInProcess(d, accountId)) return answer(ctx, as, await step());
    const { realm, provider } = served(ctx);
    await withHeldInteraction(realm.id, d.uid, async () => {
      const url = await step();
      if (url !== d.returnTo) return answer(ctx, as, url);
      ctx.respond = false;
      const next = await resumeInProcess(ctx.req, ctx.res, providerCallback(provider), signer, provider.cookieName('resume'), d.uid);
      if (next === undefined) return; // the provider has answered (an error page)
      ctx.respond = true;
      answer(ctx, as, next);
    });
  };
}
