import type { Db } from './knex.js';

/** Where a sign-in stands between pages, keyed by the interaction it belongs to. */
export const progressRepo = {
  async get(db: Db, realmId: string, uid: string, now: number): Promise<Record<string, unknown> | undefined> {
    const row = await db('signin_progress').where({ realm_id: realmId, uid }).andWhere('expires_at', '>', now).first();
    return row ? JSON.parse(row.data) : undefined;
  },
  async put(db: Db, realmId: string, uid: string, data: Record<string, unknown>, expiresAt: number): Promise<void> {
    await db('signin_progress')
      .insert({ realm_id: realmId, uid, data: JSON.stringify(data), expires_at: expiresAt })
      .onConflict(['realm_id', 'uid'])
      .merge();
  },
  /** Reads and deletes in one go: of two concurrent takers, only the one whose delete counted gets the data. */
  async take(db: Db, realmId: string, uid: string, now: number): Promise<Record<string, unknown> | undefined> {
    const row = await db('signin_progress').where({ realm_id: realmId, uid }).andWhere('expires_at', '>', now).first();
    if (!row) return undefined;
    const deleted = await db('signin_progress').where({ realm_id: realmId, uid, data: row.data }).delete();
    return deleted === 1 ? JSON.parse(row.data) : undefined;
  },
  async remove(db: Db, realmId: string, uid: string): Promise<void> {
    await db('signin_progress').where({ realm_id: realmId, uid }).delete();
  },
  async purge(db: Db, now: number): Promise<number> {
    return db('signin_progress').where('expires_at', '<=', now).delete();
  },
};
