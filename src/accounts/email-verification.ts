import type { UserRow } from '../db/users-repo.js';
import type { EmailLink } from '../email/links.js';
import { recordSecurityEvent } from '../mfa/security-events.js';
import { brandOf, EmailLinkFlow, linkLifetime, type RealmMail } from './email-link-flow.js';

/** Where a confirmation link leads, on the issuer the account was used at. */
export const VERIFY_EMAIL_PATH = '/account/verify-email';

/**
 * Confirming an email address (`email_verified` in ID tokens and userinfo): a single-use link to the
 * address, sent after a self-service sign-up and from the account page. Opening the link shows a
 * button; the post confirms (link scanners of mail services open links, they do not post forms).
 */
export class EmailVerificationService extends EmailLinkFlow {
  protected readonly purpose = 'verify_email';

  /**
   * Sends a confirmation link to the user's address, after the current request (the SMTP round trip
   * never holds a page). Nothing for a confirmed address, or within a minute of the last link.
   */
  send(input: RealmMail & { user: UserRow }): void {
    if (!this.enabled || input.user.emailVerified) return;
    this.afterAnswer({ realm: input.realmId, user: input.user.id }, 'email confirmation could not be sent', () => this.#send(input));
  }

  async #send(input: RealmMail & { user: UserRow }): Promise<void> {
    const { realmId, realmName, issuer, user } = input;
    const token = await this.issueLink(realmId, user.id);
    if (!token) return;
    await this.mailer.send({
      to: user.email,
      brand: brandOf(input),
      subject: `Confirm your email address for ${realmName}`,
      text: [
        `Confirm that ${user.email} is the email address of your ${realmName} account:`,
        `${issuer}${VERIFY_EMAIL_PATH}/${token}`,
        '',
        `The link works once, for ${linkLifetime(this.ttlSeconds)}.`,
        'If you did not create this account, ignore this email.',
      ].join('\n'),
    });
    this.log.info({ realm: realmId, user: user.id }, 'email confirmation sent');
  }

  /** Confirms the address through the link, once; false when the link was used or expired meanwhile. */
  async complete(link: EmailLink, address: string): Promise<boolean> {
    if (!(await this.users.confirmEmail(link.realmId, link.user.id, () => this.links.consume(link)))) return false;
    await recordSecurityEvent(this.db, { realmId: link.realmId, userId: link.user.id, type: 'email_verified', detail: { address } });
    return true;
  }
}
