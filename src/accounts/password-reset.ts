import type { EmailLink } from '../email/links.js';
import { recordSecurityEvent } from '../mfa/security-events.js';
import { LatchkeyError, notFound } from '../errors.js';
import { brandOf, EmailLinkFlow, type RealmMail } from './email-link-flow.js';

/** Where a reset link leads, on the issuer the request came to. */
export const PASSWORD_RESET_PATH = '/account/password-reset';

export interface ResetRequest extends RealmMail {
  email: string;
  address: string;
}

/**
 * "Forgot your password?": a single-use link by email that lets the account's owner choose a new
 * password. Only accounts that have a password can reset it (a passkey-only account never gets one by
 * email: that would weaken it). The answer to a request never says whether the email has an account,
 * nor does the time it takes.
 */
export class PasswordResetService extends EmailLinkFlow {
  protected readonly purpose = 'password_reset';

  /**
   * Sends a reset link to `email` if it is an account of the realm with a password. Returns before
   * looking: the look-up, the link and the SMTP round trip happen after the answer, so neither the
   * answer nor its timing says whether the email has an account.
   */
  request(input: ResetRequest): void {
    if (!this.enabled) return;
    this.afterAnswer({ realm: input.realmId }, 'password reset email could not be sent', () => this.#send(input));
  }

  async #send(input: ResetRequest): Promise<void> {
    const user = await this.users.findByEmail(input.realmId, input.email);
    if (!user || user.disabled || !user.passwordHash) return;
    const token = await this.issueLink(input.realmId, user.id);
    if (!token) return;
    await recordSecurityEvent(this.db, { realmId: input.realmId, userId: user.id, type: 'password_reset_requested', detail: { address: input.address } });
    await this.mailer.send({
      to: user.email,
      brand: brandOf(input),
      subject: `Reset your ${input.realmName} password`,
      text: [
        `Someone asked to reset the password of your ${input.realmName} account (${user.email}).`,
        '',
        'To choose a new password, open this link:',
        `${input.issuer}${PASSWORD_RESET_PATH}/${token}`,
        '',
        `The link works once, for ${Math.round(this.ttlSeconds / 60)} minutes.`,
        'If you did not ask for this, ignore this email: your password has not changed.',
      ].join('\n'),
    });
    this.log.info({ realm: input.realmId, user: user.id }, 'password reset email sent');
  }

  /**
   * A reset link made for an operator to hand over (as Auth0's password change tickets), without email:
   * for an enabled user, at `issuer` (one of the realm's). It ends the user's oldest pending link when
   * three are pending, and is recorded as a security event; the link itself is only returned.
   */
  async createLink(realmId: string, userId: string, issuer: string, by: string): Promise<{ url: string; expiresAt: number }> {
    const user = await this.users.findById(realmId, userId);
    if (!user) throw notFound(`user "${userId}" in realm "${realmId}"`);
    if (user.disabled) throw new LatchkeyError('user_disabled', `user ${user.email} is disabled: enable it first`, 409);
    const expiresAt = Date.now() + this.ttlSeconds * 1000;
    const token = (await this.issueLink(realmId, user.id, { always: true }))!;
    await recordSecurityEvent(this.db, { realmId, userId: user.id, type: 'password_reset_link_created', detail: { by } });
    return { url: `${issuer}${PASSWORD_RESET_PATH}/${token}`, expiresAt };
  }

  /**
   * Sets the new password through the link: refused by the policy (throws, the link still works), or
   * done once (true), or the link was used or expired meanwhile (false). Success signs the account out
   * everywhere (whoever may have known the old password loses their sessions and refresh tokens), and
   * confirms the email address: the link reached its mailbox.
   */
  async complete(link: EmailLink, password: string, address: string): Promise<boolean> {
    const done = await this.users.resetPassword(link.realmId, link.user.id, password, () => this.links.consume(link));
    if (!done) return false;
    const signedOut = await this.users.signOutEverywhere(link.realmId, link.user.id);
    await recordSecurityEvent(this.db, { realmId: link.realmId, userId: link.user.id, type: 'password_reset', detail: { address, sessionsEnded: signedOut.sessions, grantsRevoked: signedOut.grants } });
    return true;
  }
}
