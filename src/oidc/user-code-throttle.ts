import type Provider from 'oidc-provider';
import type { KoaContextWithOIDC } from 'oidc-provider';
import type { LoginThrottle } from '../accounts/login-throttle.js';
import { layoutFor, type RealmRequest } from '../interactions/layout.js';
import { renderPage } from '../views/render.js';

/** The throttle counter of wrong device-flow user codes (per client address, apart from sign-in failures). */
export const USER_CODE_PURPOSE = 'user-code';

type UserCodeInputSource = (ctx: KoaContextWithOIDC, form: string, out: unknown, err?: { name?: string }) => Promise<void>;

/** Set on a request whose user code was looked up and not found: its attempt stays counted. */
const WRONG_USER_CODE = Symbol('wrong user code');

/**
 * RFC 8628 §5.1: a user code is short enough to be typed, so guessing one must be rate-limited, or an
 * attacker submitting codes at /device soon lands on someone's pending device sign-in. node-oidc-provider
 * does not limit it. A wrong code (not found) counts against the client address, with the realm's
 * brute-force settings for addresses; once locked, the address gets 429 until the wait is over, whether
 * its next code is right or wrong.
 *
 * The provider calls the input page with the NotFoundError of a wrong code: the request is marked there,
 * and `throttleUserCodeGuesses` keeps its attempt counted.
 */
export function markWrongUserCodes(source: UserCodeInputSource): UserCodeInputSource {
  return async (ctx, form, out, err) => {
    if (err?.name === 'NotFoundError') (ctx.state as Record<symbol, unknown>)[WRONG_USER_CODE] = true;
    return source(ctx, form, out, err);
  };
}

/**
 * Every user-code submission (POST /device) is counted against its address before the code is looked
 * up, in one step with the lock check (LoginThrottle.admitAddress), so guesses sent at once cannot all
 * pass a check none of them has counted yet; a locked address gets 429. A submission that turns out not
 * to be a wrong code (a right one, an expired or used one, a form error) is taken back afterwards.
 */
export function throttleUserCodeGuesses(provider: Provider, throttle: LoginThrottle, realmId: string, onRefused?: (ctx: KoaContextWithOIDC) => void): void {
  provider.use(async (ctx, next) => {
    if (ctx.method !== 'POST' || ctx.path !== '/device') return next();
    const admission = await throttle.admitAddress(realmId, USER_CODE_PURPOSE, ctx.ip);
    if (!admission.allowed) {
      onRefused?.(ctx as unknown as KoaContextWithOIDC);
      ctx.status = 429;
      ctx.set('Retry-After', String(admission.retryAfterSeconds));
      ctx.type = 'html';
      ctx.body = renderPage('error', {
        layout: layoutFor((ctx.req as RealmRequest).latchkey, 'Too many attempts'),
        title: 'Too many incorrect codes',
        message: `Too many incorrect codes were entered from your network. Wait ${admission.retryAfterSeconds} seconds, then enter the code shown on your device again.`,
        code: 'too_many_attempts',
      });
      return;
    }
    try {
      await next();
    } finally {
      if (!(ctx.state as Record<symbol, unknown>)[WRONG_USER_CODE]) await throttle.takeBackAddress(realmId, admission);
    }
  });
}
