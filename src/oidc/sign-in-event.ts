import type { KoaContextWithOIDC } from 'oidc-provider';
import type { EventBus, SignInEvent } from '../events/bus.js';

/**
 * A sign-in outcome seen by node-oidc-provider itself (no interaction page behind it), on the bus: the
 * device flow's (src/oidc/device-events.ts) and a sign-in by the browser's session
 * (src/oidc/session-events.ts). The interaction pages emit theirs through interactions/kit.ts.
 */
export function providerSignInEvent(events: EventBus, realmId: string, issuer: string) {
  return (ctx: KoaContextWithOIDC, type: SignInEvent['type'], method: SignInEvent['method'], extra: Partial<SignInEvent> = {}) =>
    events.emit({
      type,
      at: new Date().toISOString(),
      realm: realmId,
      issuer,
      method,
      // ctx.oidc is not set yet in middleware that runs before the provider's routes
      clientId: ctx.oidc?.client?.clientId,
      address: ctx.ip,
      userAgent: ctx.get('user-agent') || undefined,
      ...extra,
    });
}
