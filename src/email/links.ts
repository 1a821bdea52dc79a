import { createHash } from 'node:crypto';
import type { UserService } from '../accounts/user-service.js';
import { randomToken } from '../crypto/random.js';
import { emailLinksRepo, type EmailLinkPurpose } from '../db/email-links-repo.js';
import type { Db } from '../db/knex.js';
import type { UserRow } from '../db/users-repo.js';

/** A user asks again within this long: no second email (the first one is on its way). */
const RESEND_AFTER_MS = 60_000;
/** At most this many links of one purpose work at once for a user; a new one ends the oldest. */
const MAX_LIVE = 3;
/** A token as `randomToken(32)` makes it: 43 base64url characters. */
const TOKEN = /^[A-Za-z0-9_-]{43}$/;

const hashOf = (token: string) => createHash('sha256').update(token).digest('hex');

/** A live link, opened: what it does, for whom. */
export interface EmailLink {
  purpose: EmailLinkPurpose;
  realmId: string;
  user: UserRow;
  tokenHash: string;
  /** The address a `change_email` link confirms. */
  newEmail?: string;
}

/**
 * Single-use links sent by email (password resets, address confirmations): a random 256-bit token in
 * the link, only its SHA-256 in the database, an expiry, at most one new link a minute per user and
 * purpose, and use by a conditional delete, so of two racing uses one wins.
 */
export class EmailLinks {
  constructor(
    private readonly db: Db,
    private readonly users: UserService,
  ) {}

  /**
   * A new link's token for the user, or undefined when one was sent less than a minute ago (unless
   * `always`: an operator asked for the link).
   */
  async issue(purpose: EmailLinkPurpose, realmId: string, userId: string, ttlSeconds: number, options: { always?: boolean; newEmail?: string } = {}): Promise<string | undefined> {
    const now = Date.now();
    const live = await emailLinksRepo.listLiveForUser(this.db, purpose, realmId, userId, now);
    if (!options.always && live[0] && now - live[0].createdAt < RESEND_AFTER_MS) return undefined;
    for (const old of live.slice(MAX_LIVE - 1)) await emailLinksRepo.removeOne(this.db, old.tokenHash);
    const token = randomToken(32);
    await emailLinksRepo.insert(this.db, { tokenHash: hashOf(token), purpose, realmId, userId, createdAt: now, expiresAt: now + ttlSeconds * 1000, newEmail: options.newEmail ?? null });
    return token;
  }

  /** The live link with this token, for an enabled account of the realm. Opening it changes nothing. */
  async find(purpose: EmailLinkPurpose, realmId: string, token: string): Promise<EmailLink | undefined> {
    if (!TOKEN.test(token)) return undefined;
    const tokenHash = hashOf(token);
    const row = await emailLinksRepo.findLive(this.db, purpose, realmId, tokenHash, Date.now());
    if (!row) return undefined;
    const user = await this.users.findById(realmId, row.userId);
    if (!user || user.disabled) return undefined;
    return { purpose, realmId, user, tokenHash, ...(row.newEmail ? { newEmail: row.newEmail } : {}) };
  }

  /** Uses the link; false when it was used or expired meanwhile. */
  consume(link: EmailLink): Promise<boolean> {
    return emailLinksRepo.consume(this.db, { purpose: link.purpose, realmId: link.realmId, userId: link.user.id, tokenHash: link.tokenHash }, Date.now());
  }
}
