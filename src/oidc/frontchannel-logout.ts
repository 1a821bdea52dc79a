/**
 * OpenID Connect Front-Channel Logout 1.0: when a browser session ends through RP-initiated logout (the
 * provider's `/session/end`, which the account page's "Sign out" goes through too), the page the browser
 * lands on before going on (to the post_logout_redirect_uri, or the "signed out" page) loads, in a hidden
 * iframe, the `frontchannel_logout_uri` of every application of that session that registered one, so each
 * can end its own session for the user with its own cookies. With `frontchannel_logout_session_required`
 * (the default) the URI gets `iss` (the issuer, i.e. domain, the session lived on) and `sid` (the session id
 * the client's ID tokens carry) in its query.
 *
 * node-oidc-provider v9 has no such feature; this file adds it:
 * - the two client metadata fields (stored with the client, checked by ClientService);
 * - `sid` in the ID tokens of a client that asks for it here, as for back-channel logout;
 * - the interstitial page: the provider's 303 at the end of the sign-out confirmation is replaced by that
 *   page when the ended session has such applications; the page continues to the same Location once
 *   every iframe has loaded or after a few seconds (views/assets/frontchannel-logout.js), or with a meta
 *   refresh and a link without JavaScript. Its Content-Security-Policy allows frames from those
 *   applications' origins only.
 *
 * Only a session that ends is announced: "No, stay signed in" on the confirmation keeps the session and
 * drops only the asking application, which started the sign-out itself.
 */
import type Provider from 'oidc-provider';
import type { KoaContextWithOIDC } from 'oidc-provider';
import { contentSecurityPolicy } from '../server/security-headers.js';

/** The client metadata fields, added to node-oidc-provider's recognised ones (extraClientMetadata). */
export const FRONTCHANNEL_CLIENT_METADATA = ['frontchannel_logout_uri', 'frontchannel_logout_session_required'] as const;

/** What discovery says (OpenID Connect Front-Channel Logout 1.0, section 3). */
export const FRONTCHANNEL_DISCOVERY = { frontchannel_logout_supported: true, frontchannel_logout_session_supported: true } as const;


/** One application's logout iframe. */
export interface FrontchannelFrame {
  clientId: string;
  clientName: string;
  /** The frontchannel_logout_uri, with iss and sid when the client asked for them. */
  src: string;
}

/** What the interstitial page shows: the iframes, and where it goes on. */
export interface FrontchannelPage {
  frames: FrontchannelFrame[];
  continueUrl: string;
  /** How long the page's script waits for the iframes before it goes on (config `logout.frontchannelWaitSeconds`). */
  waitMs: number;
  /** The meta refresh's delay, for browsers without JavaScript: a second after the script would have gone on. */
  refreshSeconds: number;
}

/** A client instance of node-oidc-provider: extra metadata (extraClientMetadata) keeps its snake_case name. */
interface FrontchannelClient {
  clientId: string;
  clientName?: string;
  frontchannel_logout_uri?: string;
  frontchannel_logout_session_required?: boolean;
}

/**
 * The URL the iframe loads: the registered URI with `iss` and `sid` added to its query (kept as registered,
 * and any `iss` or `sid` it had replaced) when the session is required, else the URI as registered.
 */
export function frontchannelLogoutUrl(uri: string, sessionRequired: boolean, iss: string, sid: string | undefined): string {
  if (!sessionRequired) return uri;
  const url = new URL(uri);
  url.searchParams.set('iss', iss);
  if (sid) url.searchParams.set('sid', sid);
  return url.href;
}

/** The session flag of a client's stored metadata: true unless explicitly false (Keycloak's default). */
const sessionRequired = (client: FrontchannelClient): boolean => client.frontchannel_logout_session_required !== false;

/** The origins the page may frame, for `frame-src` (only http(s) origins; a URI was checked when registered). */
export function frameOrigins(frames: FrontchannelFrame[]): string[] {
  const origins = new Set<string>();
  for (const f of frames) {
    const url = URL.parse(f.src);
    if (url && (url.protocol === 'https:' || url.protocol === 'http:')) origins.add(url.origin);
  }
  return [...origins];
}

/**
 * The iframes for a session that has just ended on `issuer`: one per application of the session registered
 * with a front-channel logout URI (a client deleted since is skipped).
 */
export async function frontchannelFrames(provider: Provider, issuer: string, authorizations: Record<string, { sid?: string }>): Promise<FrontchannelFrame[]> {
  const frames: FrontchannelFrame[] = [];
  for (const [clientId, { sid }] of Object.entries(authorizations)) {
    const client = (await provider.Client.find(clientId).catch(() => undefined)) as FrontchannelClient | undefined;
    if (!client?.frontchannel_logout_uri) continue;
    frames.push({
      clientId,
      clientName: client.clientName ?? clientId,
      src: frontchannelLogoutUrl(client.frontchannel_logout_uri, sessionRequired(client), issuer, sid),
    });
  }
  return frames;
}

/**
 * Adds front-channel logout to `provider`: ID tokens of a client with a front-channel logout URI and the
 * session flag carry `sid`, and the end of a sign-out that ends a session with such clients answers with
 * `render`'s page instead of the redirect (which the page then follows).
 */
export function enableFrontchannelLogout(provider: Provider, render: (ctx: KoaContextWithOIDC, page: FrontchannelPage) => void, waitSeconds: number): void {
  const client = provider.Client.prototype as unknown as { includeSid(this: FrontchannelClient): boolean };
  const includeSid = client.includeSid;
  client.includeSid = function includeFrontchannelSid(this: FrontchannelClient) {
    return Boolean(includeSid.call(this)) || Boolean(this.frontchannel_logout_uri && sessionRequired(this));
  };

  provider.use(async (koa, next) => {
    await next();
    const ctx = koa as unknown as KoaContextWithOIDC;
    if (ctx.method !== 'POST' || ctx.status !== 303 || ctx.oidc?.route !== 'end_session_confirm') return;
    const session = ctx.oidc.session as unknown as { destroyed?: boolean; authorizations?: Record<string, { sid?: string }> } | undefined;
    // the session ended ("Yes, sign me out"); its object still holds the applications it had
    if (!session?.destroyed || !session.authorizations) return;
    const frames = await frontchannelFrames(provider, provider.issuer, session.authorizations);
    if (!frames.length) return;
    const continueUrl = ctx.response.get('Location');
    // a registered post-logout redirect URI never has such a scheme (ClientService refuses them); checked again here
    const target = URL.parse(continueUrl);
    if (!target || ['javascript:', 'vbscript:', 'data:'].includes(target.protocol)) return;
    ctx.remove('Location');
    ctx.status = 200;
    ctx.set('Content-Security-Policy', contentSecurityPolicy({ frameSrc: frameOrigins(frames) }));
    render(ctx, { frames, continueUrl, waitMs: Math.round(waitSeconds * 1000), refreshSeconds: Math.ceil(waitSeconds) + 1 });
  });
}
