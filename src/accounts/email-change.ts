import type { UserRow } from '../db/users-repo.js';
import type { EmailLink } from '../email/links.js';
import { recordSecurityEvent } from '../mfa/security-events.js';
import { brandOf, EmailLinkFlow, linkLifetime, type RealmMail } from './email-link-flow.js';

/** Where a change confirmation link leads, on the issuer the account page was used at. */
export const CHANGE_EMAIL_PATH = '/account/change-email';

export interface EmailChangeRequest extends RealmMail {
  user: UserRow;
  newEmail: string;
  address: string;
}

/**
 * Changing the email address from the account page: a single-use link to the NEW address confirms the
 * change (the address then counts as confirmed), and the old address gets a notice. When the new address
 * belongs to another account, its owner gets a notice instead of a link, and the person asking sees the
 * same answer: the account page never tells which addresses have accounts. The mail goes after the answer.
 */
export class EmailChangeService extends EmailLinkFlow {
  protected readonly purpose = 'change_email';

  /** Sends, after the current request, the link (or the notice to another account's owner) and the notice to the old address. */
  request(input: EmailChangeRequest): void {
    if (!this.enabled) return;
    this.afterAnswer({ realm: input.realmId, user: input.user.id }, 'email change could not be sent', () => this.#send(input));
  }

  async #send(input: EmailChangeRequest): Promise<void> {
    const { realmId, realmName, issuer, user, newEmail, address } = input;
    // a link is stored either way (only ever sent to a free address): the one-a-minute limit per account
    // then holds for both, so the account page cannot be used to mail another account's owner at will
    const token = await this.issueLink(realmId, user.id, { newEmail });
    if (!token) return;
    const holder = await this.users.findByEmail(realmId, newEmail);
    await recordSecurityEvent(this.db, { realmId, userId: user.id, type: 'email_change_requested', detail: { address } });
    const brand = brandOf(input);
    if (holder && holder.id !== user.id) {
      await this.mailer.send({
        to: newEmail,
        brand,
        subject: `Someone tried to move a ${realmName} account to your address`,
        text: [
          `Someone asked to change the email address of a ${realmName} account to ${newEmail}.`,
          'You already have an account with this address, so nothing was changed.',
          '',
          `If it was you, sign in to that account instead: ${issuer}/account`,
          'If it was not you, ignore this email.',
        ].join('\n'),
      });
    } else {
      await this.mailer.send({
        to: newEmail,
        brand,
        subject: `Confirm your new email address for ${realmName}`,
        text: [
          `Confirm that ${newEmail} is the new email address of your ${realmName} account (now ${user.email}):`,
          `${issuer}${CHANGE_EMAIL_PATH}/${token}`,
          '',
          `The link works once, for ${linkLifetime(this.ttlSeconds)}. Your address changes only when you confirm.`,
          'If you did not ask for this, ignore this email.',
        ].join('\n'),
      });
    }
    await this.mailer.send({
      to: user.email,
      brand,
      subject: `Your ${realmName} email address is about to change`,
      text: [
        `Someone signed in to your ${realmName} account (${user.email}) asked to change its email address to ${newEmail}.`,
        'A confirmation link was sent to the new address; nothing changes until it is used.',
        '',
        `If it was not you, sign in, change your password and check your account: ${issuer}/account`,
      ].join('\n'),
    });
    this.log.info({ realm: realmId, user: user.id }, 'email change emails sent');
  }

  /**
   * Changes the address through the link, once: true when done, false when the link was used or expired
   * meanwhile; throws a conflict when the address has an account by now. Recorded as a security event.
   */
  async complete(link: EmailLink, address: string): Promise<boolean> {
    if (!link.newEmail) return false;
    if (!(await this.users.changeEmail(link.realmId, link.user.id, link.newEmail, () => this.links.consume(link)))) return false;
    await recordSecurityEvent(this.db, { realmId: link.realmId, userId: link.user.id, type: 'email_changed', detail: { from: link.user.email, to: link.newEmail, address } });
    this.log.info({ realm: link.realmId, user: link.user.id }, 'email address changed');
    return true;
  }
}
