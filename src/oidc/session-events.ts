import type Provider from 'oidc-provider';
import type { KoaContextWithOIDC } from 'oidc-provider';
import type { EventBus } from '../events/bus.js';
import { providerSignInEvent } from './sign-in-event.js';

/**
 * A client signed in by the browser's existing session (single sign-on: an authorization request
 * answered without any sign-in page, prompt=none included) is a sign-in outcome too, method
 * `session`, as Keycloak's LOGIN event is for a cookie login. node-oidc-provider announces every
 * authorization it answers; one that ends an interaction (route `resume`) had its pages emit already,
 * and the device flow's confirmation (route `code_verification`) is src/oidc/device-events.ts's.
 */
export function emitSessionSignIns(provider: Provider, events: EventBus, realmId: string, issuer: string): void {
  const emit = providerSignInEvent(events, realmId, issuer);
  provider.on('authorization.success', (ctx: KoaContextWithOIDC) => {
    if (ctx.oidc?.route !== 'authorization') return;
    const userId = ctx.oidc.session?.accountId;
    if (userId) emit(ctx, 'signin.success', 'session', { userId });
  });
}
