import type Provider from 'oidc-provider';
import type { KoaContextWithOIDC } from 'oidc-provider';
import type { LoginThrottle } from '../accounts/login-throttle.js';
import { layoutFor, type RealmRequest } from '../interactions/layout.js';
import { renderPage } from '../views/render.js';

/** The throttle counter of wrong device-flow user codes (per client address, apart from sign-in failures). */
export const USER_CODE_PURPOSE = 'user-code';

type UserCodeInputSource = (ctx: KoaContextWithOIDC, form: string, out: unknown, err?: { name?: string }) => Promise<void>;

/**
 * RFC 8628 §5.1: a user code is short enough to be typed, so guessing one must be rate-limited, or an
 * attacker submitting codes at /device soon lands on someone's pending device sign-in. node-oidc-provider
 * does not limit it. A wrong code (not found) counts against the client address, with the realm's
 * brute-force settings for addresses; once locked, the address gets 429 until the wait is over, whether
 * its next code is right or wrong.
 */
export function countWrongUserCodes(throttle: LoginThrottle, realmId: string, source: UserCodeInputSource): UserCodeInputSource {
  return async (ctx, form, out, err) => {
    if (err?.name === 'NotFoundError') await throttle.recordAddressFailure(realmId, USER_CODE_PURPOSE, ctx.ip);
    return source(ctx, form, out, err);
  };
}

/** Refuses user-code submissions (POST /device) from an address locked by wrong codes. */
export function refuseLockedUserCodeGuesses(provider: Provider, throttle: LoginThrottle, realmId: string, onRefused?: (ctx: KoaContextWithOIDC) => void): void {
  provider.use(async (ctx, next) => {
    if (ctx.method === 'POST' && ctx.path === '/device') {
      const verdict = await throttle.checkAddress(realmId, USER_CODE_PURPOSE, ctx.ip);
      if (!verdict.allowed) {
        onRefused?.(ctx as unknown as KoaContextWithOIDC);
        ctx.status = 429;
        ctx.set('Retry-After', String(verdict.retryAfterSeconds));
        ctx.type = 'html';
        ctx.body = renderPage('error', {
          layout: layoutFor((ctx.req as RealmRequest).latchkey, 'Too many attempts'),
          title: 'Too many incorrect codes',
          message: `Too many incorrect codes were entered from your network. Wait ${verdict.retryAfterSeconds} seconds, then enter the code shown on your device again.`,
          code: 'too_many_attempts',
        });
        return;
      }
    }
    await next();
  });
}
