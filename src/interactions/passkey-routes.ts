import type Router from '@koa/router';
import { realmMail } from '../accounts/email-link-flow.js';
import type { Context } from 'koa';
import { LatchkeyError } from '../errors.js';
import { verifyPostedRegistration } from '../passkeys/posted-registration.js';
import { relyingParties, relyingParty } from '../passkeys/relying-party.js';
import { amrOf } from '../passkeys/service.js';
import type { Services } from '../server/services.js';
import { stepAnswerer } from './answer-step.js';
import { checkedJson, emitSignIn, interactionOf, served, type Details } from './kit.js';
import type { SignInSteps } from './next-step.js';
import type { ProgressStore } from './progress.js';

/** What a sign-in's WebAuthn challenges are bound to: the interaction they were issued for. */
export const passkeyBinding = (uid: string): string => `interaction:${uid}`;

type Mode = 'conditional' | 'button' | 'identified' | 'second-factor';
const MODES = new Set<Mode>(['conditional', 'button', 'identified', 'second-factor']);

/** The JSON endpoints the sign-in pages' passkey script talks to. */
export function passkeyRoutes(router: Router, services: Services, progress: ProgressStore, steps: SignInSteps): void {
  const { passkeys, users, csrfKey, events, recovery } = services;
  const bound = (d: Details) => passkeyBinding(d.uid);

  function json(ctx: Context, body: unknown): void {
    ctx.set('Cache-Control', 'no-store');
    ctx.body = body;
  }

  const answerStep = stepAnswerer(services);
  /** What follows a verified passkey, answered as `{ redirect }` for the page's script (src/interactions/answer-step.ts). */
  const answerNext = (ctx: Context, d: Details, accountId: string, step: () => Promise<string>) => answerStep(ctx, d, accountId, 'json', step);

  async function start(ctx: Context): Promise<{ d: Details; body: Record<string, unknown> }> {
    const d = await interactionOf(ctx);
    if (!d) throw new LatchkeyError('interaction_expired', 'This sign-in has expired. Start again from the application.', 400);
    const body = await checkedJson(ctx, csrfKey, d);
    if (d.prompt.name !== 'login') throw new LatchkeyError('wrong_step', 'This sign-in is already complete.', 400);
    return { d, body };
  }

  const emit = (ctx: Context, d: Details, type: 'signin.success' | 'signin.failure', method: 'passkey' | 'security-key', extra: Record<string, unknown>) =>
    emitSignIn(events, ctx, d, type, method, extra);

  router.post('/interaction/:uid/passkey/options', async (ctx) => {
    const { d, body } = await start(ctx);
    const s = served(ctx);
    const mode = (MODES.has(body.mode as Mode) ? body.mode : 'button') as Mode;
    // only these two modes depend on where the sign-in stands
    const p = mode === 'second-factor' || mode === 'identified' ? await progress.get(s.realm.id, d) : undefined;
    let userId: string | undefined;
    if (mode === 'second-factor') {
      if (!p?.userId || p.stage !== 'mfa') throw new LatchkeyError('wrong_step', 'Sign in with your password first.', 400);
      userId = p.userId;
    } else if (mode === 'identified' && p?.email) {
      userId = (await users.findByEmail(s.realm.id, p.email))?.id;
    }
    const request = (forUser: string | undefined) =>
      passkeys.authenticationOptions({
        realmId: s.realm.id,
        rp: relyingParty(s.realm, s.issuer, { relatedOrigins: body.relatedOrigins === true }),
        boundTo: bound(d),
        purpose: mode === 'second-factor' ? 'second-factor' : 'first-factor',
        userId: forUser,
      });
    let options;
    try {
      options = await request(userId);
    } catch (err) {
      // identified by a typed email: an account without a passkey here gets what an unknown email gets
      // (a usernameless request), so the answer does not tell whether the account exists
      if (mode !== 'identified' || (err as LatchkeyError).code !== 'no_credentials') throw err;
      options = await request(undefined);
    }
    json(ctx, options);
  });

  router.post('/interaction/:uid/passkey/verify', async (ctx) => {
    const { d, body } = await start(ctx);
    const s = served(ctx);
    const p = await progress.get(s.realm.id, d);
    const secondFactor = p?.stage === 'mfa' && Boolean(p.userId);
    const method = secondFactor ? 'security-key' : 'passkey';
    let verified;
    try {
      verified = await passkeys.verifyAuthentication({
        realmId: s.realm.id,
        rp: relyingParties(s.realm, s.issuer),
        boundTo: bound(d),
        purpose: secondFactor ? 'second-factor' : 'first-factor',
        response: body.response as any,
        expectedUserId: secondFactor ? p!.userId : undefined,
      });
    } catch (err) {
      emit(ctx, d, 'signin.failure', method, { reason: (err as LatchkeyError).code ?? 'passkey_failed' });
      throw err;
    }
    const user = await users.findById(s.realm.id, verified.credential.userId, ctx.req);
    if (!user || user.disabled) {
      emit(ctx, d, 'signin.failure', method, { reason: 'account_disabled' });
      throw new LatchkeyError('account_disabled', 'This account is disabled. Contact your administrator.', 401);
    }
    emit(ctx, d, 'signin.success', method, { userId: user.id });
    const factor = amrOf(verified.credential);
    if (secondFactor) {
      return answerNext(ctx, d, user.id, () => steps.afterSecondFactor(ctx, d, user, { ...p!, amr: [...p!.amr, factor, 'mfa'] }));
    }
    // a passkey with user verification is two factors in one: something you have, and a PIN or biometric
    const amr = verified.userVerified ? [factor, 'user', 'mfa'] : [factor, 'user'];
    await answerNext(ctx, d, user.id, () => steps.finish(ctx, d, user.id, amr));
  });

  /** Registration during sign-in: the passkey offer, a passkey after recovery, or a security key as required second factor. */
  router.post('/interaction/:uid/passkey/register/options', async (ctx) => {
    const { d, body: options } = await start(ctx);
    const s = served(ctx);
    const p = await progress.get(s.realm.id, d);
    if (!p?.userId || (p.stage !== 'passkey-offer' && p.stage !== 'mfa-enrol')) throw new LatchkeyError('wrong_step', 'Sign in before adding a passkey.', 400);
    const user = await users.findById(s.realm.id, p.userId);
    if (!user) throw new LatchkeyError('wrong_step', 'Sign in before adding a passkey.', 400);
    json(
      ctx,
      await passkeys.registrationOptions({
        realmId: s.realm.id,
        settings: s.realm.settings,
        rp: relyingParty(s.realm, s.issuer, { relatedOrigins: options.relatedOrigins === true }),
        user: { id: user.id, email: user.email, name: user.name },
        boundTo: bound(d),
        kind: p.stage === 'mfa-enrol' ? 'security-key' : 'passkey',
      }),
    );
  });

  router.post('/interaction/:uid/passkey/register/verify', async (ctx) => {
    const { d, body } = await start(ctx);
    const s = served(ctx);
    const p = await progress.get(s.realm.id, d);
    if (!p?.userId || (p.stage !== 'passkey-offer' && p.stage !== 'mfa-enrol')) throw new LatchkeyError('wrong_step', 'Sign in before adding a passkey.', 400);
    const user = await users.findById(s.realm.id, p.userId);
    if (!user) throw new LatchkeyError('wrong_step', 'Sign in before adding a passkey.', 400);
    const kind = p.stage === 'mfa-enrol' ? 'security-key' : 'passkey';
    const credential = await verifyPostedRegistration(passkeys, s, user, { response: body.response, name: body.name }, bound(d), kind);
    if (kind === 'security-key') {
      // enrolled as the required second factor: it was just used with user presence, so the sign-in is multi-factor
      await progress.put(s.realm.id, d, { ...p, stage: 'recovery-codes', amr: [...p.amr, amrOf(credential), 'mfa'] });
      return json(ctx, { redirect: `/interaction/${d.uid}` });
    }
    if (p.passwordlessSignup) {
      // the passwordless sign-up's sign-in: its passkey is made. The new account's only factor's recovery
      // codes are shown next, once. (With email configured, the sign-up code confirmed the address
      // already and no link goes out; the send does nothing then.)
      emit(ctx, d, 'signin.success', 'passkey', { userId: user.id, reason: 'signup' });
      services.emailVerification.send({ ...realmMail(s), user });
      await progress.put(s.realm.id, d, { ...p, passwordlessSignup: false, stage: 'recovery-codes', amr: [amrOf(credential), 'user', 'mfa'] });
      return json(ctx, { redirect: `/interaction/${d.uid}` });
    }
    // the account now has a second factor, so its password alone no longer signs it in (the passkey is
    // asked for after it: src/interactions/next-step.ts); without recovery codes, losing the device would
    // lock it out, so they come next, shown once, as with any first second factor
    if ((await recovery.remaining(s.realm.id, user.id)) === 0) {
      await progress.put(s.realm.id, d, { ...p, stage: 'recovery-codes' });
      return json(ctx, { redirect: `/interaction/${d.uid}` });
    }
    // a passkey registered with user verification: the sign-in completes
    await answerNext(ctx, d, user.id, () => steps.finish(ctx, d, user.id, p.amr));
  });
}
