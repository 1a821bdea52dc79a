import { createHash } from 'node:crypto';
import type { LatchkeyConfig } from '../config/schema.js';
import type { Db } from '../db/knex.js';
import { throttleRepo, type ThrottleRow, type ThrottleState } from '../db/throttle-repo.js';

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

  /** Whether an attempt may go ahead now; call before checking the password. */
  async check(realmId: string, keys: ThrottleKeys, now: number = Date.now()): Promise<ThrottleVerdict> {
    if (!this.#cfg.enabled) return { allowed: true, retryAfterSeconds: 0 };
    const rows = await throttleRepo.find(this.#db, realmId, this.#keys(keys));
    const lockedUntil = Math.max(0, ...rows.map((r) => r.lockedUntil));
    if (lockedUntil <= now) return { allowed: true, retryAfterSeconds: 0 };
    return { allowed: false, retryAfterSeconds: Math.ceil((lockedUntil - now) / 1000) };
  }

  /** Counts a failed attempt against the account and the address, locking them when due. */
  async recordFailure(realmId: string, keys: ThrottleKeys, now: number = Date.now()): Promise<void> {
    if (!this.#cfg.enabled) return;
    await throttleRepo.update(this.#db, realmId, this.#keys(keys), (current) => this.#afterFailure(current, now));
  }

  /**
   * Check and count in one step, for attempts cheap enough to be tried in bursts (recovery codes): while
   * the account or the address is locked the attempt is refused and not counted; otherwise it is counted
   * as a failure against both before it is tried, under the lock of their rows, so parallel attempts
   * cannot all pass a check that none of them has counted yet (as `check` then `recordFailure` can). A
   * right attempt then calls `recordAdmittedSuccess` with the admission.
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

  /** `admit` for a client address alone, under its own `purpose` (see `checkAddress`). */
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

  /** Forgets the account's failures after a successful sign-in; the address keeps its count. */
  async recordSuccess(realmId: string, keys: ThrottleKeys): Promise<void> {
    if (!this.#cfg.enabled) return;
    await throttleRepo.remove(this.#db, realmId, accountKey(keys.email));
  }

  /**
   * The same counting for a client address alone, under its own `purpose` (e.g. `user-code`), apart from
   * its sign-in failures: for guesses that name no account, such as device-flow user codes.
   */
  async checkAddress(realmId: string, purpose: string, ip: string, now: number = Date.now()): Promise<ThrottleVerdict> {
    if (!this.#cfg.enabled || !ip) return { allowed: true, retryAfterSeconds: 0 };
    const rows = await throttleRepo.find(this.#db, realmId, [`${purpose}:${addressKey(ip)}`]);
    const lockedUntil = Math.max(0, ...rows.map((r) => r.lockedUntil));
    if (lockedUntil <= now) return { allowed: true, retryAfterSeconds: 0 };
    return { allowed: false, retryAfterSeconds: Math.ceil((lockedUntil - now) / 1000) };
  }

  async recordAddressFailure(realmId: string, purpose: string, ip: string, now: number = Date.now()): Promise<void> {
    if (!this.#cfg.enabled || !ip) return;
    await throttleRepo.update(this.#db, realmId, [`${purpose}:${addressKey(ip)}`], (current) => this.#afterFailure(current, now));
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

  #afterFailure(current: ThrottleRow, now: number): ThrottleState {
    const cfg = this.#cfg;
    const isAccount = current.key.startsWith('account:');
    const forgotten = current.failures === 0 || now - current.lastFailureAt >= cfg.failureResetSeconds * 1000;
    const failures = forgotten ? 1 : current.failures + 1;
    let lockedUntil = current.lockedUntil;

    const max = isAccount ? cfg.maxFailuresPerAccount : cfg.maxFailuresPerAddress;
    if (failures >= max) {
      const waitSeconds = Math.min(cfg.maxWaitSeconds, cfg.waitIncrementSeconds * Math.floor(failures / max));
      lockedUntil = Math.max(lockedUntil, now + waitSeconds * 1000);
    }
    const quick = cfg.quickLoginCheckMilliseconds;
    if (isAccount && quick > 0 && !forgotten && now - current.lastFailureAt < quick) {
      lockedUntil = Math.max(lockedUntil, now + cfg.quickLoginWaitSeconds * 1000);
    }
    return { failures, lastFailureAt: Math.max(now, current.lastFailureAt), lockedUntil };
  }
}
