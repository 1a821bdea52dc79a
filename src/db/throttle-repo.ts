import type { Db } from './knex.js';
import { queryAll, runWrite, sql } from './statements.js';

const FIND_ONE = sql('select * from login_throttle where realm_id = ? and key = ?');
const FIND_TWO = sql('select * from login_throttle where realm_id = ? and key in (?, ?)');
// one failure off the count; the lock goes back to what it was unless something has changed it since
const TAKE_BACK = sql(
  'update login_throttle set failures = failures - 1, locked_until = case when locked_until = ? then ? else locked_until end where realm_id = ? and key = ? and failures > 0',
);
const REMOVE = sql('delete from login_throttle where realm_id = ? and key = ?');
const RELEASE = sql('delete from login_throttle_reservations where id = ?');
const REMOVE_EMPTY = sql('delete from login_throttle where realm_id = ? and key = ? and failures = 0 and locked_until <= ?');

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

/** A key's counters with the number of attempts reserved against it and not yet settled. */
export interface ReservableRow extends ThrottleRow {
  reserved: number;
}

/** An attempt to reserve: its id, the clock, and how long it counts if it is never settled. */
export interface ReservationSpec {
  id: string;
  /** Read once the rows are locked, so that a wait for the lock does not age the decision. */
  clock: () => number;
  ttlMs: number;
}

const toRow = (r: any): ThrottleRow => ({
  key: r.key,
  failures: Number(r.failures),
  lastFailureAt: Number(r.last_failure_at),
  lockedUntil: Number(r.locked_until),
});

/** Thrown inside `reserveOrRefuse`'s transaction to roll it back when the attempt is refused. */
class Refused extends Error {
  constructor() {
    super('attempt refused by the throttle');
  }
}

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
   * as they are (then undefined is returned). `settling` names a reservation (see `reserve`) that is
   * deleted in the same transaction, so the attempt it held counts as its outcome without a gap.
   */
  async updateTogether(
    db: Db,
    realmId: string,
    keys: string[],
    next: (current: ThrottleRow[]) => ThrottleState[] | undefined,
    settling?: string,
  ): Promise<ThrottleRow[] | undefined> {
    return db.transaction(async (trx) => {
      const current = await lockRows(trx, realmId, keys);
      // the reservation this update settles goes in the same step as the failure it turned out to be
      if (settling) await trx('login_throttle_reservations').where({ id: settling }).delete();
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

  /**
   * Reserves an attempt against every key if `admit` agrees, in one transaction under the lock of the
   * keys' rows (as `updateTogether`): `admit` sees each row (in key order) with the number of live
   * reservations against it, so attempts racing for the same keys are decided one after another, each
   * seeing the ones admitted before it. Reservations expired at the clock's time are deleted first.
   * Returns whether the reservation was made.
   */
  async reserve(db: Db, realmId: string, keys: string[], reservation: ReservationSpec, admit: (current: ReservableRow[], now: number) => boolean): Promise<boolean> {
    try {
      return await reserveOrRefuse(db, realmId, keys, reservation, admit);
    } catch (err) {
      if (err instanceof Refused) return false;
      throw err;
    }
  },

  /** Gives back every key's reservation of an attempt (nothing when it has expired and been deleted). */
  async release(db: Db, id: string): Promise<void> {
    await runWrite(db, RELEASE, [id]);
  },

  /**
   * Takes one failure off a key's count (not below zero). A lock still at `lockedUntil` (the one the
   * counted attempt left) goes back to `previousLockedUntil`; a lock changed since stays.
   */
  async takeBack(db: Db, realmId: string, key: string, lockedUntil: number, previousLockedUntil: number): Promise<void> {
    await runWrite(db, TAKE_BACK, [lockedUntil, previousLockedUntil, realmId, key]);
  },

  async remove(db: Db, realmId: string, key: string): Promise<void> {
    await runWrite(db, REMOVE, [realmId, key]);
  },

  /** Deletes a key's row if it holds nothing: no failure counted and no lock at `now`. */
  async removeIfEmpty(db: Db, realmId: string, key: string, now: number): Promise<void> {
    await runWrite(db, REMOVE_EMPTY, [realmId, key, now]);
  },

  /** Deletes rows whose last failure is at or before `lastFailureBy` and which are not locked at `now`. */
  /**
   * Forgets counters whose last failure is older than `lastFailureBy` and that lock nothing, and
   * reservations that expired (their process died before settling them). A counter that a live
   * reservation still refers to is created again when that attempt settles.
   */
  async purge(db: Db, lastFailureBy: number, now: number): Promise<number> {
    const counters = await db('login_throttle').where('last_failure_at', '<=', lastFailureBy).andWhere('locked_until', '<=', now).delete();
    const reservations = await db('login_throttle_reservations').where('expires_at', '<=', now).delete();
    return counters + reservations;
  },
};

/**
 * Locks and reads the rows of `keys` (in key order) inside `trx`, creating missing ones as
 * `{ failures: 0, lastFailureAt: 0, lockedUntil: 0 }`. A fixed lock order keeps two transactions touching
 * the same pair of keys from deadlocking.
 */
async function lockRows(trx: Db, realmId: string, keys: string[]): Promise<ThrottleRow[]> {
  const current: ThrottleRow[] = [];
  for (const key of [...new Set(keys)].sort()) {
    // Writing first takes the row lock (PostgreSQL) or the write lock (SQLite) before the read,
    // and creates the row if it is missing; the no-op merge leaves an existing row unchanged.
    await trx('login_throttle')
      .insert({ realm_id: realmId, key, failures: 0, last_failure_at: 0, locked_until: 0 })
      .onConflict(['realm_id', 'key'])
      .merge({ failures: trx.raw('??', ['login_throttle.failures']) });
    current.push(toRow(await trx('login_throttle').where({ realm_id: realmId, key }).first()));
  }
  return current;
}

/** `throttleRepo.reserve`, throwing `Refused` when `admit` says no, so that the transaction leaves nothing behind (not even the rows it created). */
async function reserveOrRefuse(db: Db, realmId: string, keys: string[], reservation: ReservationSpec, admit: (current: ReservableRow[], now: number) => boolean): Promise<true> {
  return db.transaction(async (trx) => {
    const current = await lockRows(trx, realmId, keys);
    const now = reservation.clock();
    const ordered = current.map((r) => r.key);
    const live = () => trx('login_throttle_reservations').where({ realm_id: realmId }).whereIn('key', ordered);
    await live().andWhere('expires_at', '<=', now).delete();
    const counts = (await live().groupBy('key').select('key').count({ n: '*' })) as Array<{ key: string; n: number | string }>;
    const reserved = new Map(counts.map((c) => [c.key, Number(c.n)]));
    if (!admit(current.map((r) => ({ ...r, reserved: reserved.get(r.key) ?? 0 })), now)) throw new Refused();
    await trx('login_throttle_reservations').insert(ordered.map((key) => ({ id: reservation.id, realm_id: realmId, key, expires_at: now + reservation.ttlMs })));
    return true as const;
  });
}
