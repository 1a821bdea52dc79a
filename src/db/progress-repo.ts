import { deleteInBatches } from './batched-delete.js';
import type { Db } from './knex.js';
import { queryFirst, runWrite, sql } from './statements.js';

const GET = sql('select data from signin_progress where realm_id = ? and uid = ? and expires_at > ? limit 1');
const PUT = sql(`
  insert into signin_progress (realm_id, uid, data, expires_at) values (?, ?, ?, ?)
  on conflict (realm_id, uid) do update set data = excluded.data, expires_at = excluded.expires_at`);
const REMOVE = sql('delete from signin_progress where realm_id = ? and uid = ?');

/** Where a sign-in stands between pages, keyed by the interaction it belongs to. */
export const progressRepo = {
  async get(db: Db, realmId: string, uid: string, now: number): Promise<Record<string, unknown> | undefined> {
    const row = await queryFirst(db, GET, [realmId, uid, now]);
    return row ? JSON.parse(row.data) : undefined;
  },
  async put(db: Db, realmId: string, uid: string, data: Record<string, unknown>, expiresAt: number): Promise<void> {
    await runWrite(db, PUT, [realmId, uid, JSON.stringify(data), expiresAt]);
  },
  /** Reads and deletes in one go: of two concurrent takers, only the one whose delete counted gets the data. */
  async take(db: Db, realmId: string, uid: string, now: number): Promise<Record<string, unknown> | undefined> {
    const row = await db('signin_progress').where({ realm_id: realmId, uid }).andWhere('expires_at', '>', now).first();
    if (!row) return undefined;
    const deleted = await db('signin_progress').where({ realm_id: realmId, uid, data: row.data }).delete();
    return deleted === 1 ? JSON.parse(row.data) : undefined;
  },
  async remove(db: Db, realmId: string, uid: string): Promise<void> {
    await runWrite(db, REMOVE, [realmId, uid]);
  },
  async purge(db: Db, now: number): Promise<number> {
    return deleteInBatches(db, 'signin_progress', ['realm_id', 'uid'], (q) => q.where('expires_at', '<=', now));
  },
};
