import type { Db } from './knex.js';

/** A pending password reset: the hash of the emailed token, whose account it resets, until when. */
export interface PasswordResetRow {
  tokenHash: string;
  realmId: string;
  userId: string;
  createdAt: number;
  expiresAt: number;
}

const toRow = (r: any): PasswordResetRow => ({
  tokenHash: r.token_hash,
  realmId: r.realm_id,
  userId: r.user_id,
  createdAt: Number(r.created_at),
  expiresAt: Number(r.expires_at),
});

/** Storage of password reset links (table `password_resets`). Rare writes: the query builder is fine. */
export const passwordResetsRepo = {
  async insert(db: Db, row: PasswordResetRow): Promise<void> {
    await db('password_resets').insert({
      token_hash: row.tokenHash,
      realm_id: row.realmId,
      user_id: row.userId,
      created_at: row.createdAt,
      expires_at: row.expiresAt,
    });
  },

  /** The live reset with this token hash in the realm, if any. */
  async findLive(db: Db, realmId: string, tokenHash: string, now: number): Promise<PasswordResetRow | undefined> {
    const row = await db('password_resets').where({ realm_id: realmId, token_hash: tokenHash }).andWhere('expires_at', '>', now).first();
    return row ? toRow(row) : undefined;
  },

  /** The user's live resets, newest first. */
  async listLiveForUser(db: Db, realmId: string, userId: string, now: number): Promise<PasswordResetRow[]> {
    return (await db('password_resets').where({ realm_id: realmId, user_id: userId }).andWhere('expires_at', '>', now).orderBy('created_at', 'desc')).map(toRow);
  },

  /**
   * Uses a reset: deletes it if it is still live and still belongs to that user. Of two concurrent
   * uses, only the one whose delete counted gets true.
   */
  async consume(db: Db, realmId: string, userId: string, tokenHash: string, now: number): Promise<boolean> {
    const deleted = await db('password_resets').where({ realm_id: realmId, user_id: userId, token_hash: tokenHash }).andWhere('expires_at', '>', now).delete();
    return deleted === 1;
  },

  /** Ends every pending reset of the user (after a password change or a completed reset). */
  async removeForUser(db: Db, realmId: string, userId: string): Promise<number> {
    return db('password_resets').where({ realm_id: realmId, user_id: userId }).delete();
  },

  async removeOne(db: Db, tokenHash: string): Promise<void> {
    await db('password_resets').where({ token_hash: tokenHash }).delete();
  },

  async purge(db: Db, now: number): Promise<number> {
    return db('password_resets').where('expires_at', '<=', now).delete();
  },
};
