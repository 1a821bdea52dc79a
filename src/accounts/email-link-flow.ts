import type { Logger } from 'pino';
import type { EmailLinkPurpose } from '../db/email-links-repo.js';
import type { Db } from '../db/knex.js';
import type { EmailLink, EmailLinks } from '../email/links.js';
import type { EmailBrand } from '../email/html.js';
import type { Mailer } from '../email/mailer.js';
import type { Realm } from '../realms/service.js';
import type { UserService } from './user-service.js';

/** The realm an email goes out for, and the issuer (the one the request came to) its links lead to. */
export interface RealmMail {
  realmId: string;
  realmName: string;
  /** The realm's primary colour, for the HTML part. */
  realmColor?: string;
  issuer: string;
}

/** What the emails of the realm served at `issuer` need: its id, display name and primary colour. */
export const realmMail = ({ realm, issuer }: { realm: Realm; issuer: string }): RealmMail => ({
  realmId: realm.id,
  realmName: realm.displayName,
  realmColor: realm.settings.branding?.primaryColor,
  issuer,
});

/** The HTML part's branding: the realm's name and colour. */
export const brandOf = (mail: RealmMail): EmailBrand => ({ name: mail.realmName, primaryColor: mail.realmColor });

/**
 * Runs `work` (the look-up and the mail) after the current request, so that neither the answer nor its
 * timing depends on what it finds (whether the address has an account) or on the SMTP round trip. A
 * failure is logged with `fields` and the error's message only: never a token, code or address.
 */
export const afterAnswer = (log: Logger, fields: Record<string, string>, message: string, work: () => Promise<void>): void => {
  setImmediate(() => {
    work().catch((err: Error) => log.error({ ...fields, error: err.message }, message));
  });
};

/** How long a link works, as an email says it: in hours from an hour on, else in minutes. */
export const linkLifetime = (ttlSeconds: number): string => {
  const hours = Math.round(ttlSeconds / 3600);
  return hours >= 1 ? `${hours} hour${hours === 1 ? '' : 's'}` : `${Math.round(ttlSeconds / 60)} minutes`;
};

/**
 * What the flows that email a single-use link share (password reset, address confirmation, address
 * change): the services they need, a link of their one purpose, and the sending after the answer.
 */
export abstract class EmailLinkFlow {
  /** What this flow's links do. */
  protected abstract readonly purpose: EmailLinkPurpose;

  constructor(
    protected readonly db: Db,
    protected readonly users: UserService,
    protected readonly links: EmailLinks,
    protected readonly mailer: Mailer,
    protected readonly log: Logger,
    protected readonly ttlSeconds: number,
  ) {}

  get enabled(): boolean {
    return this.mailer.enabled;
  }

  /** The account a link of this flow is for, while the link is unused and unexpired. */
  find(realmId: string, token: string): Promise<EmailLink | undefined> {
    return this.links.find(this.purpose, realmId, token);
  }

  /** A new link's token for the user, or undefined when one was sent less than a minute ago (unless `always`). */
  protected issueLink(realmId: string, userId: string, options?: { always?: boolean; newEmail?: string }): Promise<string | undefined> {
    return this.links.issue(this.purpose, realmId, userId, this.ttlSeconds, options);
  }

  /** Runs `work` after the current request, logging a failure as `message` with `fields` (see `afterAnswer`). */
  protected afterAnswer(fields: Record<string, string>, message: string, work: () => Promise<void>): void {
    afterAnswer(this.log, fields, message, work);
  }
}
