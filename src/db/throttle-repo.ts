import type { Db } from './knex.js';
import { queryAll, runWrite, sql } from './statements.js';

const FIND_ONE = sql('select * from login_throttle where realm_id = ? and key = ?');
const FIND_TWO = sql('select * from login_throttle where realm_id = ? and key in (?, ?)');
const TAKE_BACK = sql('update login_throttle set failures = failures - 1 where realm_id = ? and key = ? and failures > 0');
const REMOVE = sql('delete from login_throttle where realm_id = ? and key = ?');

/** Failure bookkeeping for one throttling key ("account:<sha256>" or "ip:<address>") of a realm. */
export interface ThrottleRow {
  key: string;
  failures: number;
  /** Epoch ms of the latest failure; 0 when none is recorded. */
  lastFailureAt: number;
  /** Epoch ms until which sign-in is refused; 0 when never locked. */
  lockedUntil: number;
}

export type ThrottleState = Omit<ThrottleRow, 'key'>;

const toRow = (r: any): ThrottleRow => ({
  key: r.key,
  failures: Number(r.failures),
  lastFailureAt: Number(r.last_failure_at),
  lockedUntil: Number(r.locked_until),
});

/** Storage of sign-in failure counters (table `login_throttle`). */
export const throttleRepo = {
  async find(db: Db, realmId: string, keys: string[]): Promise<ThrottleRow[]> {
    if (keys.length === 0) return [];
    // one or two keys (the account and the address) on every sign-in: prepared statements
    if (keys.length === 1) return (await queryAll(db, FIND_ONE, [realmId, keys[0]!])).map(toRow);
    if (keys.length === 2) return (await queryAll(db, FIND_TWO, [realmId, keys[0]!, keys[1]!])).map(toRow);
    return (await db('login_throttle').where({ realm_id: realmId }).whereIn('key', keys)).map(toRow);
  },

  /**
   * Replaces the state of each key with `next(current)` in one transaction, each row locked from
   * before it is read until commit, so concurrent updates of the same key apply one after another.
   * A key without a row is presented as `{ failures: 0, lastFailureAt: 0, lockedUntil: 0 }`.
   */
  async update(db: Db, realmId: string, keys: string[], next: (current: ThrottleRow) => ThrottleState): Promise<ThrottleRow[]> {
    return (await throttleRepo.updateTogether(db, realmId, keys, (rows) => rows.map(next))) ?? [];
  },

  /**
   * `update` for a decision over all the keys at once: every row is locked and read before `next` sees
   * them (in key order), and `next` returns their new states in that order, or undefined to leave them
   * as they are (then undefined is returned).
   */
  async updateTogether(db: Db, realmId: string, keys: string[], next: (current: ThrottleRow[]) => ThrottleState[] | undefined): Promise<ThrottleRow[] | undefined> {
    // A fixed lock order keeps two transactions touching the same pair of keys from deadlocking.
    const ordered = [...new Set(keys)].sort();
    return db.transaction(async (trx) => {
      const current: ThrottleRow[] = [];
      for (const key of ordered) {
        // Writing first takes the row lock (PostgreSQL) or the write lock (SQLite) before the read,
        // and creates the row if it is missing; the no-op merge leaves an existing row unchanged.
        await trx('login_throttle')
          .insert({ realm_id: realmId, key, failures: 0, last_failure_at: 0, locked_until: 0 })
          .onConflict(['realm_id', 'key'])
          .merge({ failures: trx.raw('??', ['login_throttle.failures']) });
        current.push(toRow(await trx('login_throttle').where({ realm_id: realmId, key }).first()));
      }
      const states = next(current);
      if (!states) return undefined;
      const written: ThrottleRow[] = [];
      for (const [i, row] of current.entries()) {
        const state = states[i]!;
        await trx('login_throttle')
          .where({ realm_id: realmId, key: row.key })
          .update({ failures: state.failures, last_failure_at: state.lastFailureAt, locked_until: state.lockedUntil });
        written.push({ key: row.key, ...state });
      }
      return written;
    });
  },

  /** Takes one failure off a key's count (not below zero); its lock, if any, stays. */
  async takeBack(db: Db, realmId: string, key: string): Promise<void> {
    await runWrite(db, TAKE_BACK, [realmId, key]);
  },

  async remove(db: Db, realmId: string, key: string): Promise<void> {
    await runWrite(db, REMOVE, [realmId, key]);
  },

  /** Deletes rows whose last failure is at or before `lastFailureBy` and which are not locked at `now`. */
  async purge(db: Db, lastFailureBy: number, now: number): Promise<number> {
    return db('login_throttle').where('last_failure_at', '<=', lastFailureBy).andWhere('locked_until', '<=', now).delete();
  },
};
