import type { Logger } from 'pino';
import type { Db } from '../db/knex.js';
import type { UserRow } from '../db/users-repo.js';
import type { EmailLink, EmailLinks } from '../email/links.js';
import type { Mailer } from '../email/mailer.js';
import { recordSecurityEvent } from '../mfa/security-events.js';
import type { UserService } from './user-service.js';

/** Where a confirmation link leads, on the issuer the account was used at. */
export const VERIFY_EMAIL_PATH = '/account/verify-email';

/**
 * Confirming an email address (`email_verified` in ID tokens and userinfo): a single-use link to the
 * address, sent after a self-service sign-up and from the account page. Opening the link shows a
 * button; the post confirms (link scanners of mail services open links, they do not post forms).
 */
export class EmailVerificationService {
  constructor(
    private readonly db: Db,
    private readonly users: UserService,
    private readonly links: EmailLinks,
    private readonly mailer: Mailer,
    private readonly log: Logger,
    private readonly ttlSeconds: number,
  ) {}

  get enabled(): boolean {
    return this.mailer.enabled;
  }

  /**
   * Sends a confirmation link to the user's address, after the current request (the SMTP round trip
   * never holds a page). Nothing for a confirmed address, or within a minute of the last link.
   */
  send(input: { realmId: string; realmName: string; realmColor?: string; issuer: string; user: UserRow }): void {
    if (!this.enabled || input.user.emailVerified) return;
    setImmediate(() => {
      this.#send(input).catch((err: Error) => this.log.error({ realm: input.realmId, user: input.user.id, error: err.message }, 'email confirmation could not be sent'));
    });
  }

  async #send({ realmId, realmName, realmColor, issuer, user }: { realmId: string; realmName: string; realmColor?: string; issuer: string; user: UserRow }): Promise<void> {
    const token = await this.links.issue('verify_email', realmId, user.id, this.ttlSeconds);
    if (!token) return;
    const hours = Math.round(this.ttlSeconds / 3600);
    await this.mailer.send({
      to: user.email,
      brand: { name: realmName, primaryColor: realmColor },
      subject: `Confirm your email address for ${realmName}`,
      text: [
        `Confirm that ${user.email} is the email address of your ${realmName} account:`,
        `${issuer}${VERIFY_EMAIL_PATH}/${token}`,
        '',
        `The link works once, for ${hours >= 1 ? `${hours} hour${hours === 1 ? '' : 's'}` : `${Math.round(this.ttlSeconds / 60)} minutes`}.`,
        'If you did not create this account, ignore this email.',
      ].join('\n'),
    });
    this.log.info({ realm: realmId, user: user.id }, 'email confirmation sent');
  }

  find(realmId: string, token: string): Promise<EmailLink | undefined> {
    return this.links.find('verify_email', realmId, token);
  }

  /** Confirms the address through the link, once; false when the link was used or expired meanwhile. */
  async complete(link: EmailLink, address: string): Promise<boolean> {
    if (!(await this.users.confirmEmail(link.realmId, link.user.id, () => this.links.consume(link)))) return false;
    await recordSecurityEvent(this.db, { realmId: link.realmId, userId: link.user.id, type: 'email_verified', detail: { address } });
    return true;
  }
}
