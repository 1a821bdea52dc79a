import type { Db } from './knex.js';

/** What a link sent by email does. */
export type EmailLinkPurpose = 'password_reset' | 'verify_email' | 'change_email';

/** A pending link: the hash of the emailed token, what it does, for whose account, until when. */
export interface EmailLinkRow {
  tokenHash: string;
  purpose: EmailLinkPurpose;
  realmId: string;
  userId: string;
  createdAt: number;
  expiresAt: number;
  /** The address a `change_email` link confirms (null for the other purposes). */
  newEmail?: string | null;
}

const toRow = (r: any): EmailLinkRow => ({
  tokenHash: r.token_hash,
  purpose: r.purpose,
  realmId: r.realm_id,
  userId: r.user_id,
  createdAt: Number(r.created_at),
  expiresAt: Number(r.expires_at),
  newEmail: r.new_email ?? null,
});

/** Storage of links sent by email (table `email_links`). Rare writes: the query builder is fine. */
export const emailLinksRepo = {
  async insert(db: Db, row: EmailLinkRow): Promise<void> {
    await db('email_links').insert({
      token_hash: row.tokenHash,
      purpose: row.purpose,
      realm_id: row.realmId,
      user_id: row.userId,
      created_at: row.createdAt,
      expires_at: row.expiresAt,
      new_email: row.newEmail ?? null,
    });
  },

  /** The live link with this token hash and purpose in the realm, if any. */
  async findLive(db: Db, purpose: EmailLinkPurpose, realmId: string, tokenHash: string, now: number): Promise<EmailLinkRow | undefined> {
    const row = await db('email_links').where({ purpose, realm_id: realmId, token_hash: tokenHash }).andWhere('expires_at', '>', now).first();
    return row ? toRow(row) : undefined;
  },

  /** The user's live links of one purpose, newest first. */
  async listLiveForUser(db: Db, purpose: EmailLinkPurpose, realmId: string, userId: string, now: number): Promise<EmailLinkRow[]> {
    return (await db('email_links').where({ purpose, realm_id: realmId, user_id: userId }).andWhere('expires_at', '>', now).orderBy('created_at', 'desc')).map(toRow);
  },

  /**
   * Uses a link: deletes it if it is still live and still belongs to that user. Of two concurrent
   * uses, only the one whose delete counted gets true.
   */
  async consume(db: Db, link: Pick<EmailLinkRow, 'purpose' | 'realmId' | 'userId' | 'tokenHash'>, now: number): Promise<boolean> {
    const deleted = await db('email_links')
      .where({ purpose: link.purpose, realm_id: link.realmId, user_id: link.userId, token_hash: link.tokenHash })
      .andWhere('expires_at', '>', now)
      .delete();
    return deleted === 1;
  },

  /** Ends every pending link of one purpose of the user. */
  async removeForUser(db: Db, purpose: EmailLinkPurpose, realmId: string, userId: string): Promise<number> {
    return db('email_links').where({ purpose, realm_id: realmId, user_id: userId }).delete();
  },

  async removeOne(db: Db, tokenHash: string): Promise<void> {
    await db('email_links').where({ token_hash: tokenHash }).delete();
  },

  async purge(db: Db, now: number): Promise<number> {
    return db('email_links').where('expires_at', '<=', now).delete();
  },
};
