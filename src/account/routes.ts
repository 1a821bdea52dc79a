import { safePicture } from '../connections/safe-picture.js';
import Router from '@koa/router';
import type { Context } from 'koa';
import { deriveKey } from '../crypto/secret-box.js';
import { payloadsRepo } from '../db/payloads-repo.js';
import { normalizeEmail, type UserRow } from '../db/users-repo.js';
import { EMAIL_ADDRESS, MAX_EMAIL_LENGTH } from '../accounts/email-address.js';
import { realmMail } from '../accounts/email-link-flow.js';
import { InvalidFieldsError, LatchkeyError } from '../errors.js';
import { errorPage, page, seeOther, served } from '../interactions/kit.js';
import { layoutFor } from '../interactions/layout.js';
import { recordSecurityEvent } from '../mfa/security-events.js';
import { credentialNameProblem } from '../passkeys/credential-name.js';
import { verifyPostedRegistration } from '../passkeys/posted-registration.js';
import { relyingParty } from '../passkeys/relying-party.js';
import { readForm, readJsonObject } from '../server/body.js';
import type { Services } from '../server/services.js';
import { LINKED_ACCOUNT_NOTICES, linkedAccountRoutes, linkedAccountsView } from './linked-accounts-routes.js';
import { credentialViews, deleteCredential, displayTime } from './credentials.js';
import { appsOfUser, sessionsOfUser } from '../accounts/device-activity.js';
import { ACCOUNT_CLIENT_ID, AccountSessions, challengeBinding, equalStrings, pkceChallenge, type AccountSession } from './session.js';

export const ACCOUNT_PATHS = {
  page: '/account',
  callback: '/account/callback',
  signOut: '/account/sign-out',
  signedOut: '/account/signed-out',
  passkeyOptions: '/account/passkeys/options',
  passkeyVerify: '/account/passkeys/verify',
  totp: '/account/totp',
  totpRemove: '/account/totp/remove',
  recoveryCodes: '/account/recovery-codes',
  recoveryCodesDone: '/account/recovery-codes/done',
  /** Where adding a first second factor (a passkey) leads when the account has no recovery codes. */
  firstRecoveryCodes: '/account/recovery-codes/first',
  password: '/account/password',
  /** The user's name (POST). */
  name: '/account/name',
  /** Sends a new email address confirmation link (POST). */
  verifyEmail: '/account/verify-email',
  /** Asks to change the email address: a confirmation link goes to the new one (POST). */
  changeEmail: '/account/email',
} as const;

/** "Sign out" of one of the user's other sessions (POST: csrf), by the session's uid. */
const sessionSignOutPath = (uid: string) => `/account/sessions/${encodeURIComponent(uid)}/sign-out`;
/** "Remove access" of one application (POST: csrf), by its client id. */
const appRemovePath = (clientId: string) => `/account/apps/${encodeURIComponent(clientId)}/remove`;

/** Status messages after a change, by the fixed code in `?notice=` (never text from the URL). */
const NOTICES: Record<string, { flash?: string; error?: string }> = {
  renamed: { flash: 'Passkey renamed.' },
  deleted: { flash: 'Passkey deleted.' },
  'totp-on': { flash: 'Authenticator app turned on.' },
  // turned on by another request (a double-submitted form, another tab), which may have shown the recovery codes
  'totp-on-elsewhere': { flash: 'Authenticator app turned on. If you did not see and save your recovery codes just now, create new ones below.' },
  'totp-off': { flash: 'Authenticator app turned off.' },
  'totp-exists': { error: 'An authenticator app is already set up. Turn it off first to set up another one.' },
  codes: { flash: 'Your new recovery codes are ready. The old ones no longer work.' },
  'password-changed': { flash: 'Password changed. Use the new one the next time you sign in.' },
  'name-saved': { flash: 'Name saved. Applications get it the next time you sign in to them.' },
  'name-removed': { flash: 'Name removed.' },
  'password-added': { flash: 'Password added. You can now also sign in with your email and this password.' },
  'password-changed-signed-out': { flash: 'Password changed. You were signed out on your other devices.' },
  'password-added-signed-out': { flash: 'Password added. You were signed out on your other devices.' },
  reauthenticated: { flash: 'You signed in again. You can now make your change.' },
  'verify-sent': { flash: 'We sent a confirmation link to your email address. It may take a few minutes to arrive.' },
  'session-ended': { flash: 'That device is signed out. Apps signed in on it have to sign in again.' },
  'app-removed': { flash: 'Access removed. The app can no longer use your account; it has to ask again the next time you sign in to it.' },
  // the same answer whether or not the new address has an account (its owner gets a notice instead of a link)
  'email-change-sent': { flash: 'Check the inbox of your new email address: open the link we sent there to confirm the change. Your address stays the same until then.' },
  ...LINKED_ACCOUNT_NOTICES,
};

const JSON_LIMIT = 32 * 1024;

interface SignedIn {
  session: AccountSession;
  user: UserRow;
}

/** The fields of an authorization code this page checks (node-oidc-provider's AuthorizationCode model). */
interface CodeFields {
  jti: string;
  clientId?: string;
  accountId?: string;
  authTime?: number;
  amr?: string[];
  redirectUri?: string;
  codeChallenge?: string;
  codeChallengeMethod?: string;
  sessionUid?: string;
  consumed?: unknown;
  isExpired?: boolean;
}

/** "about 3 minutes", "a few seconds": how long a locked-out code check still waits. */
function waitText(seconds: number): string {
  const minutes = Math.ceil(seconds / 60);
  if (seconds < 45) return 'a few seconds';
  return minutes === 1 ? 'about a minute' : `about ${minutes} minutes`;
}

/**
 * Whether the authenticator app is the account's only second factor in a realm that requires one: turning
 * it off then leaves the password alone until the next sign-in walks whoever has it through setting up a
 * new second factor, so it takes a warning and a confirmation.
 */
function lastRequiredFactor(mfa: string, user: UserRow, securityKeys: number): boolean {
  return mfa === 'required' && Boolean(user.passwordHash) && securityKeys === 0;
}

/**
 * The account page (/account) of every issuer: a first-party OIDC client of its own realm
 * (`latchkey-account`), so the realm's sign-in (passwords, passkeys, second factors, step-up)
 * applies to it unchanged. The code is redeemed in-process, and the result kept in a signed,
 * httpOnly account-session cookie; changes need an authentication at most
 * `reauthWindowSeconds` old, otherwise the user signs in again (max_age=0).
 */
export function accountRoutes(services: Services): Router {
  const { users, passkeys, totp, recovery, db, log } = services;
  const router = new Router();
  const sessions = new AccountSessions(deriveKey(services.config.secret, 'account-session'), services.csrfKey);

  const callbackUrl = (ctx: Context) => `${served(ctx).issuer}${ACCOUNT_PATHS.callback}`;

  /** Starts a sign-in at this issuer's own /auth; returns its URL. `reauth` forces a new authentication. */
  function signInUrl(ctx: Context, returnTo: string, reauth: boolean): string {
    const s = served(ctx);
    const flow = sessions.startFlow(ctx, s.issuer, returnTo);
    const params = new URLSearchParams({
      client_id: ACCOUNT_CLIENT_ID,
      response_type: 'code',
      redirect_uri: callbackUrl(ctx),
      scope: 'openid',
      state: flow.state,
      code_challenge: pkceChallenge(flow.verifier),
      code_challenge_method: 'S256',
    });
    if (reauth) params.set('max_age', '0');
    return `/auth?${params.toString()}`;
  }

  /** The live account session: signed cookie, user still enabled, and the provider's session behind it still there. */
  async function signedIn(ctx: Context): Promise<SignedIn | undefined> {
    const s = served(ctx);
    const session = sessions.read(ctx, s.issuer, s.realm.id);
    if (!session) return undefined;
    const user = await users.findById(s.realm.id, session.sub);
    let live = Boolean(user && !user.disabled);
    if (live && session.opSession) {
      // signing out (here or from any application) ends the provider's session, and with it this one
      const op = await s.provider.Session.findByUid(session.opSession);
      live = Boolean(op && op.accountId === session.sub);
    }
    if (!live) {
      sessions.clear(ctx, s.issuer);
      return undefined;
    }
    return { session, user: user! };
  }

  const isFresh = (ctx: Context, session: AccountSession) => Math.floor(Date.now() / 1000) - session.authTime <= served(ctx).realm.settings.reauthWindowSeconds;

  /** GET pages: signed in (else a sign-in starts), and recently authenticated when `fresh`. */
  async function forPage(ctx: Context, returnTo: string, fresh: boolean): Promise<SignedIn | undefined> {
    const signed = await signedIn(ctx);
    if (!signed) return void seeOther(ctx, signInUrl(ctx, returnTo, false));
    if (fresh && !isFresh(ctx, signed.session)) return void seeOther(ctx, signInUrl(ctx, returnTo, true));
    return signed;
  }

  /**
   * Form posts: signed in, CSRF token valid (403 otherwise), and, for changes, recently authenticated:
   * otherwise a 303 to a new sign-in that comes back to `returnTo`.
   */
  async function forForm(ctx: Context, options: { fresh: boolean; returnTo?: string }): Promise<{ signed: SignedIn; form: Record<string, string> } | undefined> {
    const signed = await signedIn(ctx);
    if (!signed) return void seeOther(ctx, signInUrl(ctx, ACCOUNT_PATHS.page, false));
    const form = await readForm(ctx);
    if (!sessions.csrfValid(signed.session, form.csrf)) {
      errorPage(ctx, 403, 'This form has expired', 'The form could not be verified. Go back to your account page, reload it and try again.', 'csrf_failed');
      return undefined;
    }
    if (options.fresh && !isFresh(ctx, signed.session)) {
      return void seeOther(ctx, signInUrl(ctx, options.returnTo ?? `${ACCOUNT_PATHS.page}?notice=reauthenticated`, true));
    }
    return { signed, form };
  }

  function json(ctx: Context, body: unknown, status = 200): void {
    ctx.status = status;
    ctx.set('Cache-Control', 'no-store');
    ctx.body = body;
  }

  /** JSON endpoints (the passkey script): 401 with where to sign in, 403 without the CSRF header, then the body. */
  async function forJson(ctx: Context): Promise<{ signed: SignedIn; body: Record<string, unknown> } | undefined> {
    const signed = await signedIn(ctx);
    if (!signed) {
      json(ctx, { error: 'login_required', error_description: 'Your account session has ended. Sign in again.', redirect: signInUrl(ctx, ACCOUNT_PATHS.page, false) }, 401);
      return undefined;
    }
    if (!sessions.csrfValid(signed.session, ctx.get('x-csrf-token'))) throw new LatchkeyError('csrf_failed', 'The request could not be verified. Reload the page and try again.', 403);
    if (!isFresh(ctx, signed.session)) {
      json(
        ctx,
        {
          error: 'reauthentication_required',
          error_description: 'Sign in again to make changes to your account.',
          redirect: signInUrl(ctx, `${ACCOUNT_PATHS.page}?notice=reauthenticated`, true),
        },
        401,
      );
      return undefined;
    }
    const body = await readJsonObject(ctx, JSON_LIMIT);
    return { signed, body };
  }

  async function securityEvent(realmId: string, userId: string, type: string, detail: Record<string, unknown> = {}): Promise<void> {
    try {
      await recordSecurityEvent(db, { realmId, userId, type, detail });
    } catch (err) {
      log.warn({ err, realm: realmId, user: userId, type }, 'could not record a security event');
    }
  }

  /**
   * The account page; `invalid` names the credential and field an error is about (the field is then
   * marked invalid, described by the error and focused; a rejected name is shown as typed).
   */
  async function renderAccount(
    ctx: Context,
    { session, user }: SignedIn,
    extra: { flash?: string; error?: string; status?: number; invalid?: { id: string; field: 'name' | 'confirm' | 'new_password' | 'new_email'; value?: string } } = {},
    // (invalid.id "totp": the authenticator app's confirmation box; "password": the new password; "profile": the user's name)
  ): Promise<void> {
    const s = served(ctx);
    const [credentials, totpOn, remaining, identities, devices, apps] = await Promise.all([
      passkeys.credentials(s.realm.id, user.id),
      totp.isEnrolled(s.realm.id, user.id),
      recovery.remaining(s.realm.id, user.id),
      user.passwordHash ? [] : services.linking.identitiesOf(s.realm.id, user.id),
      sessionsOfUser(services, s.realm.id, user.id),
      appsOfUser(services, s.realm.id, user.id),
    ]);
    const current = (d: { id: string }) => d.id === session.opSession;
    page(
      ctx,
      'account',
      {
        layout: layoutFor(s, 'Your account'),
        csrf: sessions.csrf(session),
        // an upstream picture is shown only while its host is on the allow-list (it may have changed since it was stored)
        user: { email: user.email, name: user.name ?? undefined, picture: safePicture(user.picture, services.config.federation.safeImageHosts) },
        // an unconfirmed address, where the server can send email: a button sends a confirmation link
        verifyEmailAction: !user.emailVerified && services.emailVerification.enabled ? ACCOUNT_PATHS.verifyEmail : undefined,
        flash: extra.flash,
        error: extra.error,
        credentials: credentialViews(credentials, { hasPassword: Boolean(user.passwordHash), recoveryCodes: remaining, federated: identities.length }).map((c) =>
          extra.invalid?.id === c.id ? { ...c, invalidField: extra.invalid.field, nameValue: extra.invalid.value } : c,
        ),
        register: { optionsUrl: ACCOUNT_PATHS.passkeyOptions, verifyUrl: ACCOUNT_PATHS.passkeyVerify },
        totp: {
          enrolled: totpOn,
          removeAction: ACCOUNT_PATHS.totpRemove,
          enrolUrl: ACCOUNT_PATHS.totp,
          confirmNeeded: totpOn && lastRequiredFactor(s.realm.settings.mfa, user, credentials.length),
          invalid: extra.invalid?.id === 'totp',
        },
        recovery: { remaining, regenerateAction: ACCOUNT_PATHS.recoveryCodes },
        // with email: a new address is confirmed by a link sent to it; without, only an operator changes it
        emailChange: services.emailChange.enabled
          ? { action: ACCOUNT_PATHS.changeEmail, invalid: extra.invalid?.id === 'email', value: extra.invalid?.id === 'email' ? extra.invalid.value : undefined }
          : { operatorOnly: true },
        profile: { action: ACCOUNT_PATHS.name, value: extra.invalid?.id === 'profile' ? (extra.invalid.value ?? '') : (user.name ?? ''), invalid: extra.invalid?.id === 'profile' },
        password: { set: Boolean(user.passwordHash), action: ACCOUNT_PATHS.password, minLength: services.config.passwords.minLength, invalid: extra.invalid?.id === 'password' },
        linkedAccounts: await linkedAccountsView(services, s.realm.id, user),
        // this device first, then the most recently used
        devices: [...devices.filter(current), ...devices.filter((d) => !current(d))].map((d) => ({
          label: `${d.browser} on ${d.os}`,
          domain: d.domain ?? 'Unknown',
          signedInAt: displayTime(d.signedInAt),
          lastUsedAt: displayTime(d.lastUsedAt),
          apps: d.clients.map((c) => c.name),
          current: current(d),
          signOutAction: current(d) ? undefined : sessionSignOutPath(d.id),
        })),
        apps: apps.map((a) => ({
          name: a.name,
          scopes: a.scopes,
          offline: a.offlineAccess || a.refreshToken,
          grantedAt: displayTime(a.firstGrantedAt),
          removeAction: appRemovePath(a.clientId),
        })),
        signOutUrl: ACCOUNT_PATHS.signOut,
      },
      extra.status ?? 200,
    );
  }

  /** New recovery codes for the signed-in user (the old ones stop working), recorded and shown once. */
  async function showNewRecoveryCodes(ctx: Context, { user, session }: SignedIn): Promise<void> {
    const realmId = served(ctx).realm.id;
    const codes = await recovery.generate(realmId, user.id);
    await securityEvent(realmId, user.id, 'account.recovery_codes_generated');
    page(ctx, 'recovery-codes', { layout: layoutFor(served(ctx), 'Save your recovery codes'), csrf: sessions.csrf(session), codes, action: ACCOUNT_PATHS.recoveryCodesDone });
  }

  router.get(ACCOUNT_PATHS.page, async (ctx) => {
    const signed = await forPage(ctx, ACCOUNT_PATHS.page, false);
    if (!signed) return;
    const notice = typeof ctx.query.notice === 'string' ? NOTICES[ctx.query.notice] : undefined;
    await renderAccount(ctx, signed, notice ?? {});
  });

  async function findCode(ctx: Context, value: string): Promise<CodeFields | undefined> {
    try {
      return (await served(ctx).provider.AuthorizationCode.find(value)) as unknown as CodeFields | undefined;
    } catch {
      return undefined;
    }
  }

  /**
   * Marks a code consumed in the provider's storage (src/oidc/adapter.ts, table oidc_payloads) with a
   * conditional update: of two requests presenting the same code, on any instance, only one goes on.
   */
  function claimCode(realmId: string, jti: string): Promise<boolean> {
    return payloadsRepo.consume(db, realmId, 'AuthorizationCode', jti, Date.now());
  }

  /** The authorization response: the code is redeemed here, in-process, never over the network. */
  router.get(ACCOUNT_PATHS.callback, async (ctx) => {
    const s = served(ctx);
    const expired = () => errorPage(ctx, 400, 'This sign-in has expired', 'The sign-in took too long or was started in another browser. Open your account page again.', 'invalid_grant');
    const flow = sessions.readFlow(ctx, s.issuer);
    const state = typeof ctx.query.state === 'string' ? ctx.query.state : '';
    const value = typeof ctx.query.code === 'string' ? ctx.query.code : '';
    const code = value ? await findCode(ctx, value) : undefined;
    if (!flow || !state || !equalStrings(flow.state, state)) {
      // a code this browser cannot redeem is used up, so it is worth nothing to whoever sees the URL later
      if (code && code.clientId === ACCOUNT_CLIENT_ID && code.redirectUri === callbackUrl(ctx)) await claimCode(s.realm.id, code.jti);
      return expired();
    }
    sessions.clearFlow(ctx, s.issuer);
    if (typeof ctx.query.error === 'string') {
      const cancelled = ctx.query.error === 'access_denied';
      return errorPage(
        ctx,
        cancelled ? 403 : 400,
        cancelled ? 'Sign-in cancelled' : 'Sign-in did not complete',
        cancelled ? 'You cancelled the sign-in. Open your account page again to sign in.' : 'The sign-in could not be completed. Open your account page again to retry.',
        ctx.query.error.slice(0, 64),
      );
    }
    if (!code || code.clientId !== ACCOUNT_CLIENT_ID || code.redirectUri !== callbackUrl(ctx) || code.consumed || code.isExpired) return expired();
    if (code.codeChallengeMethod !== 'S256' || typeof code.codeChallenge !== 'string' || !equalStrings(code.codeChallenge, pkceChallenge(flow.verifier)) || !code.accountId) {
      await claimCode(s.realm.id, code.jti);
      return expired();
    }
    if (!(await claimCode(s.realm.id, code.jti))) return expired();
    const user = await users.findById(s.realm.id, code.accountId);
    if (!user || user.disabled) {
      sessions.clear(ctx, s.issuer);
      return errorPage(ctx, 403, 'This account is disabled', 'This account is disabled. Contact your administrator.', 'account_disabled');
    }
    sessions.create(ctx, {
      iss: s.issuer,
      realm: s.realm.id,
      sub: user.id,
      // without a recorded authentication time every change asks for a new sign-in
      authTime: typeof code.authTime === 'number' ? code.authTime : 0,
      amr: Array.isArray(code.amr) ? code.amr.filter((m) => typeof m === 'string') : [],
      opSession: typeof code.sessionUid === 'string' ? code.sessionUid : undefined,
    });
    return seeOther(ctx, flow.returnTo);
  });

  /** Where signing out goes on: the realm's session ends through RP-initiated logout (which asks to confirm). */
  function endRealmSession(ctx: Context): void {
    const s = served(ctx);
    const params = new URLSearchParams({ client_id: ACCOUNT_CLIENT_ID, post_logout_redirect_uri: `${s.issuer}${ACCOUNT_PATHS.signedOut}` });
    seeOther(ctx, `/session/end?${params.toString()}`);
  }

  /**
   * Signing out is a POST with the page's CSRF token: a GET (a link from an old page, or an <img> on any
   * other site) changes nothing and shows a "Sign out" button instead.
   */
  router.get(ACCOUNT_PATHS.signOut, async (ctx) => {
    const signed = await signedIn(ctx);
    if (!signed) return seeOther(ctx, ACCOUNT_PATHS.signedOut);
    page(ctx, 'account-sign-out', { layout: layoutFor(served(ctx), 'Sign out'), csrf: sessions.csrf(signed.session), action: ACCOUNT_PATHS.signOut, backUrl: ACCOUNT_PATHS.page });
  });

  /** Ends the account session here and the realm's session through RP-initiated logout. */
  router.post(ACCOUNT_PATHS.signOut, async (ctx) => {
    const s = served(ctx);
    const signed = await signedIn(ctx);
    // no account session here (it ended, or never was): the realm's sign-out page asks for itself
    if (!signed) return endRealmSession(ctx);
    const form = await readForm(ctx);
    if (!sessions.csrfValid(signed.session, form.csrf)) {
      return page(
        ctx,
        'error',
        {
          layout: layoutFor(s, 'Sign-out not verified'),
          title: 'Sign-out not verified',
          message: 'The sign-out request did not come from your account page (its security token is missing or has expired), so you are still signed in. Go back to your account page and use its Sign out button.',
          code: 'csrf_failed',
          backUrl: ACCOUNT_PATHS.page,
          backLabel: 'Back to your account',
        },
        403,
      );
    }
    sessions.clear(ctx, s.issuer);
    return endRealmSession(ctx);
  });

  /**
   * Where the realm's sign-out comes back to. The account session was ended by the POST above; this GET
   * ends none (it is as easy to embed as the old GET sign-out was): a live one goes back to the account page.
   */
  router.get(ACCOUNT_PATHS.signedOut, async (ctx) => {
    if (await signedIn(ctx)) return seeOther(ctx, ACCOUNT_PATHS.page);
    page(ctx, 'logged-out', { layout: layoutFor(served(ctx), 'Signed out') });
  });

  /** The user's name (the `name` claim): not a security change, so no recent sign-in is needed; blank removes it. */
  router.post(ACCOUNT_PATHS.name, async (ctx) => {
    const g = await forForm(ctx, { fresh: false });
    if (!g) return;
    const s = served(ctx);
    const typed = g.form.name ?? '';
    try {
      await users.update(s.realm.id, g.signed.user.id, { name: typed.trim() === '' ? null : typed });
    } catch (err) {
      if (!(err instanceof InvalidFieldsError)) throw err;
      const [problem] = err.named(() => 'name');
      return renderAccount(ctx, g.signed, { error: `Your name ${problem?.problem ?? 'is not valid'}.`, status: 400, invalid: { id: 'profile', field: 'name', value: typed } });
    }
    return seeOther(ctx, `${ACCOUNT_PATHS.page}?notice=${typed.trim() === '' ? 'name-removed' : 'name-saved'}`);
  });

  router.post('/account/passkeys/:id/rename', async (ctx) => {
    const g = await forForm(ctx, { fresh: true });
    if (!g) return;
    const s = served(ctx);
    const name = (g.form.name ?? '').trim();
    const problem = credentialNameProblem(name);
    const id = ctx.params.id ?? '';
    if (problem) return renderAccount(ctx, g.signed, { error: problem, status: 400, invalid: { id, field: 'name', value: g.form.name ?? '' } });
    try {
      await passkeys.rename(s.realm.id, g.signed.user.id, id, name);
    } catch (err) {
      if (err instanceof LatchkeyError && err.status < 500) return renderAccount(ctx, g.signed, { error: err.message, status: err.status, invalid: { id, field: 'name', value: name } });
      throw err;
    }
    return seeOther(ctx, `${ACCOUNT_PATHS.page}?notice=renamed`);
  });

  router.post('/account/passkeys/:id/delete', async (ctx) => {
    const g = await forForm(ctx, { fresh: true });
    if (!g) return;
    const s = served(ctx);
    const outcome = await deleteCredential(db, { realmId: s.realm.id, userId: g.signed.user.id, id: ctx.params.id ?? '', confirmed: g.form.confirm === 'yes' });
    if (outcome === 'not_found') return renderAccount(ctx, g.signed, { error: 'That passkey does not exist. It may have been deleted already.', status: 404 });
    if (outcome === 'locks_out') {
      return renderAccount(ctx, g.signed, {
        error:
          'This is the only passkey you can sign in with, and your account has no password and no recovery codes: deleting it would lock you out. Create new recovery codes (and save them) or add another passkey first.',
        status: 400,
      });
    }
    if (outcome === 'confirm_needed') {
      return renderAccount(ctx, g.signed, {
        error: 'This is the only passkey you can sign in with, and your account has no password. Tick the box to confirm you understand that you will then need a recovery code or another passkey to sign in, and delete it again.',
        status: 400,
        invalid: { id: ctx.params.id ?? '', field: 'confirm' },
      });
    }
    return seeOther(ctx, `${ACCOUNT_PATHS.page}?notice=deleted`);
  });

  router.post(ACCOUNT_PATHS.passkeyOptions, async (ctx) => {
    const g = await forJson(ctx);
    if (!g) return;
    const s = served(ctx);
    const { user, session } = g.signed;
    json(
      ctx,
      await passkeys.registrationOptions({
        realmId: s.realm.id,
        settings: s.realm.settings,
        // as on the sign-in pages: a browser supporting Related Origin Requests gets the realm's shared RP ID
        rp: relyingParty(s.realm, s.issuer, { relatedOrigins: g.body.relatedOrigins === true }),
        user: { id: user.id, email: user.email, name: user.name },
        boundTo: challengeBinding(session),
        kind: 'passkey',
      }),
    );
  });

  router.post(ACCOUNT_PATHS.passkeyVerify, async (ctx) => {
    const g = await forJson(ctx);
    if (!g) return;
    const s = served(ctx);
    const { user, session } = g.signed;
    const { response } = g.body;
    if (!response || typeof response !== 'object' || Array.isArray(response)) throw new LatchkeyError('invalid_request', 'The passkey response is missing. Try again.', 400);
    const credential = await verifyPostedRegistration(passkeys, s, user, { response, name: g.body.name }, challengeBinding(session), 'passkey');
    await securityEvent(s.realm.id, user.id, 'account.passkey_added', { credentialId: credential.id, rpId: credential.rpId, aaguid: credential.aaguid });
    // a passkey is asked for after the password from now on: without recovery codes, losing the device
    // would lock the account out, so they come next, shown once (as after the authenticator app)
    if ((await recovery.remaining(s.realm.id, user.id)) === 0) return json(ctx, { redirect: ACCOUNT_PATHS.firstRecoveryCodes });
    json(ctx, { reload: true });
  });

  router.get(ACCOUNT_PATHS.totp, async (ctx) => {
    const signed = await forPage(ctx, ACCOUNT_PATHS.totp, true);
    if (!signed) return;
    const s = served(ctx);
    const { user, session } = signed;
    if (await totp.isEnrolled(s.realm.id, user.id)) return seeOther(ctx, `${ACCOUNT_PATHS.page}?notice=totp-exists`);
    // the key this browser started setting up is shown again (a reload, the new sign-in a stale session
    // needed); a pending key started anywhere else never is: this browser gets a new one
    const pending = await totp.pendingEnrolment(s.realm.id, user.id, user.email, s.realm.displayName);
    let enrolment = pending && sessions.enrolmentMarked(ctx, s.issuer, user.id, pending.secret) ? pending : undefined;
    if (!enrolment) {
      try {
        enrolment = await totp.startEnrolment(s.realm.id, user.id, user.email, s.realm.displayName);
      } catch (err) {
        // confirmed meanwhile in another tab
        if (err instanceof LatchkeyError && err.status === 409) return seeOther(ctx, `${ACCOUNT_PATHS.page}?notice=totp-exists`);
        throw err;
      }
      sessions.markEnrolment(ctx, s.issuer, user.id, enrolment.secret);
    }
    page(ctx, 'account-totp', {
      layout: layoutFor(s, 'Set up an authenticator app'),
      csrf: sessions.csrf(session),
      totp: { qrSvg: enrolment.qrSvg, secret: enrolment.secret, action: ACCOUNT_PATHS.totp },
      backUrl: ACCOUNT_PATHS.page,
    });
  });

  router.post(ACCOUNT_PATHS.totp, async (ctx) => {
    const g = await forForm(ctx, { fresh: true, returnTo: ACCOUNT_PATHS.totp });
    if (!g) return;
    const s = served(ctx);
    const { user, session } = g.signed;
    const code = (g.form.code ?? '').slice(0, 32);
    const result = await totp.tryConfirmEnrolment(s.realm.id, user.id, code);
    if (result.ok) {
      await securityEvent(s.realm.id, user.id, 'account.totp_enrolled');
      // a first second factor comes with recovery codes, shown once, like enrolment during sign-in
      if ((await recovery.remaining(s.realm.id, user.id)) === 0) return showNewRecoveryCodes(ctx, g.signed);
      return seeOther(ctx, `${ACCOUNT_PATHS.page}?notice=totp-on`);
    }
    if (await totp.isEnrolled(s.realm.id, user.id)) return seeOther(ctx, `${ACCOUNT_PATHS.page}?notice=totp-on-elsewhere`);
    const pending = await totp.pendingEnrolment(s.realm.id, user.id, user.email, s.realm.displayName);
    // nothing pending any more, unreadable, or replaced by a set-up started elsewhere (whose key this
    // browser must not see): start the set-up again
    if (!pending || !sessions.enrolmentMarked(ctx, s.issuer, user.id, pending.secret)) return seeOther(ctx, ACCOUNT_PATHS.totp);
    page(
      ctx,
      'account-totp',
      {
        layout: layoutFor(s, 'Set up an authenticator app'),
        csrf: sessions.csrf(session),
        totp: { qrSvg: pending.qrSvg, secret: pending.secret, action: ACCOUNT_PATHS.totp },
        backUrl: ACCOUNT_PATHS.page,
        error:
          !result.ok && result.reason === 'rate_limited'
            ? `Too many wrong codes. Wait ${waitText(result.retryAfterSeconds ?? 0)}, then enter the code your authenticator app shows.`
            : /^\s*[0-9 ]+\s*$/.test(code)
              ? 'That code is not right. Check the time on your device, wait for the next code and try again. After several wrong codes you have to wait a few minutes.'
              : 'Enter the 6-digit code your authenticator app shows.',
      },
      !result.ok && result.reason === 'rate_limited' ? 429 : 400,
    );
  });

  router.post(ACCOUNT_PATHS.totpRemove, async (ctx) => {
    const g = await forForm(ctx, { fresh: true });
    if (!g) return;
    const s = served(ctx);
    if (g.form.confirm !== 'yes' && lastRequiredFactor(s.realm.settings.mfa, g.signed.user, (await passkeys.credentials(s.realm.id, g.signed.user.id)).length)) {
      return renderAccount(ctx, g.signed, {
        error: 'This is your only second step, and this organisation requires one. Tick the box to confirm that you will set up a new one the next time you sign in, then turn it off again.',
        status: 400,
        invalid: { id: 'totp', field: 'confirm' },
      });
    }
    if (await totp.remove(s.realm.id, g.signed.user.id)) await securityEvent(s.realm.id, g.signed.user.id, 'account.totp_removed');
    return seeOther(ctx, `${ACCOUNT_PATHS.page}?notice=totp-off`);
  });

  /**
   * The recovery codes that follow a first passkey (see the passkey verify above): made and shown once,
   * only while the account has a passkey and no codes; otherwise back to the account page, so a reload
   * or a stray link neither shows nor replaces codes.
   */
  router.get(ACCOUNT_PATHS.firstRecoveryCodes, async (ctx) => {
    const signed = await forPage(ctx, ACCOUNT_PATHS.page, false);
    if (!signed) return;
    const s = served(ctx);
    const { user } = signed;
    const hasPasskey = (await passkeys.credentials(s.realm.id, user.id)).length > 0;
    if (!hasPasskey || (await recovery.remaining(s.realm.id, user.id)) > 0) return seeOther(ctx, ACCOUNT_PATHS.page);
    await showNewRecoveryCodes(ctx, signed);
  });

  router.post(ACCOUNT_PATHS.recoveryCodes, async (ctx) => {
    const g = await forForm(ctx, { fresh: true });
    if (!g) return;
    await showNewRecoveryCodes(ctx, g.signed);
  });

  /**
   * Changes the password, or adds one to an account that has none (passkeys or a connection only). The
   * new password is typed twice and must pass the realm's password policy; nothing is written otherwise.
   */
  router.post(ACCOUNT_PATHS.password, async (ctx) => {
    const g = await forForm(ctx, { fresh: true });
    if (!g) return;
    const s = served(ctx);
    const { user } = g.signed;
    const password = g.form.new_password ?? '';
    // a refusal marks the new password (both fields come back empty, so typing starts there again)
    const invalid = { id: 'password', field: 'new_password' } as const;
    if (!password) return renderAccount(ctx, g.signed, { error: 'Enter the new password.', status: 400, invalid });
    if (password !== (g.form.new_password_again ?? '')) return renderAccount(ctx, g.signed, { error: 'The two passwords do not match. Type the same new password in both fields.', status: 400, invalid });
    try {
      await users.update(s.realm.id, user.id, { password });
    } catch (err) {
      if (err instanceof LatchkeyError && err.status < 500) return renderAccount(ctx, g.signed, { error: err.message, status: err.status, invalid });
      throw err;
    }
    const change = user.passwordHash ? 'changed' : 'added';
    // "Sign out of all other devices" (ticked by default): every other session of the account ends and the
    // other grants are revoked (refresh tokens of apps on other devices included); this session stays
    const signedOut = g.form.sign_out_others === 'yes' ? await users.signOutEverywhere(s.realm.id, user.id, g.signed.session.opSession) : undefined;
    await securityEvent(s.realm.id, user.id, `account.password_${change}`, signedOut ? { otherSessionsEnded: signedOut.sessions, grantsRevoked: signedOut.grants } : {});
    return seeOther(ctx, `${ACCOUNT_PATHS.page}?notice=password-${change}${g.form.sign_out_others === 'yes' ? '-signed-out' : ''}`);
  });

  /**
   * "Sign out" of one of the user's other sessions (the account page's "Signed-in devices"): it ends, the
   * grants made in it are revoked with everything issued under them (its applications' refresh tokens
   * stop working), and its applications are sent back-channel logout tokens. This session signs out with
   * the page's own "Sign out"; a session that is not the user's (or no longer exists) is not found.
   */
  router.post('/account/sessions/:id/sign-out', async (ctx) => {
    const g = await forForm(ctx, { fresh: true });
    if (!g) return;
    const s = served(ctx);
    const uid = ctx.params.id ?? '';
    if (uid === g.signed.session.opSession) {
      return renderAccount(ctx, g.signed, { error: 'This is the device you are using now. To sign out of it, use the Sign out button at the bottom of the page.', status: 400 });
    }
    const ended = uid ? await users.endSession(s.realm.id, g.signed.user.id, uid) : undefined;
    if (!ended) return renderAccount(ctx, g.signed, { error: 'That device is not signed in to your account (any more). It may have been signed out already: the list below is up to date.', status: 404 });
    await securityEvent(s.realm.id, g.signed.user.id, 'account.session_ended', { session: uid, grantsRevoked: ended.grants, logoutTokens: ended.logoutTokens });
    return seeOther(ctx, `${ACCOUNT_PATHS.page}?notice=session-ended`);
  });

  /**
   * "Remove access" of one application (the account page's "Apps with access"): every grant the user gave
   * it, in every session, is revoked with the tokens issued under it; an application that needs consent
   * asks for it again at the next sign-in.
   */
  router.post('/account/apps/:clientId/remove', async (ctx) => {
    const g = await forForm(ctx, { fresh: true });
    if (!g) return;
    const s = served(ctx);
    const clientId = ctx.params.clientId ?? '';
    const revoked = clientId && clientId !== ACCOUNT_CLIENT_ID ? await users.removeAppAccess(s.realm.id, g.signed.user.id, clientId) : 0;
    if (!revoked) return renderAccount(ctx, g.signed, { error: 'That app has no access to your account (any more). The list below is up to date.', status: 404 });
    await securityEvent(s.realm.id, g.signed.user.id, 'account.app_access_removed', { clientId, grantsRevoked: revoked });
    return seeOther(ctx, `${ACCOUNT_PATHS.page}?notice=app-removed`);
  });

  /** "Send a confirmation link": to the account's address (at most one a minute; nothing once confirmed). */
  router.post(ACCOUNT_PATHS.verifyEmail, async (ctx) => {
    const g = await forForm(ctx, { fresh: false });
    if (!g) return;
    const s = served(ctx);
    services.emailVerification.send({ ...realmMail(s), user: g.signed.user });
    return seeOther(ctx, `${ACCOUNT_PATHS.page}?notice=verify-sent`);
  });

  /**
   * "Change email address": after a recent sign-in, a confirmation link goes to the new address and a
   * notice to the current one (after the answer). The answer is the same when the new address belongs to
   * another account (whose owner gets a notice instead): the page never tells which addresses are taken.
   */
  router.post(ACCOUNT_PATHS.changeEmail, async (ctx) => {
    const g = await forForm(ctx, { fresh: true });
    if (!g) return;
    const s = served(ctx);
    const { user } = g.signed;
    const newEmail = (g.form.new_email ?? '').trim();
    const invalid = { id: 'email', field: 'new_email', value: newEmail.slice(0, MAX_EMAIL_LENGTH) } as const;
    if (!services.emailChange.enabled) return renderAccount(ctx, g.signed, { error: 'This service cannot send email, so it cannot confirm a new address. Ask your administrator to change your email address.', status: 400 });
    if (!newEmail || newEmail.length > MAX_EMAIL_LENGTH || !EMAIL_ADDRESS.test(newEmail)) return renderAccount(ctx, g.signed, { error: 'Enter a valid email address, like name@example.com.', status: 400, invalid });
    if (normalizeEmail(newEmail) === normalizeEmail(user.email)) return renderAccount(ctx, g.signed, { error: 'That is already your email address. Enter the new one.', status: 400, invalid });
    services.emailChange.request({ ...realmMail(s), user, newEmail, address: ctx.ip });
    return seeOther(ctx, `${ACCOUNT_PATHS.page}?notice=email-change-sent`);
  });

  /** "I have saved my codes": back to the account page (no change, so no recent sign-in needed). */
  router.post(ACCOUNT_PATHS.recoveryCodesDone, async (ctx) => {
    const g = await forForm(ctx, { fresh: false });
    if (!g) return;
    return seeOther(ctx, `${ACCOUNT_PATHS.page}?notice=codes`);
  });

  linkedAccountRoutes(router, services, { signedIn, forForm, renderAccount, signInUrl });

  return router;
}
