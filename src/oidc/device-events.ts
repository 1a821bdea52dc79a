import type { KoaContextWithOIDC } from 'oidc-provider';
import type { EventBus, SignInEvent } from '../events/bus.js';
import { providerSignInEvent } from './sign-in-event.js';

type Source = (ctx: KoaContextWithOIDC, ...rest: any[]) => Promise<void>;

/** Why a user code was refused, by node-oidc-provider's error (src: lib/helpers/re_render_errors.js). */
const REASONS: Record<string, string> = {
  NotFoundError: 'invalid_user_code',
  ExpiredError: 'expired_user_code',
  AlreadyUsedError: 'used_user_code',
  AbortedError: 'user_denied',
  NoCodeError: 'invalid_input',
};

/**
 * The device flow's own sign-in outcomes on the bus (method `device-code`): the person's sign-in in the
 * browser emits its own events (password, passkey, ...) through the interaction pages; these say
 * what happened to the device: a user code refused (wrong, expired, used, denied by the person, or
 * from an address locked by wrong codes) and the device signed in. Never the user code itself.
 */
export function deviceSignInEvents(events: EventBus, realmId: string, issuer: string) {
  const signInEvent = providerSignInEvent(events, realmId, issuer);
  const emit = (ctx: KoaContextWithOIDC, type: SignInEvent['type'], extra: Partial<SignInEvent>) => signInEvent(ctx, type, 'device-code', extra);
  return {
    /** Wraps `userCodeInputSource`: called with the error of a refused code (and without one for the first page). */
    inputSource<S extends Source>(source: S): S {
      return (async (ctx: KoaContextWithOIDC, form: string, out: unknown, err?: { name?: string }) => {
        if (err) emit(ctx, 'signin.failure', { reason: REASONS[err.name ?? ''] ?? 'invalid_user_code' });
        return source(ctx, form, out, err);
      }) as S;
    },
    /** Wraps `successSource`: the device is signed in for the session's account. */
    successSource<S extends Source>(source: S): S {
      return (async (ctx: KoaContextWithOIDC, ...rest: unknown[]) => {
        emit(ctx, 'signin.success', { userId: ctx.oidc?.session?.accountId });
        return source(ctx, ...rest);
      }) as S;
    },
    /** A user code refused unread: the address is locked by wrong codes. */
    throttled(ctx: KoaContextWithOIDC): void {
      emit(ctx, 'signin.failure', { reason: 'throttled' });
    },
  };
}
