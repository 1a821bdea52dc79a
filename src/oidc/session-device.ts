import type Provider from 'oidc-provider';
import type { KoaContextWithOIDC } from 'oidc-provider';

/**
 * The device a session signed in on, for the account page's "Signed-in devices" and `latchkey user
 * sessions`: the User-Agent header of the request that completed the sign-in (a new session, or a new
 * authentication of one: `loginTs` changed), kept in the Session payload as `latchkeyDevice`.
 *
 * node-oidc-provider stores only the fields its Session model lists (`IN_PAYLOAD`); the list is extended
 * with this one, so it survives the provider's reads and re-saves of the session. It is set while the
 * provider answers an authorization (its `authorization.success` event, inside the request's session
 * handling), so the provider's own save at the end of the request writes it: no extra write.
 */
export const SESSION_DEVICE_FIELD = 'latchkeyDevice';

/** What is kept: the header (cut to a length no real browser's exceeds) and the sign-in it belongs to. */
export interface SessionDevice {
  userAgent: string;
  loginTs: number;
}

const MAX_USER_AGENT = 400;

export function recordSessionDevices(provider: Provider): void {
  const Session = provider.Session as unknown as { IN_PAYLOAD: string[] };
  const fields = Session.IN_PAYLOAD;
  if (!fields.includes(SESSION_DEVICE_FIELD)) Object.defineProperty(Session, 'IN_PAYLOAD', { value: [...fields, SESSION_DEVICE_FIELD], configurable: true });
  provider.on('authorization.success', (ctx: KoaContextWithOIDC) => {
    const session = ctx.oidc?.session as (Record<string, unknown> & { accountId?: string; loginTs?: number }) | undefined;
    if (!session?.accountId || typeof session.loginTs !== 'number') return;
    const known = session[SESSION_DEVICE_FIELD] as SessionDevice | undefined;
    if (known?.loginTs === session.loginTs) return;
    const device: SessionDevice = { userAgent: (ctx.get('user-agent') ?? '').slice(0, MAX_USER_AGENT), loginTs: session.loginTs };
    session[SESSION_DEVICE_FIELD] = device;
  });
}
