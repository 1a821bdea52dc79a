import type { Context } from 'koa';
import type { UserRow } from '../db/users-repo.js';
import type { SignInEvent } from '../events/bus.js';
import { relyingParties } from '../passkeys/relying-party.js';
import type { Services } from '../server/services.js';
import { realmMail } from '../accounts/email-link-flow.js';
import { acrFor, wantsMultiFactor } from './acr.js';
import { resultUrl, served, type Details } from './kit.js';
import type { Progress, ProgressStore } from './progress.js';
import type { TenantResolver } from './tenant-resolution.js';

export type SignInMethod = SignInEvent['method'];

export interface Factors {
  totp: boolean;
  keys: number;
  passkeys: number;
}

/** Decides what follows a verified factor, and completes the sign-in when nothing does. */
export class SignInSteps {
  constructor(
    private readonly services: Services,
    private readonly progress: ProgressStore,
    private readonly tenants: TenantResolver,
  ) {}

  /**
   * Second factors this user can present on this issuer. Asked up to three times while one request
   * decides the next step: read once per request (a factor enrolled in this request is read afresh,
   * because enrolment ends its request with a redirect).
   */
  async factors(ctx: Context, userId: string): Promise<Factors> {
    const memo = ctx.state.factors as { userId: string; factors: Promise<Factors> } | undefined;
    if (memo?.userId === userId) return memo.factors;
    const s = served(ctx);
    // the RP IDs ceremonies on this issuer may use: its own domain, and with related origins the realm's
    // primary domain (a credential made for it works here in browsers with Related Origin Requests)
    const rpIds = new Set(relyingParties(s.realm, s.issuer).map((rp) => rp.rpId));
    const factors = Promise.all([this.services.totp.isEnrolled(s.realm.id, userId), this.services.passkeys.credentials(s.realm.id, userId)]).then(([totp, all]) => {
      const credentials = all.filter((c) => rpIds.has(c.rpId));
      return { totp, keys: credentials.length, passkeys: credentials.filter((c) => c.discoverable).length };
    });
    ctx.state.factors = { userId, factors };
    return factors;
  }

  /**
   * After a password (or a recovery code): the realm's MFA policy decides between a second factor,
   * enrolment of one, the passkey offer, or the end of the sign-in.
   */
  async afterFirstFactor(ctx: Context, d: Details, user: UserRow, progress: Progress): Promise<string> {
    const s = served(ctx);
    const policy = s.realm.settings.mfa;
    const f = await this.factors(ctx, user.id);
    const next: Progress = { ...progress, userId: user.id, email: user.email };
    // a client asking for multi-factor (acr_values) gets it whatever the realm's policy, as a step-up would
    const asked = wantsMultiFactor(d.params.acr_values);
    if (progress.recovered) return this.#go(ctx, d, { ...next, stage: 'passkey-offer' });
    if ((policy !== 'off' || asked) && !progress.amr.includes('mfa') && (f.totp || f.keys)) return this.#go(ctx, d, { ...next, stage: 'mfa' });
    if ((policy === 'required' || asked) && !progress.amr.includes('mfa')) return this.#go(ctx, d, { ...next, stage: 'mfa-enrol' });
    return this.afterSecondFactor(ctx, d, user, next);
  }

  /**
   * Everything verified: a temporary password the user just signed in with is replaced first; then a
   * passkey is offered when the user has none here (and did not snooze it); else the sign-in finishes.
   */
  async afterSecondFactor(ctx: Context, d: Details, user: UserRow, progress: Progress): Promise<string> {
    const s = served(ctx);
    if (user.passwordChangeRequired && progress.amr.includes('pwd') && !progress.stepUp) {
      return this.#go(ctx, d, { ...progress, userId: user.id, email: user.email, stage: 'password-change' });
    }
    const offer = s.realm.settings.passkeys.offerAfterPassword && !progress.stepUp && progress.amr.includes('pwd');
    if (offer && !(user.passkeyOfferSnoozedUntil && user.passkeyOfferSnoozedUntil > Date.now())) {
      const f = await this.factors(ctx, user.id);
      if (!f.passkeys) return this.#go(ctx, d, { ...progress, userId: user.id, stage: 'passkey-offer' });
    }
    return this.finish(ctx, d, user.id, progress.amr, progress);
  }

  /**
   * Ends the sign-in: node-oidc-provider gets the account, the methods used and the level reached,
   * and `tenant` (the tenant the user signed in for, or null) for the grant (see src/tenants/grant-tenant.ts).
   * A member of several tenants who has not chosen one gets the tenant picker first.
   */
  async finish(ctx: Context, d: Details, accountId: string, amr: string[], current?: Progress): Promise<string> {
    const s = served(ctx);
    const methods = [...new Set(amr)];
    // the stored progress, with what the caller knows that is not stored yet (the connection used, say)
    const stored = await this.progress.get(s.realm.id, d);
    const p = current ? { ...stored, ...current, tenantId: current.tenantId ?? stored?.tenantId } : stored;
    // a realm that requires a confirmed address: a link goes out, and the sign-in waits for it (a step-up
    // of a live session too: that session began before the rule, or with an address confirmed since)
    if (s.realm.settings.requireVerifiedEmail) {
      const user = await this.services.users.findById(s.realm.id, accountId);
      if (user && !user.emailVerified) {
        this.services.emailVerification.send({ ...realmMail(s), user });
        return this.#go(ctx, d, { ...p, stage: 'verify-email', userId: accountId, email: user.email, amr: methods });
      }
    }
    const tenant = await this.tenants.atFinish(ctx, d, accountId, methods, p);
    if (tenant.kind === 'pick') return this.#go(ctx, d, { stage: 'tenant-pick', userId: accountId, email: p?.email, amr: methods, tenantChoices: tenant.choices });
    await this.progress.clear(s.realm.id, d);
    if (tenant.kind === 'refuse') return resultUrl(ctx, d, { error: 'access_denied', error_description: tenant.description });
    // an upstream identity waiting for this account's proof is linked now (and forgotten otherwise);
    // it waits only in a sign-in that a connection's callback sent to the account's own step (`linking`)
    if (p?.linking) await this.services.linking.completeProof(s.realm.id, d.uid, accountId);
    return resultUrl(ctx, d, { login: { accountId, amr: methods, acr: acrFor(methods, d.params.acr_values), remember: true }, tenant: tenant.tenantId });
  }

  async #go(ctx: Context, d: Details, progress: Progress): Promise<string> {
    await this.progress.put(served(ctx).realm.id, d, progress);
    return `/interaction/${d.uid}`;
  }
}
