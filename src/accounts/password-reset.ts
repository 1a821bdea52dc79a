import { createHash } from 'node:crypto';
import type { Logger } from 'pino';
import { passwordResetsRepo } from '../db/password-resets-repo.js';
import type { Db } from '../db/knex.js';
import type { UserRow } from '../db/users-repo.js';
import { randomToken } from '../crypto/random.js';
import type { Mailer } from '../email/mailer.js';
import { recordSecurityEvent } from '../mfa/security-events.js';
import type { UserService } from './user-service.js';

/** Where a reset link leads, on the issuer the request came to. */
export const PASSWORD_RESET_PATH = '/account/password-reset';

/** A user asks again within this long: no second email (the first one is on its way). */
const RESEND_AFTER_MS = 60_000;
/** At most this many links of one user work at once; a new one ends the oldest. */
const MAX_LIVE = 3;

const hashOf = (token: string) => createHash('sha256').update(token).digest('hex');
/** A token as `randomToken(32)` makes it: 43 base64url characters. */
const TOKEN = /^[A-Za-z0-9_-]{43}$/;

export interface ResetLink {
  user: UserRow;
  tokenHash: string;
}

/**
 * "Forgot your password?": a single-use link by email that lets the account's owner choose a new
 * password. Only accounts that have a password can reset it (a passkey-only account never gets one by
 * email: that would weaken it). The answer to a request never says whether the email has an account,
 * and the email goes out after the answer, so the time taken does not say it either.
 */
export class PasswordResetService {
  constructor(
    private readonly db: Db,
    private readonly users: UserService,
    private readonly mailer: Mailer,
    private readonly log: Logger,
    private readonly ttlSeconds: number,
  ) {}

  get enabled(): boolean {
    return this.mailer.enabled;
  }

  /**
   * Sends a reset link to `email` if it is an account of the realm with a password. Returns before
   * looking: the look-up, the link and the SMTP round trip happen after the answer, so neither the
   * answer nor its timing says whether the email has an account.
   */
  request(input: { realmId: string; realmName: string; issuer: string; email: string; address: string }): void {
    if (!this.enabled) return;
    setImmediate(() => {
      this.#send(input).catch((err: Error) => this.log.error({ realm: input.realmId, error: err.message }, 'password reset email could not be sent'));
    });
  }

  async #send(input: { realmId: string; realmName: string; issuer: string; email: string; address: string }): Promise<void> {
    const user = await this.users.findByEmail(input.realmId, input.email);
    if (!user || user.disabled || !user.passwordHash) return;
    const now = Date.now();
    const live = await passwordResetsRepo.listLiveForUser(this.db, input.realmId, user.id, now);
    if (live[0] && now - live[0].createdAt < RESEND_AFTER_MS) return;
    for (const old of live.slice(MAX_LIVE - 1)) await passwordResetsRepo.removeOne(this.db, old.tokenHash);
    const token = randomToken(32);
    await passwordResetsRepo.insert(this.db, { tokenHash: hashOf(token), realmId: input.realmId, userId: user.id, createdAt: now, expiresAt: now + this.ttlSeconds * 1000 });
    await recordSecurityEvent(this.db, { realmId: input.realmId, userId: user.id, type: 'password_reset_requested', detail: { address: input.address } });
    const minutes = Math.round(this.ttlSeconds / 60);
    await this.mailer.send({
      to: user.email,
      subject: `Reset your ${input.realmName} password`,
      text: [
        `Someone asked to reset the password of your ${input.realmName} account (${user.email}).`,
        '',
        'To choose a new password, open this link:',
        `${input.issuer}${PASSWORD_RESET_PATH}/${token}`,
        '',
        `The link works once, for ${minutes} minutes.`,
        'If you did not ask for this, ignore this email: your password has not changed.',
      ].join('\n'),
    });
    this.log.info({ realm: input.realmId, user: user.id }, 'password reset email sent');
  }

  /** The account a link from an email resets, while the link is unused and unexpired. */
  async find(realmId: string, token: string): Promise<ResetLink | undefined> {
    if (!TOKEN.test(token)) return undefined;
    const tokenHash = hashOf(token);
    const row = await passwordResetsRepo.findLive(this.db, realmId, tokenHash, Date.now());
    if (!row) return undefined;
    const user = await this.users.findById(realmId, row.userId);
    if (!user || user.disabled) return undefined;
    return { user, tokenHash };
  }

  /**
   * Sets the new password through the link: refused by the policy (throws, the link still works), or
   * done once (true), or the link was used or expired meanwhile (false). Success signs the account out
   * everywhere: whoever may have known the old password loses their sessions and refresh tokens.
   */
  async complete(realmId: string, link: ResetLink, password: string, address: string): Promise<boolean> {
    const done = await this.users.resetPassword(realmId, link.user.id, password, () => passwordResetsRepo.consume(this.db, realmId, link.user.id, link.tokenHash, Date.now()));
    if (!done) return false;
    const signedOut = await this.users.signOutEverywhere(realmId, link.user.id);
    await recordSecurityEvent(this.db, { realmId, userId: link.user.id, type: 'password_reset', detail: { address, sessionsEnded: signedOut.sessions, grantsRevoked: signedOut.grants } });
    return true;
  }
}
