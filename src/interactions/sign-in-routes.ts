import { EMAIL_ADDRESS as EMAIL, MAX_EMAIL_LENGTH as MAX_EMAIL } from '../accounts/email-address.js';
import { realmMail } from '../accounts/email-link-flow.js';
import type Router from '@koa/router';
import { createHmac } from 'node:crypto';
import { decodeJwt } from 'jose';
import type { Context } from 'koa';
import type { UserRow } from '../db/users-repo.js';
import { InvalidFieldsError, LatchkeyError } from '../errors.js';
import { recordSecurityEvent } from '../mfa/security-events.js';
import { equalStrings } from '../account/session.js';
import type { TotpEnrolment } from '../mfa/totp.js';
import type { SignInEvent } from '../events/bus.js';
import { connectionStartPath } from '../connections/service.js';
import type { Services } from '../server/services.js';
import { stepAnswerer } from './answer-step.js';
import { readForm } from '../server/body.js';
import { wantsMultiFactor } from './acr.js';
import { csrfToken } from './csrf.js';
import { checkedForm, emitSignIn, errorPage, interactionOf, page, seeOther, served, type Details } from './kit.js';
import { layoutFor } from './layout.js';
import { passkeyBinding } from './passkey-routes.js';
import { relyingParty } from '../passkeys/relying-party.js';
import type { SignInSteps } from './next-step.js';
import type { Progress, ProgressStore, Stage } from './progress.js';
import type { TenantResolver } from './tenant-resolution.js';
import { MAX_SIGNUP_CODE_ATTEMPTS, normalizeSignupCode, type PendingSignup } from '../accounts/signup-codes.js';

/** The throttle counter of sign-up emails (per client address, apart from sign-in failures). */
export const SIGNUP_CODE_PURPOSE = 'signup-code';

// no whitespace and no control characters (PostgreSQL cannot even compare text holding a NUL)
const CONTROL = /\p{Cc}/u;
const FAR_FUTURE = 8_640_000_000_000_000;

/** Identifier-first sign-in, passwords, second factors, enrolment and the passkey offer. */
export function signInRoutes(router: Router, services: Services, progress: ProgressStore, steps: SignInSteps, tenants: TenantResolver): void {
  const { users, throttle, events, csrfKey, totp, recovery } = services;
  const url = (d: Details, path = '') => `/interaction/${d.uid}${path}`;
  // a verified factor: on to the next step, or through the provider's resume to the client (in this request)
  const answerStep = stepAnswerer(services);

  const event = (ctx: Context, d: Details, type: SignInEvent['type'], method: SignInEvent['method'], extra: Partial<SignInEvent> = {}) =>
    emitSignIn(events, ctx, d, type, method, extra);

  async function clientName(ctx: Context, d: Details): Promise<string | undefined> {
    const client = await served(ctx).provider.Client.find(String(d.params.client_id));
    return client?.clientName ?? client?.clientId;
  }

  /**
   * The realm's upstream identity providers, as "Continue with" links for this sign-in. While one waits
   * for this account's proof it is left out (it would only ask again); signing in through another one
   * already linked to the account is a proof too.
   */
  const connectionButtons = async (ctx: Context, d: Details, p: Progress) =>
    (await services.connections.availableFor(served(ctx).realm.id, { tenantId: p.tenantId })).filter((c) => c.id !== p.linking?.connectionId).map((c) => ({ name: c.name, icon: c.icon, url: connectionStartPath(d.uid, c.id) }));

  /**
   * The first page's passkey options (usernameless, first factor), rendered into the page so that the
   * autofill request and the "Sign in with a passkey" button start without asking for them first. They
   * are what POST /passkey/options {mode: "button"} answers, with a stored single-use challenge of
   * their own. Not prepared where the RP ID depends on the browser (related origins on a secondary
   * domain): the script asks for options then, telling what the browser supports.
   */
  async function preparedPasskeyRequest(ctx: Context, d: Details): Promise<string | undefined> {
    const s = served(ctx);
    const rp = relyingParty(s.realm, s.issuer);
    if (rp.rpId !== relyingParty(s.realm, s.issuer, { relatedOrigins: true }).rpId) return undefined;
    const options = await services.passkeys.authenticationOptions({ realmId: s.realm.id, rp, boundTo: passkeyBinding(d.uid), purpose: 'first-factor' });
    return JSON.stringify(options);
  }

  const passkeyUrls = (d: Details) => ({ optionsUrl: url(d, '/passkey/options'), verifyUrl: url(d, '/passkey/verify') });
  const registerUrls = (d: Details) => ({ optionsUrl: url(d, '/passkey/register/options'), verifyUrl: url(d, '/passkey/register/verify') });

  /** Where a sign-in starts: fresh, a re-authentication (max_age, prompt=login) or a step-up of a live session. */
  async function initialProgress(ctx: Context, d: Details): Promise<Progress> {
    const reasons = (d.prompt.reasons ?? []) as string[];
    // id_token_hint naming another account than the one signed in: the sign-in is for the hinted one
    const hinted = reasons.includes('id_token_hint') ? hintedAccount(d.prompt.details.id_token_hint) : undefined;
    const accountId = hinted ?? d.session?.accountId;
    const user = accountId ? await users.findById(served(ctx).realm.id, accountId) : undefined;
    if (!user || user.disabled) return { stage: 'identify', amr: [] };
    if (hinted && hinted !== d.session?.accountId) return identified(ctx, user.email, user);
    // only when multi-factor is all that is missing: a new sign-in asked for as well (prompt=login, max_age,
    // id_token_hint) starts with the first factor again, and the second follows (see afterFirstFactor)
    if (reasons.length > 0 && reasons.every((r) => r === 'mfa_required') && wantsMultiFactor(d.params.acr_values)) {
      // step-up: the live session is the first factor; ask for (or set up) a second one. The methods it was
      // signed in with carry on into amr (RFC 8176): not every session began with a password.
      const f = await steps.factors(ctx, user.id);
      const sessionAmr = Array.isArray(d.session?.amr) ? d.session.amr.filter((m): m is string => typeof m === 'string') : [];
      return { stage: f.totp || f.keys ? 'mfa' : 'mfa-enrol', userId: user.id, email: user.email, amr: sessionAmr, stepUp: true };
    }
    // re-authentication of the signed-in user: straight to their method
    return identified(ctx, user.email, user);
  }

  /** The subject of an id_token_hint (the provider has checked its signature; subjects are account ids). */
  function hintedAccount(hint: unknown): string | undefined {
    if (typeof hint !== 'string') return undefined;
    try {
      const sub = decodeJwt(hint).sub;
      return typeof sub === 'string' && sub ? sub : undefined;
    } catch {
      return undefined;
    }
  }

  async function identified(ctx: Context, email: string, user: UserRow | undefined): Promise<Progress> {
    if (user && !user.disabled) {
      const f = await steps.factors(ctx, user.id);
      // a passwordless user without a passkey here still gets the passkey step: it leads to recovery codes
      if (f.passkeys || !user.passwordHash) return { stage: 'passkey', email, amr: [] };
    }
    // unknown emails get the password step too, so the answer does not reveal whether an account exists
    return { stage: 'password', email, amr: [] };
  }

  /** A locked check (password, authenticator code): sets Retry-After and says the wait in whole minutes. */
  function lockedFor(ctx: Context, retryAfterSeconds: number): string {
    ctx.set('Retry-After', String(retryAfterSeconds));
    const minutes = Math.max(1, Math.ceil(retryAfterSeconds / 60));
    return `${minutes} minute${minutes === 1 ? '' : 's'}`;
  }

  /** The message of a locked authenticator-code check, at sign-in and at the app's set-up alike. */
  const tooManyCodes = (ctx: Context, retryAfterSeconds: number | undefined) =>
    `Too many wrong codes. Wait ${lockedFor(ctx, Math.max(1, retryAfterSeconds ?? 60))}, then enter the code your authenticator app shows.`;

  const keyMark = (d: Details, userId: string, secret: string) => createHmac('sha256', csrfKey).update(`totp-enrolment:${d.uid}:${userId}:${secret}`).digest('base64url');

  /**
   * The authenticator-app key this sign-in sets up: the pending one when this sign-in started it (a
   * reload or a mistyped code keeps the key the user scanned), otherwise a new one in its place. A key
   * pending from anywhere else (another sign-in, the account page) is never shown here: whoever knows
   * only the password must not read the key the account's owner is about to confirm.
   */
  async function enrolmentFor(ctx: Context, d: Details, p: Progress, user: UserRow): Promise<TotpEnrolment> {
    const s = served(ctx);
    const pending = await totp.pendingEnrolment(s.realm.id, user.id, user.email, s.realm.displayName);
    if (pending && p.totpKeyMark && equalStrings(p.totpKeyMark, keyMark(d, user.id, pending.secret))) return pending;
    const fresh = await totp.startEnrolment(s.realm.id, user.id, user.email, s.realm.displayName);
    await progress.put(s.realm.id, d, { ...p, totpKeyMark: keyMark(d, user.id, fresh.secret) });
    return fresh;
  }

  async function render(ctx: Context, d: Details, p: Progress, extra: { error?: string; status?: number; recoveryOpen?: boolean; notice?: string } = {}): Promise<void> {
    const s = served(ctx);
    // once the tenant is known, the pages wear its name, logo and colour
    const tenantId = p.tenantId ?? (await progress.get(s.realm.id, d))?.tenantId;
    const tenant = tenantId ? await services.tenants.find(s.realm.id, tenantId) : undefined;
    const brand = (title: string) => layoutFor(s, title, tenant);
    const csrf = csrfToken(csrfKey, d.uid);
    const name = await clientName(ctx, d);
    // (an email shown back because it is malformed is not looked up)
    const user = p.userId ? await users.findById(s.realm.id, p.userId) : p.email && EMAIL.test(p.email) ? await users.findByEmail(s.realm.id, p.email) : undefined;
    const common = { csrf, error: extra.error, clientName: name, changeEmailAction: url(d, '/restart'), abortAction: url(d, '/abort') };
    const status = extra.status ?? 200;
    switch (p.stage) {
      case 'identify':
        return page(
          ctx,
          'login',
          {
            ...common,
            layout: brand('Sign in'),
            action: url(d, '/identify'),
            email: p.email ?? (typeof d.params.login_hint === 'string' ? d.params.login_hint : ''),
            passkey: passkeyUrls(d),
            passkeyRequest: await preparedPasskeyRequest(ctx, d),
            signupUrl: s.realm.settings.signup ? url(d, '/signup') : undefined,
            connections: await connectionButtons(ctx, d, p),
          },
          status,
        );
      case 'password': {
        const f = user ? await steps.factors(ctx, user.id) : { passkeys: 0 };
        return page(ctx, 'password', { ...common, layout: brand('Enter your password'), action: url(d, '/login'), email: p.email, forgotUrl: services.passwordResets.enabled ? url(d, '/forgot-password') : undefined, passkey: f.passkeys ? passkeyUrls(d) : undefined, linking: p.linking?.name, connections: p.linking ? await connectionButtons(ctx, d, p) : undefined }, status);
      }
      case 'passkey':
        return page(
          ctx,
          'passkey',
          {
            ...common,
            layout: brand('Use your passkey'),
            email: p.email,
            linking: p.linking?.name,
            connections: await connectionButtons(ctx, d, p),
            passkey: passkeyUrls(d),
            passwordUrl: user?.passwordHash ? url(d, '?method=password') : undefined,
            // a recovery code signs in on its own only where there is no password (it is the second factor after one)
            recoveryUrl: user?.passwordHash ? undefined : url(d, '?method=recovery'),
          },
          status,
        );
      case 'mfa': {
        const f = p.userId ? await steps.factors(ctx, p.userId) : { totp: false, keys: 0 };
        return page(
          ctx,
          'mfa',
          {
            ...common,
            layout: brand('Verify it’s you'),
            securityKey: f.keys ? passkeyUrls(d) : undefined,
            totpAction: f.totp ? url(d, '/totp') : undefined,
            recoveryAction: url(d, '/recovery'),
            recoveryOpen: extra.recoveryOpen,
          },
          status,
        );
      }
      case 'mfa-enrol': {
        if (!user) return render(ctx, d, { stage: 'identify', amr: [] });
        const enrolment = await enrolmentFor(ctx, d, p, user);
        return page(
          ctx,
          'mfa-enrol',
          {
            ...common,
            layout: brand('Set up a second step'),
            required: s.realm.settings.mfa === 'required' || p.stepUp,
            totp: { qrSvg: enrolment.qrSvg, secret: enrolment.secret, action: url(d, '/totp/enrol') },
            securityKey: registerUrls(d),
            register: registerUrls(d),
          },
          status,
        );
      }
      case 'recovery-codes': {
        if (!p.userId) return render(ctx, d, { stage: 'identify', amr: [] });
        // shown once: a reload does not show (or change) them again
        const codes = p.codesShown ? [] : await recovery.generate(s.realm.id, p.userId);
        await progress.put(s.realm.id, d, { ...p, codesShown: true });
        return page(ctx, 'recovery-codes', { ...common, layout: brand('Save your recovery codes'), codes, alreadyShown: Boolean(p.codesShown), action: url(d, '/continue') }, status);
      }
      case 'passkey-offer':
        return page(
          ctx,
          'passkey-offer',
          {
            ...common,
            layout: brand('Create a passkey'),
            email: p.email,
            register: registerUrls(d),
            recovered: Boolean(p.recovered),
            // a passwordless sign-up has no other way in: the passkey is not optional
            skipAction: p.passwordlessSignup ? undefined : url(d, '/offer/skip'),
            neverAction: p.recovered || p.passwordlessSignup ? undefined : url(d, '/offer/never'),
          },
          status,
        );
      case 'password-change':
        if (!user) return render(ctx, d, { stage: 'identify', amr: [] });
        return page(
          ctx,
          'password-reset',
          {
            ...common,
            layout: brand('Choose a new password'),
            action: url(d, '/password-change'),
            email: user.email,
            minLength: services.config.passwords.minLength,
            notice: 'Your password is a temporary one. Choose a new password to continue.',
          },
          status,
        );
      case 'verify-email':
        if (!user) return render(ctx, d, { stage: 'identify', amr: [] });
        return page(
          ctx,
          'verify-email-pending',
          {
            ...common,
            layout: brand('Confirm your email address'),
            email: user.email,
            continueAction: services.emailVerification.enabled ? url(d, '/verify-email/continue') : undefined,
            resendAction: url(d, '/verify-email/resend'),
            notice: extra.notice,
          },
          status,
        );
      case 'signup-code':
        if (!p.signup) return render(ctx, d, { stage: 'identify', amr: [] });
        return page(
          ctx,
          'signup-code',
          {
            ...common,
            layout: brand('Check your email'),
            email: p.signup.email,
            action: url(d, '/signup/code'),
            resendAction: url(d, '/signup/resend'),
            changeUrl: url(d, '/signup'),
            minutes: Math.max(1, Math.round(services.signupCodes.ttlSeconds / 60)),
            notice: extra.notice,
          },
          status,
        );
    }
  }

  async function current(ctx: Context, d: Details): Promise<Progress> {
    const s = served(ctx);
    const existing = await progress.get(s.realm.id, d);
    if (existing) return existing;
    const fresh = await initialProgress(ctx, d);
    // No stored progress already means "identify" to every step, so a plain start is not written: a
    // passkey (or autofill) sign-in from the first page then never writes progress at all.
    if (fresh.stage !== 'identify') await progress.put(s.realm.id, d, fresh);
    return fresh;
  }

  router.get('/interaction/:uid', async (ctx, next) => {
    const d = await interactionOf(ctx);
    if (!d) return;
    if (d.prompt.name !== 'login') return next();
    let p = await current(ctx, d);
    const method = ctx.query.method;
    if (method === 'password' && p.stage === 'passkey' && p.email) {
      const user = await users.findByEmail(served(ctx).realm.id, p.email);
      if (user?.passwordHash) {
        p = { ...p, stage: 'password' };
        await progress.put(served(ctx).realm.id, d, p);
      }
    }
    if (method === 'recovery' && p.stage === 'passkey' && p.email && !(await users.findByEmail(served(ctx).realm.id, p.email))?.passwordHash) {
      return page(ctx, 'mfa', {
        layout: layoutFor(served(ctx), 'Use a recovery code'),
        csrf: csrfToken(csrfKey, d.uid),
        clientName: await clientName(ctx, d),
        recoveryAction: url(d, '/recovery'),
        recoveryOpen: true,
        changeEmailAction: url(d, '/restart'),
        abortAction: url(d, '/abort'),
      });
    }
    return render(ctx, d, p);
  });

  router.post('/interaction/:uid/identify', async (ctx) => {
    const form = await readForm(ctx);
    const d = await interactionOf(ctx);
    if (!d || !(await checkedForm(ctx, csrfKey, d, form))) return;
    const email = (form.email ?? '').trim();
    if (!EMAIL.test(email) || email.length > MAX_EMAIL) {
      return render(ctx, d, { stage: 'identify', email: email.slice(0, MAX_EMAIL), amr: [] }, { error: 'Enter a valid email address, like name@example.com.', status: 400 });
    }
    // home realm discovery: the email's tenant may send it to a connection, the SSO page or the tenant picker
    const routed = await tenants.afterEmail(ctx, d, email);
    if (routed.kind === 'error') return render(ctx, d, { stage: 'identify', email, amr: [] }, { error: routed.message, status: routed.status });
    if (routed.kind === 'redirect') return seeOther(ctx, routed.url);
    const user = await users.findByEmail(served(ctx).realm.id, email);
    await progress.put(served(ctx).realm.id, d, await identified(ctx, email, user));
    return seeOther(ctx, url(d));
  });

  /**
   * A passwordless self-service sign-up that stopped before its passkey: nothing but the row exists, so a
   * new sign-up of the same email may finish it. Any way in makes the account someone's, never to be handed
   * to whoever signs up with its email: a password, a passkey or security key on any domain of the realm
   * (not only this issuer's RP ID), TOTP, recovery codes (all passkeys deleted), an upstream identity, or
   * an email an administrator or a connection verified.
   */
  async function unfinishedSignup(realmId: string, user: UserRow, options: { mailboxProven?: boolean } = {}): Promise<boolean> {
    // a sign-up whose emailed code was entered has proven the mailbox: a confirmed address alone does not
    // keep it from an account with no way in at all (the row its own earlier sign-up left)
    if (user.passwordHash || user.disabled || (user.emailVerified && !options.mailboxProven)) return false;
    // a user an operator, an import or a connection made is someone's account waiting for its owner:
    // only the emailed code (the mailbox) hands it over, as an invitation would
    if (user.createdBy !== null && user.createdBy !== 'signup' && !options.mailboxProven) return false;
    const [credentials, totpOn, codes, identities] = await Promise.all([
      services.passkeys.credentials(realmId, user.id),
      totp.isEnrolled(realmId, user.id),
      recovery.remaining(realmId, user.id),
      services.linking.identitiesOf(realmId, user.id),
    ]);
    return credentials.length === 0 && !totpOn && codes === 0 && identities.length === 0;
  }

  function signupPage(ctx: Context, d: Details, data: { email?: string; name?: string; error?: string; errorField?: 'email' | 'name' | 'password' }, status = 200): void {
    page(
      ctx,
      'signup',
      {
        layout: layoutFor(served(ctx), 'Create your account'),
        action: url(d, '/signup'),
        csrf: csrfToken(csrfKey, d.uid),
        signInUrl: url(d),
        minLength: services.config.passwords.minLength,
        ...data,
      },
      status,
    );
  }

  router.get('/interaction/:uid/signup', async (ctx) => {
    const d = await interactionOf(ctx);
    if (!d) return;
    if (!served(ctx).realm.settings.signup) return page(ctx, 'error', { layout: layoutFor(served(ctx), 'Sign-up is closed'), title: 'Sign-up is closed', message: 'This organisation creates accounts itself. Ask your administrator for one.', code: 'signup_disabled' }, 404);
    signupPage(ctx, d, {});
  });

  /** Self-service sign-up: with a password (then the passkey offer), or passwordless (a passkey is required). */
  router.post('/interaction/:uid/signup', async (ctx) => {
    const s = served(ctx);
    const form = await readForm(ctx);
    const d = await interactionOf(ctx);
    if (!d || !(await checkedForm(ctx, csrfKey, d, form))) return;
    if (!s.realm.settings.signup) return page(ctx, 'error', { layout: layoutFor(s, 'Sign-up is closed'), title: 'Sign-up is closed', message: 'This organisation creates accounts itself.', code: 'signup_disabled' }, 404);
    const email = (form.email ?? '').trim();
    // checked (length, control and text-direction characters) by the user service with every other name
    const name = (form.name ?? '').trim() || undefined;
    const password = form.password ?? '';
    if (!EMAIL.test(email) || email.length > MAX_EMAIL) return signupPage(ctx, d, { email: email.slice(0, MAX_EMAIL), name, error: 'Enter a valid email address, like name@example.com.' }, 400);
    // with email, the answer is the same for every address (the code, or a notice, follows by email);
    // without it, an existing address is refused here, as Keycloak, Auth0 and Logto do
    if (services.signupCodes.enabled) return startSignupByCode(ctx, d, email, name, password);
    const existing = await users.findByEmail(s.realm.id, email);
    let user: UserRow | undefined;
    if (existing) {
      // an earlier passwordless sign-up that never got its passkey can be finished; anything else is taken
      if (password || !(await unfinishedSignup(s.realm.id, existing))) return signupPage(ctx, d, { email, name, error: 'An account with this email already exists. Sign in instead.' }, 409);
      user = existing;
    } else {
      try {
        await users.create({ realmId: s.realm.id, email, name, password: password || undefined, emailVerified: false, createdBy: 'signup' });
      } catch (err) {
        const e = err as { code?: string; message?: string };
        if (err instanceof InvalidFieldsError && err.fields[0]?.field === 'name') {
          return signupPage(ctx, d, { email, name, error: `Your name ${err.fields[0].problem}.`, errorField: 'name' }, 400);
        }
        if (e.code === 'invalid_input' || e.code === 'conflict') {
          // the password policy's messages name their field; anything else is about the email
          const errorField = e.code === 'invalid_input' && /password/i.test(e.message ?? '') ? 'password' : 'email';
          return signupPage(ctx, d, { email, name, error: e.message, errorField }, e.code === 'conflict' ? 409 : 400);
        }
        throw err;
      }
      user = await users.findByEmail(s.realm.id, email);
    }
    if (!user) throw new Error('the new account could not be read back');
    return signedUp(ctx, d, user, Boolean(password));
  });

  /** The account exists: signed in by its new password, or on to its required passkey. */
  async function signedUp(ctx: Context, d: Details, user: UserRow, withPassword: boolean): Promise<void> {
    const s = served(ctx);
    if (withPassword) {
      // the password just set is the proof; a passwordless sign-up succeeds when its passkey is made
      // (src/interactions/passkey-routes.ts): typing an email proves nothing
      event(ctx, d, 'signin.success', 'password', { userId: user.id, reason: 'signup' });
      // a new account with a password: its address gets a confirmation link unless a sign-up code
      // confirmed it already (a passwordless one gets it once its passkey is made, src/interactions/passkey-routes.ts)
      services.emailVerification.send({ ...realmMail(s), user });
      // a password is a first factor like any other: the realm's MFA policy (enrolment where it is
      // required), then the passkey offer
      return answerStep(ctx, d, user.id, 'redirect', () => steps.afterFirstFactor(ctx, d, user, { stage: 'password', email: user.email, amr: ['pwd'] }));
    }
    await progress.put(s.realm.id, d, { stage: 'passkey-offer', email: user.email, userId: user.id, amr: [], passwordlessSignup: true });
    return seeOther(ctx, url(d));
  }

  /**
   * Sign-up with email configured (as Logto's email-verified sign-up): the form's answer is the "check
   * your email" page for every address, and the email follows the answer. Nothing is written to the
   * accounts until the code comes back; the password is checked against the policy and hashed now, so
   * its errors show on the form.
   */
  async function startSignupByCode(ctx: Context, d: Details, email: string, name: string | undefined, password: string): Promise<void> {
    const s = served(ctx);
    if (name && CONTROL.test(name)) return signupPage(ctx, d, { email, name, error: 'The name must not contain control characters.', errorField: 'name' }, 400);
    let passwordHash: string | undefined;
    if (password) {
      try {
        passwordHash = await users.hashNewPassword(password, email);
      } catch (err) {
        const e = err as { code?: string; message?: string };
        if (e.code === 'invalid_input') return signupPage(ctx, d, { email, name, error: e.message, errorField: 'password' }, 400);
        throw err;
      }
    }
    const gate = await throttle.admitAddress(s.realm.id, SIGNUP_CODE_PURPOSE, ctx.ip);
    if (!gate.allowed) return signupPage(ctx, d, { email, name, error: `Too many sign-ups from your network. Try again in ${lockedFor(ctx, gate.retryAfterSeconds)}.` }, 429);
    await sendSignupCode(ctx, d, { email, name, passwordHash });
    return seeOther(ctx, url(d));
  }

  /** A new code for the sign-up (any earlier one stops working), then the email after the answer. */
  async function sendSignupCode(ctx: Context, d: Details, base: Pick<PendingSignup, 'email' | 'name' | 'passwordHash'>): Promise<Progress> {
    const s = served(ctx);
    const issued = services.signupCodes.issue(d.uid, base.email);
    const p: Progress = { stage: 'signup-code', amr: [], signup: { ...base, codeMac: issued.codeMac, expiresAt: issued.expiresAt, attempts: 0 } };
    await progress.put(s.realm.id, d, p);
    const realmId = s.realm.id;
    services.signupCodes.deliver({ ...realmMail(s), email: base.email, code: issued.code }, async () => {
      const existing = await users.findByEmail(realmId, base.email);
      return !existing || (await unfinishedSignup(realmId, existing, { mailboxProven: true }));
    });
    return p;
  }

  /**
   * The posts of the sign-up code page: the form, the interaction and a sign-up waiting for its code, or
   * undefined once the answer is sent (a refused form, or no such sign-up: back to the email step).
   */
  async function pendingSignupPost(ctx: Context) {
    const s = served(ctx);
    const form = await readForm(ctx);
    const d = await interactionOf(ctx);
    if (!d || !(await checkedForm(ctx, csrfKey, d, form))) return undefined;
    const p = await progress.get(s.realm.id, d);
    if (!services.signupCodes.enabled || p?.stage !== 'signup-code' || !p.signup) {
      await render(ctx, d, { stage: 'identify', amr: [] }, { error: 'Start by entering your email.', status: 400 });
      return undefined;
    }
    return { s, form, d, p: p as typeof p & { signup: NonNullable<typeof p.signup> } };
  }

  /** "Send a new code": the same answer and the same limit per client address as the form. */
  router.post('/interaction/:uid/signup/resend', async (ctx) => {
    const post = await pendingSignupPost(ctx);
    if (!post) return;
    const { s, d, p } = post;
    const gate = await throttle.admitAddress(s.realm.id, SIGNUP_CODE_PURPOSE, ctx.ip);
    if (!gate.allowed) return render(ctx, d, p, { error: `Too many codes sent from your network. Try again in ${lockedFor(ctx, gate.retryAfterSeconds)}.`, status: 429 });
    const { email, name, passwordHash } = p.signup;
    const next = await sendSignupCode(ctx, d, { email, name, passwordHash });
    return render(ctx, d, next, { notice: `We sent a new code to ${email}. The earlier code no longer works.` });
  });

  /** The emailed code: single use, in time, five wrong tries per code (and the throttle's lock on bursts). */
  router.post('/interaction/:uid/signup/code', async (ctx) => {
    const post = await pendingSignupPost(ctx);
    if (!post) return;
    const { s, form, d, p } = post;
    const pending = p.signup;
    const code = normalizeSignupCode(form.code ?? '');
    if (!code) return render(ctx, d, p, { error: 'Enter the 6-digit code from the email, like 123456.', status: 400 });
    if (pending.expiresAt <= Date.now()) return render(ctx, d, p, { error: 'That code has expired. Send a new code, then enter it.', status: 400 });
    if (pending.attempts >= MAX_SIGNUP_CODE_ATTEMPTS) return render(ctx, d, p, { error: 'Too many wrong codes. Send a new code, then enter it.', status: 429 });
    // counted before the code is compared (in one step with the lock check): guesses sent at once
    // cannot all pass a check none of them has counted yet
    const keys = { email: `signup-code:${d.uid}`, ip: ctx.ip };
    const gate = await throttle.admit(s.realm.id, keys);
    if (!gate.allowed) return render(ctx, d, p, { error: `Too many wrong codes. Try again in ${lockedFor(ctx, gate.retryAfterSeconds)}.`, status: 429 });
    if (!services.signupCodes.matches(d.uid, pending, code)) {
      const attempts = pending.attempts + 1;
      const next: Progress = { ...p, signup: { ...pending, attempts } };
      await progress.put(s.realm.id, d, next);
      const last = attempts >= MAX_SIGNUP_CODE_ATTEMPTS;
      return render(ctx, d, next, { error: last ? 'That code is not right, and that was the last try. Send a new code, then enter it.' : 'That code is not right. Check the email and enter the code again.', status: 400 });
    }
    await throttle.recordAdmittedSuccess(s.realm.id, keys, gate);
    // single use: the pending sign-up ends before the account is made
    await progress.put(s.realm.id, d, { stage: 'identify', email: pending.email, amr: [] });
    const taken = () => render(ctx, d, { stage: 'identify', email: pending.email, amr: [] }, { error: 'An account with this email already exists. Sign in instead.', status: 409 });
    const existing = await users.findByEmail(s.realm.id, pending.email);
    if (existing) {
      // only an address without an account got a code: an account made since, or an earlier unfinished
      // passwordless sign-up of this very mailbox (finished now)
      if (!(await unfinishedSignup(s.realm.id, existing, { mailboxProven: true }))) return taken();
      await users.completeSignup(s.realm.id, existing.id, { name: pending.name, passwordHash: pending.passwordHash });
    } else {
      try {
        await users.create({ realmId: s.realm.id, email: pending.email, name: pending.name, passwordHash: pending.passwordHash, emailVerified: true, createdBy: 'signup' });
      } catch (err) {
        if ((err as { code?: string }).code === 'conflict') return taken();
        throw err;
      }
    }
    const user = await users.findByEmail(s.realm.id, pending.email);
    if (!user) throw new Error('the new account could not be read back');
    return signedUp(ctx, d, user, Boolean(pending.passwordHash));
  });

  router.post('/interaction/:uid/restart', async (ctx) => {
    const form = await readForm(ctx);
    const d = await interactionOf(ctx);
    if (!d || !(await checkedForm(ctx, csrfKey, d, form))) return;
    await progress.put(served(ctx).realm.id, d, { stage: 'identify', amr: [] });
    return seeOther(ctx, url(d));
  });

  router.post('/interaction/:uid/login', async (ctx) => {
    const s = served(ctx);
    const form = await readForm(ctx);
    const d = await interactionOf(ctx);
    if (!d || !(await checkedForm(ctx, csrfKey, d, form))) return;
    if (d.prompt.name !== 'login') return page(ctx, 'error', { layout: layoutFor(s, 'Already signed in'), title: 'Already signed in', message: 'This step is already done. Go back to the application.', code: 'wrong_step' }, 400);
    const email = (form.email ?? '').trim();
    const sso = await tenants.ssoOnly(ctx, d, email);
    if (sso) return errorPage(ctx, 403, 'Single sign-on required', `${sso.displayName} signs you in with its own identity provider, not with a password.`, 'sso_required');
    const password = form.password ?? '';
    // an upstream identity waiting for this account's proof stays announced on the page after a wrong password
    const linking = (await progress.get(s.realm.id, d))?.linking;
    const p: Progress = { stage: 'password', email: email.slice(0, MAX_EMAIL), amr: [], ...(linking ? { linking } : {}) };
    if (email.length > MAX_EMAIL || CONTROL.test(email)) {
      event(ctx, d, 'signin.failure', 'password', { reason: 'invalid_input' });
      return render(ctx, d, { stage: 'identify', amr: [] }, { error: 'Enter a valid email address, like name@example.com.', status: 400 });
    }
    if (!email || !password) {
      event(ctx, d, 'signin.failure', 'password', { reason: 'invalid_input' });
      return render(ctx, d, email ? p : { stage: 'identify', amr: [] }, { error: 'Enter your email and your password.', status: 400 });
    }
    if (password.length > services.config.passwords.maxLength * 4) {
      event(ctx, d, 'signin.failure', 'password', { reason: 'invalid_input' });
      return render(ctx, d, p, { error: 'Incorrect email or password.', status: 401 });
    }
    // reserved against the account's and the address's failure limits before the password is checked,
    // so wrong passwords sent at once cannot all be checked before any is counted (LoginThrottle.attempt)
    const tried = await throttle.attempt(s.realm.id, { email, ip: ctx.ip }, () => users.verifyPassword(s.realm.id, email, password), (r) => r.ok);
    if (!tried.allowed) {
      event(ctx, d, 'signin.failure', 'password', { reason: 'throttled' });
      return render(ctx, d, p, { error: `Too many failed attempts. Try again in ${lockedFor(ctx, tried.retryAfterSeconds)}.`, status: 429 });
    }
    const result = tried.result;
    if (!result.ok) {
      event(ctx, d, 'signin.failure', 'password', { reason: result.reason });
      const message = result.reason === 'account_disabled' ? 'This account is disabled. Contact your administrator.' : 'Incorrect email or password.';
      return render(ctx, d, p, { error: message, status: 401 });
    }
    event(ctx, d, 'signin.success', 'password', { userId: result.user.id });
    return answerStep(ctx, d, result.user.id, 'redirect', () => steps.afterFirstFactor(ctx, d, result.user, { ...p, amr: ['pwd'] }));
  });

  /** The second factor (or a step-up) by TOTP code. */
  router.post('/interaction/:uid/totp', async (ctx) => {
    const s = served(ctx);
    const form = await readForm(ctx);
    const d = await interactionOf(ctx);
    if (!d || !(await checkedForm(ctx, csrfKey, d, form))) return;
    const p = await progress.get(s.realm.id, d);
    if (!p?.userId || p.stage !== 'mfa') return render(ctx, d, { stage: 'identify', amr: [] }, { error: 'Start by entering your email.', status: 400 });
    const user = await users.findById(s.realm.id, p.userId);
    if (!user || user.disabled) {
      // disabled (or deleted) since the password step: refused here, a failure like the password step's
      event(ctx, d, 'signin.failure', 'totp', { reason: 'account_disabled' });
      return render(ctx, d, { stage: 'identify', amr: [] }, { error: 'This account cannot sign in.', status: 401 });
    }
    const verdict = await totp.verify(s.realm.id, user.id, form.code ?? '');
    if (!verdict.ok) {
      event(ctx, d, 'signin.failure', 'totp', { reason: `totp_${verdict.reason}` });
      if (verdict.reason === 'rate_limited') return render(ctx, d, p, { error: tooManyCodes(ctx, verdict.retryAfterSeconds), status: 429 });
      const message =
        verdict.reason === 'reused' ? 'That code was already used. Wait for the next code from your app.' : 'That code is not right. Check the time on your device and try again.';
      return render(ctx, d, p, { error: message, status: 401 });
    }
    event(ctx, d, 'signin.success', 'totp', { userId: user.id });
    return answerStep(ctx, d, user.id, 'redirect', () => steps.afterSecondFactor(ctx, d, user, { ...p, amr: [...p.amr, 'otp', 'mfa'] }));
  });

  /** Confirms TOTP enrolment during sign-in (MFA required, or a step-up without a factor). */
  router.post('/interaction/:uid/totp/enrol', async (ctx) => {
    const s = served(ctx);
    const form = await readForm(ctx);
    const d = await interactionOf(ctx);
    if (!d || !(await checkedForm(ctx, csrfKey, d, form))) return;
    const p = await progress.get(s.realm.id, d);
    if (!p?.userId || p.stage !== 'mfa-enrol') return render(ctx, d, { stage: 'identify', amr: [] }, { error: 'Start by entering your email.', status: 400 });
    const confirmed = await totp.tryConfirmEnrolment(s.realm.id, p.userId, form.code ?? '');
    if (!confirmed.ok) {
      // the whole set-up page again (the same key, the security key, Cancel), the code field marked; when
      // too many wrong codes have locked the check, a right code is not called wrong: the user waits
      if (confirmed.reason === 'rate_limited') return render(ctx, d, p, { error: tooManyCodes(ctx, confirmed.retryAfterSeconds), status: 429 });
      return render(ctx, d, p, { error: 'That code is not right. Scan the QR code again or type the key, then enter the current code.', status: 400 });
    }
    await progress.put(s.realm.id, d, { ...p, stage: 'recovery-codes', amr: [...p.amr, 'otp', 'mfa'] });
    return seeOther(ctx, url(d));
  });

  /** A recovery code: second factor after a password, or first factor of a passkey-only user who lost every device. */
  router.post('/interaction/:uid/recovery', async (ctx) => {
    const s = served(ctx);
    const form = await readForm(ctx);
    const d = await interactionOf(ctx);
    if (!d || !(await checkedForm(ctx, csrfKey, d, form))) return;
    const p = await progress.get(s.realm.id, d);
    const user = p?.userId ? await users.findById(s.realm.id, p.userId) : p?.email && p.stage === 'passkey' ? await users.findByEmail(s.realm.id, p.email) : undefined;
    if (!p || !user || user.disabled) {
      if (p && user?.disabled) event(ctx, d, 'signin.failure', 'recovery-code', { reason: 'account_disabled' });
      return render(ctx, d, { stage: 'identify', amr: [] }, { error: 'Start by entering your email.', status: 400 });
    }
    const secondFactor = p.stage === 'mfa' && Boolean(p.userId);
    // as the first factor, only for an account without a password: otherwise the code is its second factor
    if (!secondFactor && user.passwordHash) return render(ctx, d, p, { error: 'Sign in with your passkey or your password first. A recovery code is the second step after your password.', status: 400 });
    const keys = { email: `recovery:${user.id}`, ip: ctx.ip };
    // counted before the code is tried (in one step with the lock check): a burst of guesses in parallel
    // cannot all pass a check none of them has counted yet
    const gate = await throttle.admit(s.realm.id, keys);
    if (!gate.allowed || !(await recovery.consume(s.realm.id, user.id, form.code ?? ''))) {
      event(ctx, d, 'signin.failure', 'recovery-code', { reason: gate.allowed ? 'invalid_recovery_code' : 'throttled' });
      const error = gate.allowed ? 'That recovery code is not valid or was already used.' : 'Too many attempts. Try again later.';
      const status = gate.allowed ? 401 : 429;
      // as the second factor: the whole "Verify it's you" page again (the app, the key, Cancel), the code form open
      if (secondFactor) return render(ctx, d, p, { error, status, recoveryOpen: true });
      return page(ctx, 'mfa', {
        layout: layoutFor(s, 'Use a recovery code'),
        csrf: csrfToken(csrfKey, d.uid),
        error,
        recoveryAction: url(d, '/recovery'),
        recoveryOpen: true,
        changeEmailAction: url(d, '/restart'),
        abortAction: url(d, '/abort'),
      }, status);
    }
    await throttle.recordAdmittedSuccess(s.realm.id, keys, gate);
    event(ctx, d, 'signin.success', 'recovery-code', { userId: user.id });
    if (secondFactor) return answerStep(ctx, d, user.id, 'redirect', () => steps.afterSecondFactor(ctx, d, user, { ...p, amr: [...p.amr, 'otp', 'mfa'] }));
    // a passkey-only user who lost their devices: signed in by the code, then led to a new passkey
    return answerStep(ctx, d, user.id, 'redirect', () => steps.afterFirstFactor(ctx, d, user, { ...p, userId: user.id, amr: ['otp'], recovered: true }));
  });

  /**
   * The start of a form post to a step that follows a verified first factor: the form read, its
   * interaction and CSRF token checked, and the progress and (enabled) user of a sign-in at `stage`.
   * Undefined once a refusal has been answered.
   */
  async function verifiedStepPost(ctx: Context, stage: Stage) {
    const s = served(ctx);
    const form = await readForm(ctx);
    const d = await interactionOf(ctx);
    if (!d || !(await checkedForm(ctx, csrfKey, d, form))) return undefined;
    const p = await progress.get(s.realm.id, d);
    const user = p?.userId && p.stage === stage ? await users.findById(s.realm.id, p.userId) : undefined;
    if (!p || !user || user.disabled) {
      await render(ctx, d, { stage: 'identify', amr: [] }, { error: 'Start by entering your email.', status: 400 });
      return undefined;
    }
    return { s, form, d, p, user };
  }

  /** The new password that replaces a temporary one (stage `password-change`, after every factor). */
  router.post('/interaction/:uid/password-change', async (ctx) => {
    const step = await verifiedStepPost(ctx, 'password-change');
    if (!step) return;
    const { s, form, d, p, user } = step;
    const password = form.new_password ?? '';
    if (!password) return render(ctx, d, p, { error: 'Enter the new password.', status: 400 });
    if (password !== (form.new_password_again ?? '')) return render(ctx, d, p, { error: 'The two passwords do not match. Type the same new password in both fields.', status: 400 });
    if (user.passwordChangeRequired) {
      try {
        await users.replaceTemporaryPassword(s.realm.id, user, password);
      } catch (err) {
        if (err instanceof LatchkeyError && err.status < 500) return render(ctx, d, p, { error: err.message, status: err.status });
        throw err;
      }
      await recordSecurityEvent(services.db, { realmId: s.realm.id, userId: user.id, type: 'signin.temporary_password_replaced', detail: {} });
    }
    // (already replaced, by this sign-in in another tab or by an operator: the sign-in simply goes on)
    return answerStep(ctx, d, user.id, 'redirect', () => steps.afterSecondFactor(ctx, d, { ...user, passwordChangeRequired: false }, p));
  });

  /** "I have confirmed it" (stage `verify-email`): the sign-in finishes once the address is confirmed. */
  router.post('/interaction/:uid/verify-email/continue', async (ctx) => {
    const step = await verifiedStepPost(ctx, 'verify-email');
    if (!step) return;
    const { d, p, user } = step;
    if (!user.emailVerified) return render(ctx, d, p, { error: 'Your email address is not confirmed yet. Open the link we sent you and confirm, then continue.', status: 400 });
    return answerStep(ctx, d, user.id, 'redirect', () => steps.finish(ctx, d, user.id, p.amr, p));
  });

  /** "Send the link again" (stage `verify-email`): at most one link a minute, as from the account page. */
  router.post('/interaction/:uid/verify-email/resend', async (ctx) => {
    const step = await verifiedStepPost(ctx, 'verify-email');
    if (!step) return;
    const { s, d, p, user } = step;
    services.emailVerification.send({ ...realmMail(s), user });
    return render(ctx, d, p, { notice: 'A new link is on its way, unless one was sent less than a minute ago. Check your inbox and spam folder.' });
  });

  router.post('/interaction/:uid/continue', async (ctx) => {
    const step = await verifiedStepPost(ctx, 'recovery-codes');
    if (!step) return;
    const { d, p, user } = step;
    return answerStep(ctx, d, user.id, 'redirect', () => steps.afterSecondFactor(ctx, d, user, p));
  });

  for (const [path, days] of [['/interaction/:uid/offer/skip', 'snooze'], ['/interaction/:uid/offer/never', 'never']] as const) {
    router.post(path, async (ctx) => {
      const s = served(ctx);
      const form = await readForm(ctx);
      const d = await interactionOf(ctx);
      if (!d || !(await checkedForm(ctx, csrfKey, d, form))) return;
      const p = await progress.get(s.realm.id, d);
      if (!p?.userId || p.stage !== 'passkey-offer') return render(ctx, d, { stage: 'identify', amr: [] }, { error: 'Start by entering your email.', status: 400 });
      if (!p.recovered) {
        const until = days === 'never' ? FAR_FUTURE : Date.now() + s.realm.settings.passkeys.offerSnoozeDays * 86_400_000;
        await users.snoozePasskeyOffer(s.realm.id, p.userId, until);
      }
      const userId = p.userId;
      return answerStep(ctx, d, userId, 'redirect', () => steps.finish(ctx, d, userId, p.amr));
    });
  }

}
