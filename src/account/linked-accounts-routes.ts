import type Router from '@koa/router';
import type { Context } from 'koa';
import { PendingStore } from '../connections/pending.js';
import { callbackUrl, iconPath, LINK_RETURN_PATH, LINK_STATE_PREFIX } from '../connections/service.js';
import { randomToken } from '../crypto/random.js';
import type { UserRow } from '../db/users-repo.js';
import { LatchkeyError } from '../errors.js';
import { seeOther, served } from '../interactions/kit.js';
import type { Services } from '../server/services.js';
import { displayTime } from './credentials.js';
import type { AccountSession } from './session.js';

/**
 * "Linked accounts" on the account page: the upstream identities (connections) linked to the user, and
 * the connections the user may link. Linking runs the connection's upstream authorization from here,
 * bound to this browser's account session; the one callback per issuer (src/connections/routes.ts)
 * sends its answer to LINK_RETURN_PATH.
 */

export const linkPath = (connectionId: string, action: 'link' | 'unlink') => `/account/linked-accounts/${encodeURIComponent(connectionId)}/${action}`;

/** Status messages of this section, by the fixed code in `?notice=` (merged into the account page's). */
export const LINKED_ACCOUNT_NOTICES: Record<string, { flash?: string; error?: string }> = {
  linked: { flash: 'Account linked. You can now sign in with it.' },
  unlinked: { flash: 'Account unlinked. You can no longer sign in with it.' },
  'link-expired': { error: 'Nothing was linked: the answer from the sign-in provider does not belong to a link started from this page (it expired, or was already used). Try again.' },
  'link-cancelled': { error: 'Nothing was linked: you did not allow it at the sign-in provider.' },
  'link-failed': { error: 'Nothing was linked: the sign-in provider could not confirm your account there. Try again later.' },
  'link-unavailable': { error: 'Nothing was linked: that way of signing in is not available any more.' },
  'link-taken': { error: 'Nothing was linked: that account at the sign-in provider is already linked to another account here. Sign in with it to use that account, or ask your administrator.' },
  'link-already-yours': { error: 'That account at the sign-in provider is already linked to your account.' },
  'link-one-per-connection': { error: 'Nothing was linked: you already have another account at that sign-in provider linked. Unlink it first to link a different one.' },
};

/** One row of the section (views/partials/account-linked.eta). */
export interface LinkedAccountView {
  id: string;
  name: string;
  icon: string;
  linked?: { email?: string; name?: string; linkedAt: string; lastUsedAt: string };
  /** POST (csrf): starts linking (not linked, and offered to this user). */
  linkAction?: string;
  /** POST (csrf): removes the link. */
  unlinkAction?: string;
  /** The user's only way in: a warning next to "Unlink" (the server refuses it). */
  soleWayIn?: boolean;
  /** Linked, but the connection is no longer offered to this user (switched off, or limited to other tenants). */
  unavailable?: boolean;
}

/**
 * The section's rows: every connection this user could sign in with (open to the realm, or limited to
 * one of the user's tenants), and every connection the user has a link through (even one switched off
 * since, so the link can be removed).
 */
export async function linkedAccountsView(services: Services, realmId: string, user: UserRow): Promise<LinkedAccountView[]> {
  const [available, linked] = await Promise.all([services.connections.availableToUser(realmId, user.id), services.linking.linkedOf(realmId, user.id)]);
  const soleWayIn = linked.length === 1 && (await services.linking.isSoleWayIn(user));
  const offered = new Set(available.map((c) => c.id));
  const rows: LinkedAccountView[] = linked.map((l) => ({
    id: l.connectionId,
    name: l.connectionName,
    icon: available.find((c) => c.id === l.connectionId)?.icon ?? iconPath(null),
    linked: { email: l.email ?? undefined, name: l.name ?? undefined, linkedAt: displayTime(l.linkedAt), lastUsedAt: displayTime(l.lastUsedAt) },
    unlinkAction: linkPath(l.connectionId, 'unlink'),
    soleWayIn,
    unavailable: !offered.has(l.connectionId),
  }));
  const linkedIds = new Set(linked.map((l) => l.connectionId));
  for (const c of available) if (!linkedIds.has(c.id)) rows.push({ id: c.id, name: c.name, icon: c.icon, linkAction: linkPath(c.id, 'link') });
  return rows;
}

interface SignedIn {
  session: AccountSession;
  user: UserRow;
}

/** What the account page's router lends this section (src/account/routes.ts). */
export interface AccountPageKit {
  signedIn(ctx: Context): Promise<SignedIn | undefined>;
  forForm(ctx: Context, options: { fresh: boolean; returnTo?: string }): Promise<{ signed: SignedIn; form: Record<string, string> } | undefined>;
  renderAccount(ctx: Context, signed: SignedIn, extra: { error?: string; status?: number }): Promise<void>;
  signInUrl(ctx: Context, returnTo: string, reauth: boolean): string;
}

/** Link (POST, starts the upstream authorization), its return, and Unlink (POST). */
export function linkedAccountRoutes(router: Router, services: Services, kit: AccountPageKit): void {
  const { connections, upstream, linking, log } = services;
  const pending = new PendingStore(services.db);
  const away = (ctx: Context, url: string) => {
    ctx.set('Cache-Control', 'no-store');
    seeOther(ctx, url);
  };
  const back = (ctx: Context, notice: keyof typeof LINKED_ACCOUNT_NOTICES) => away(ctx, `/account?notice=${notice}`);

  router.post('/account/linked-accounts/:connectionId/link', async (ctx) => {
    // adding a way in is a change to the account's security: a recent sign-in first
    const g = await kit.forForm(ctx, { fresh: true });
    if (!g) return;
    const s = served(ctx);
    const { user, session } = g.signed;
    const connection = await connections.usableByUser(s.realm.id, ctx.params.connectionId ?? '', user.id);
    if (!connection) return kit.renderAccount(ctx, g.signed, { error: 'That way of signing in is not available to link. Reload the page and choose another one.', status: 404 });
    // as the sign-in path: state, nonce and PKCE verifier stay here, used once, bound to this account session
    const flow = { uid: '', connectionId: connection.id, state: `${LINK_STATE_PREFIX}${randomToken(32)}`, nonce: randomToken(32), verifier: randomToken(32), redirectUri: callbackUrl(s.issuer), link: { sid: session.sid, userId: user.id } };
    let target: URL;
    try {
      target = await pending.begin(upstream, connection, flow);
    } catch (err) {
      if (!(err instanceof LatchkeyError)) throw err;
      log.warn({ realm: s.realm.id, connection: connection.id, err: err.message }, 'upstream link could not start');
      return kit.renderAccount(ctx, g.signed, { error: `${connection.name} cannot be reached right now, so nothing was linked. Try again later.`, status: 502 });
    }
    away(ctx, target.href);
  });

  router.get(LINK_RETURN_PATH, async (ctx) => {
    const s = served(ctx);
    const state = typeof ctx.query.state === 'string' ? ctx.query.state : undefined;
    // taken first: whatever happens below, this answer is used up
    const flow = await pending.takeFlow(s.realm.id, state);
    const signed = await kit.signedIn(ctx);
    if (!signed) return seeOther(ctx, kit.signInUrl(ctx, '/account?notice=link-expired', false));
    // started by another browser or another account session (or not a link at all): nothing is linked
    if (!flow?.link || flow.link.sid !== signed.session.sid || flow.link.userId !== signed.user.id) return back(ctx, 'link-expired');
    const connection = await connections.usableByUser(s.realm.id, flow.connectionId, signed.user.id);
    if (!connection) return back(ctx, 'link-unavailable');
    if (typeof ctx.query.error === 'string') return back(ctx, ctx.query.error === 'access_denied' ? 'link-cancelled' : 'link-failed');
    let identity;
    try {
      identity = await upstream.complete(connection.upstream, connection.clientSecret, flow.redirectUri, new URLSearchParams(ctx.querystring), flow);
    } catch (err) {
      if (!(err instanceof LatchkeyError)) throw err;
      log.warn({ realm: s.realm.id, connection: connection.id, err: err.message }, 'upstream link failed');
      return back(ctx, 'link-failed');
    }
    const outcome = await linking.linkToUser(connection, identity, signed.user.id);
    const notices = { linked: 'linked', already_yours: 'link-already-yours', linked_elsewhere: 'link-taken', connection_in_use: 'link-one-per-connection', not_found: 'link-expired' } as const;
    return back(ctx, notices[outcome]);
  });

  router.post('/account/linked-accounts/:connectionId/unlink', async (ctx) => {
    const g = await kit.forForm(ctx, { fresh: true });
    if (!g) return;
    const s = served(ctx);
    const outcome = await linking.unlink(s.realm.id, g.signed.user.id, ctx.params.connectionId ?? '', { by: 'account' });
    if (outcome === 'not_found') return kit.renderAccount(ctx, g.signed, { error: 'That account is not linked. It may have been unlinked already.', status: 404 });
    if (outcome === 'last_way_in') {
      return kit.renderAccount(ctx, g.signed, {
        error: 'This linked account is your only way to sign in: your account has no password, passkey, recovery codes or other linked account. Add a password or a passkey first, then unlink it.',
        status: 400,
      });
    }
    return back(ctx, 'unlinked');
  });
}
