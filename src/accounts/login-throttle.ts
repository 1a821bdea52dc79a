import { createHash, randomUUID } from 'node:crypto';
import type { LatchkeyConfig } from '../config/schema.js';
import type { Db } from '../db/knex.js';
import { throttleRepo, type ReservableRow, type ThrottleRow, type ThrottleState } from '../db/throttle-repo.js';

export type BruteForceConfig = LatchkeyConfig['bruteForce'];

/** What a sign-in attempt is throttled by: the account asked for and the client address. */
export interface ThrottleKeys {
  email: string;
  ip: string;
}

export interface ThrottleVerdict {
  allowed: boolean;
  /** Whole seconds until the next attempt is allowed; 0 when allowed. */
  retryAfterSeconds: number;
}

/** The verdict of `admit`, and what it counted (for taking the attempt back if it turns out right). */
export interface Admission extends ThrottleVerdict {
  counted: Array<{ key: string; lockedUntil: number; previousLockedUntil: number }>;
}

/** An attempt reserved by `reserve`: the verdict, and the reservation to settle when it is allowed. */
export interface Reservation extends ThrottleVerdict {
  /** Null when nothing was reserved (refused, or throttling disabled). */
  id: string | null;
  /**
   * Refused only for the attempts in flight (no key is locked): the verdict may change once they are
   * settled. Absent when allowed.
   */
  inFlight?: boolean;
}

/** What `attempt` answers: refused (locked), or the outcome of the check that was let through. */
export type Attempted<T> = { allowed: false; retryAfterSeconds: number } | { allowed: true; result: T };

/**
 * How long a reservation counts if its attempt is never settled (its process died): far longer than any
 * password check takes, so a slow check never loses its place.
 */
const RESERVATION_MS = 5 * 60_000;

/**
 * How long `attempt` waits for the attempts in flight to be settled when they alone hold it back (no key
 * is locked), trying again now and then: a password check takes well under a second, so right passwords
 * typed on more devices at once than the failure limit are all checked, one batch after another.
 */
const IN_FLIGHT_WAIT_MS = 5_000;
const IN_FLIGHT_POLL_MS = [20, 40, 80, 160, 250] as const;

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

const sha256 = (s: string): string => createHash('sha256').update(s).digest('hex');

/** Throttling key of an account, whether or not it exists, so responses never reveal existence. */
export function accountKey(email: string): string {
  return `account:${sha256(email.trim().toLowerCase())}`;
}

/** Throttling key of a client address (hashed when too long for the column). */
export function addressKey(ip: string): string {
  return ip.length <= 190 ? `ip:${ip}` : `ip:sha256:${sha256(ip)}`;
}

/**
 * Brute-force protection in the manner of Keycloak: failures are counted per account and per client
 * address, forgotten after `failureResetSeconds` without one; reaching the limit locks the key for
 * `waitIncrementSeconds` per block of failures (at most `maxWaitSeconds`), and two failures on one
 * account closer than `quickLoginCheckMilliseconds` lock it for `quickLoginWaitSeconds`.
 */
export class LoginThrottle {
  readonly #db: Db;
  readonly #cfg: BruteForceConfig;

  constructor(db: Db, cfg: BruteForceConfig) {
    this.#db = db;
    this.#cfg = cfg;
  }

  /**
   * One attempt at a secret the account's owner may type on several devices at once (the password step):
   * `check` runs only if `reserve` lets it, and its outcome is recorded (`isRight`): a wrong one as a
   * failure, a right one by forgetting the account's failures. Refused attempts are not counted. If `check`
   * throws, its reservation is given back and the error passed on.
   */
  async attempt<T>(realmId: string, keys: ThrottleKeys, check: () => Promise<T>, isRight: (result: T) => boolean): Promise<Attempted<T>> {
    const reservation = await this.#reserveWaiting(realmId, keys);
    if (!reservation.allowed) return { allowed: false, retryAfterSeconds: reservation.retryAfterSeconds };
    let result: T;
    try {
      result = await check();
    } catch (err) {
      // an error is no wrong guess; should the release fail too, the reservation expires on its own
      await this.release(reservation).catch(() => undefined);
      throw err;
    }
    if (isRight(result)) await this.recordReservedSuccess(realmId, keys, reservation);
    else await this.recordReservedFailure(realmId, keys, reservation);
    return { allowed: true, result };
  }

  /**
   * `reserve`, but while only the attempts in flight refuse it (no key is locked) it waits for them to be
   * settled and asks again, for at most IN_FLIGHT_WAIT_MS. This keeps `reserve`'s guarantee whole: every
   * reservation in flight is still counted as a failure (before its check ends nobody knows it is not
   * one), so no more checks run at a time than the failures left before the lock. A burst of wrong
   * passwords waits for the first ones' failures and is then refused by the lock they set; right
   * passwords beyond the limit are checked once the ones before them have signed in.
   */
  async #reserveWaiting(realmId: string, keys: ThrottleKeys): Promise<Reservation> {
    const deadline = Date.now() + IN_FLIGHT_WAIT_MS;
    for (let tries = 0; ; tries++) {
      const reservation = await this.reserve(realmId, keys);
      if (reservation.allowed || !reservation.inFlight) return reservation;
      const pause = IN_FLIGHT_POLL_MS[Math.min(tries, IN_FLIGHT_POLL_MS.length - 1)]!;
      if (Date.now() + pause > deadline) return reservation;
      await sleep(pause);
    }
  }

  /**
   * Lets an attempt go ahead, reserving it against the account's and the address's remaining failures,
   * in one step under the lock of their rows. Refused while either key is locked; and refused while the
   * attempts already in flight, were they all to fail, would lock a key, with the wait that lock would
   * have: so a burst sent at once is never checked more often than the same attempts one after another
   * before the lock. The quick-failure rule is not applied here (attempts in flight are not failures):
   * right passwords typed on several devices at once are all let through, up to the failure limit.
   * Settle an allowed reservation with `recordReservedFailure`, `recordReservedSuccess` or `release`.
   */
  async reserve(realmId: string, keys: ThrottleKeys, now?: number): Promise<Reservation> {
    if (!this.#cfg.enabled) return { allowed: true, retryAfterSeconds: 0, id: null };
    const id = randomUUID();
    let waitMs = 0;
    let inFlight = false;
    // the time is read once the rows are locked: a wait behind another attempt's failure must not make
    // the lock it set look longer than it is (Retry-After 61 for a 60 s lock)
    const clock = () => now ?? Date.now();
    const reserved = await throttleRepo.reserve(this.#db, realmId, this.#keys(keys), { id, clock, ttlMs: RESERVATION_MS }, (rows, at) => {
      waitMs = Math.max(0, ...rows.map((r) => this.#refusedFor(r, at)));
      inFlight = rows.every((r) => r.lockedUntil <= at);
      return waitMs === 0;
    });
    if (!reserved) return { allowed: false, retryAfterSeconds: Math.max(1, Math.ceil(waitMs / 1000)), id: null, inFlight };
    return { allowed: true, retryAfterSeconds: 0, id };
  }

  /** A reserved attempt was wrong: counted as a failure against the account and the address (with the quick-failure rule). */
  async recordReservedFailure(realmId: string, keys: ThrottleKeys, reservation: Reservation, now: number = Date.now()): Promise<void> {
    if (!this.#cfg.enabled) return;
    await throttleRepo.updateTogether(this.#db, realmId, this.#keys(keys), (rows) => rows.map((r) => this.#afterFailure(r, now)), reservation.id ?? undefined);
  }

  /**
   * A reserved attempt was right: its reservation is given back and the account's failures forgotten;
   * the address keeps its count (its row, which `reserve` created, goes when it holds no count, so
   * addresses that only ever sign in successfully leave nothing behind).
   */
  async recordReservedSuccess(realmId: string, keys: ThrottleKeys, reservation: Reservation, now: number = Date.now()): Promise<void> {
    if (!this.#cfg.enabled) return;
    await this.release(reservation);
    await throttleRepo.remove(this.#db, realmId, accountKey(keys.email));
    if (keys.ip) await throttleRepo.removeIfEmpty(this.#db, realmId, addressKey(keys.ip), now);
  }

  /** Gives back a reserved attempt that was neither right nor wrong (its check failed). */
  async release(reservation: Reservation): Promise<void> {
    if (reservation.id) await throttleRepo.release(this.#db, reservation.id);
  }

  /**
   * Check and count in one step, for attempts whose owner does not send right answers in parallel
   * (recovery codes): while the account or the address is locked the attempt is refused and not counted;
   * otherwise it is counted as a failure against both before it is tried, under the lock of their rows,
   * so parallel attempts cannot all pass a check that none of them has counted yet. A right attempt then
   * calls `recordAdmittedSuccess` with the admission. Unlike `reserve`, parallel attempts are failures
   * here and trip the quick-failure rule.
   */
  async admit(realmId: string, keys: ThrottleKeys, now: number = Date.now()): Promise<Admission> {
    return this.#admit(realmId, this.#keys(keys), now);
  }

  /** After a right attempt that `admit` counted: the account's failures are forgotten, the address's attempt is taken back. */
  async recordAdmittedSuccess(realmId: string, keys: ThrottleKeys, admission: Admission): Promise<void> {
    if (!this.#cfg.enabled) return;
    const account = accountKey(keys.email);
    await throttleRepo.remove(this.#db, realmId, account);
    await this.#takeBack(realmId, admission.counted.filter((c) => c.key !== account));
  }

  /**
   * `admit` for a client address alone, under its own `purpose` (e.g. `user-code`), apart from its
   * sign-in failures: for guesses that name no account, such as device-flow user codes.
   */
  async admitAddress(realmId: string, purpose: string, ip: string, now: number = Date.now()): Promise<Admission> {
    if (!ip) return { allowed: true, retryAfterSeconds: 0, counted: [] };
    return this.#admit(realmId, [`${purpose}:${addressKey(ip)}`], now);
  }

  /** Takes back an attempt `admitAddress` counted that turned out not to be a wrong guess. */
  async takeBackAddress(realmId: string, admission: Admission): Promise<void> {
    if (!this.#cfg.enabled) return;
    await this.#takeBack(realmId, admission.counted);
  }

  async #admit(realmId: string, keys: string[], now: number): Promise<Admission> {
    if (!this.#cfg.enabled) return { allowed: true, retryAfterSeconds: 0, counted: [] };
    let admission: Admission = { allowed: true, retryAfterSeconds: 0, counted: [] };
    await throttleRepo.updateTogether(this.#db, realmId, keys, (rows) => {
      const lockedUntil = Math.max(0, ...rows.map((r) => r.lockedUntil));
      if (lockedUntil > now) {
        admission = { allowed: false, retryAfterSeconds: Math.ceil((lockedUntil - now) / 1000), counted: [] };
        return undefined;
      }
      const states = rows.map((r) => this.#afterFailure(r, now));
      admission = { allowed: true, retryAfterSeconds: 0, counted: rows.map((r, i) => ({ key: r.key, lockedUntil: states[i]!.lockedUntil, previousLockedUntil: r.lockedUntil })) };
      return states;
    });
    return admission;
  }

  /**
   * Undoes the counting of an admitted attempt: one failure off, and a lock that attempt set lifted
   * (unless a later failure has changed it), so a right answer at the limit does not lock its sender out.
   */
  async #takeBack(realmId: string, counted: Admission['counted']): Promise<void> {
    for (const c of counted) await throttleRepo.takeBack(this.#db, realmId, c.key, c.lockedUntil, c.previousLockedUntil);
  }

  /** Deletes counters that have been forgotten and are not locked; returns how many. */
  async purge(now: number = Date.now()): Promise<number> {
    return throttleRepo.purge(this.#db, now - this.#cfg.failureResetSeconds * 1000, now);
  }

  #keys(keys: ThrottleKeys): string[] {
    const list = [accountKey(keys.email)];
    if (keys.ip) list.push(addressKey(keys.ip));
    return list;
  }

  /**
   * Milliseconds a new attempt on this key must wait, 0 when it may go ahead: the lock's remainder; else,
   * with attempts in flight, the lock that would follow if they all failed (none when they cannot lock).
   */
  #refusedFor(row: ReservableRow, now: number): number {
    if (row.lockedUntil > now) return row.lockedUntil - now;
    if (row.reserved === 0) return 0;
    const failures = this.#forgotten(row, now) ? 0 : row.failures;
    return this.#lockMs(row.key, failures + row.reserved);
  }

  #forgotten(row: ThrottleRow, now: number): boolean {
    return row.failures === 0 || now - row.lastFailureAt >= this.#cfg.failureResetSeconds * 1000;
  }

  /** The lock (ms) that `failures` failures on `key` call for: a wait per block of the limit, capped; 0 below the limit. */
  #lockMs(key: string, failures: number): number {
    const cfg = this.#cfg;
    const max = key.startsWith('account:') ? cfg.maxFailuresPerAccount : cfg.maxFailuresPerAddress;
    if (failures < max) return 0;
    return Math.min(cfg.maxWaitSeconds, cfg.waitIncrementSeconds * Math.floor(failures / max)) * 1000;
  }

  #afterFailure(current: ThrottleRow, now: number): ThrottleState {
    const cfg = this.#cfg;
    const isAccount = current.key.startsWith('account:');
    const forgotten = this.#forgotten(current, now);
    const failures = forgotten ? 1 : current.failures + 1;
    let lockedUntil = current.lockedUntil;

    const lockMs = this.#lockMs(current.key, failures);
    if (lockMs > 0) lockedUntil = Math.max(lockedUntil, now + lockMs);
    const quick = cfg.quickLoginCheckMilliseconds;
    if (isAccount && quick > 0 && !forgotten && now - current.lastFailureAt < quick) {
      lockedUntil = Math.max(lockedUntil, now + cfg.quickLoginWaitSeconds * 1000);
    }
    return { failures, lastFailureAt: Math.max(now, current.lastFailureAt), lockedUntil };
  }
}
