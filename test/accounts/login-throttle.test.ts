import { createHash } from 'node:crypto';
import { afterEach, beforeEach, expect, it } from 'vitest';
import { accountKey, addressKey, LoginThrottle, type BruteForceConfig, type Reservation, type ThrottleKeys } from '../../src/accounts/login-throttle.js';
import { migrate, openDatabase, type Db } from '../../src/db/knex.js';
import { describeEachDatabase, freshDatabase, type TestDatabase } from '../helpers/databases.js';

const REALM = 'default';
const T0 = 1_900_000_000_000;
const alice = { email: 'Alice@Example.org', ip: '203.0.113.7' };

/** A failure counted without a reservation: the counting arithmetic alone, whatever the lock. */
const UNRESERVED: Reservation = { allowed: true, retryAfterSeconds: 0, id: null };

const base: BruteForceConfig = {
  enabled: true,
  maxFailuresPerAccount: 3,
  maxFailuresPerAddress: 5,
  waitIncrementSeconds: 60,
  maxWaitSeconds: 150,
  failureResetSeconds: 3600,
  quickLoginCheckMilliseconds: 0,
  quickLoginWaitSeconds: 30,
};

describeEachDatabase('LoginThrottle', (kind) => {
  let tdb: TestDatabase;
  let db: Db;

  beforeEach(async () => {
    tdb = await freshDatabase(kind);
    db = openDatabase(tdb.url);
    await migrate(db);
    await db('realms').insert({ id: REALM, display_name: 'Default', settings: '{}', revision: 1, created_at: T0, updated_at: T0 });
  });

  afterEach(async () => {
    await db.destroy();
    await tdb.drop();
  });

  const recordFailure = (throttle: LoginThrottle, keys: ThrottleKeys, at: number) => throttle.recordReservedFailure(REALM, keys, UNRESERVED, at);
  const recordSuccess = (throttle: LoginThrottle, keys: ThrottleKeys) => throttle.recordReservedSuccess(REALM, keys, UNRESERVED);

  /** The verdict for an attempt at `at`, given back at once (reserved, then released): nothing is counted. */
  async function check(throttle: LoginThrottle, keys: ThrottleKeys, at: number, realm = REALM) {
    const reservation = await throttle.reserve(realm, keys, at);
    await throttle.release(reservation);
    return { allowed: reservation.allowed, retryAfterSeconds: reservation.retryAfterSeconds };
  }

  /** Records `n` failures one second apart starting at `from`; returns the time of the last one. */
  async function fail(throttle: LoginThrottle, keys: { email: string; ip: string }, n: number, from: number): Promise<number> {
    let at = from;
    for (let i = 0; i < n; i++) {
      at = from + i * 1000;
      await recordFailure(throttle, keys, at);
    }
    return at;
  }

  it('keys accounts by the sha256 of the trimmed, lower-cased email', async () => {
    const digest = createHash('sha256').update('alice@example.org').digest('hex');
    expect(accountKey('  ALICE@example.ORG ')).toBe(`account:${digest}`);
    expect(addressKey('2001:db8::1')).toBe('ip:2001:db8::1');
    const throttle = new LoginThrottle(db, base);
    await recordFailure(throttle, alice, T0);
    const keys = (await db('login_throttle').select('key').orderBy('key')).map((r) => r.key);
    expect(keys).toEqual([`account:${digest}`, 'ip:203.0.113.7']);
  });

  it('locks an account after the limit, with waits growing per block and capped', async () => {
    const throttle = new LoginThrottle(db, base);
    let last = await fail(throttle, alice, 2, T0);
    expect(await check(throttle, alice, last)).toEqual({ allowed: true, retryAfterSeconds: 0 });

    await recordFailure(throttle, alice, (last += 1000)); // 3rd failure: 60 s
    expect(await check(throttle, alice, last)).toEqual({ allowed: false, retryAfterSeconds: 60 });
    expect(await check(throttle, alice, last + 59_500)).toEqual({ allowed: false, retryAfterSeconds: 1 });
    expect(await check(throttle, alice, last + 60_000)).toEqual({ allowed: true, retryAfterSeconds: 0 });

    // Failures 4 and 5 keep the 60 s wait from each new failure; the 6th doubles it.
    last = await fail(throttle, alice, 2, last + 60_000);
    expect(await check(throttle, alice, last)).toEqual({ allowed: false, retryAfterSeconds: 60 });
    await recordFailure(throttle, alice, (last += 60_000));
    expect(await check(throttle, alice, last)).toEqual({ allowed: false, retryAfterSeconds: 120 });

    // The 9th failure would be 180 s, but maxWaitSeconds caps it at 150 s.
    last = await fail(throttle, alice, 3, last + 120_000);
    expect(await check(throttle, alice, last)).toEqual({ allowed: false, retryAfterSeconds: 150 });

    // Another account from another address is unaffected.
    expect(await check(throttle, { email: 'bob@example.org', ip: '198.51.100.1' }, last)).toEqual({ allowed: true, retryAfterSeconds: 0 });
    // Counters are per realm.
    await db('realms').insert({ id: 'other', display_name: 'Other', settings: '{}', revision: 1, created_at: T0, updated_at: T0 });
    expect((await check(throttle, alice, last, 'other')).allowed).toBe(true);
  });

  it('matches the account whatever the case and surrounding spaces of the email', async () => {
    const throttle = new LoginThrottle(db, base);
    const last = await fail(throttle, { email: ' alice@EXAMPLE.org', ip: '198.51.100.2' }, 3, T0);
    expect((await check(throttle, { email: 'alice@example.org', ip: '192.0.2.9' }, last)).allowed).toBe(false);
  });

  it('resets the account on success but keeps counting the address', async () => {
    const throttle = new LoginThrottle(db, base);
    const last = await fail(throttle, alice, 3, T0);
    expect((await check(throttle, alice, last)).allowed).toBe(false);
    await recordSuccess(throttle, alice);
    expect(await check(throttle, alice, last)).toEqual({ allowed: true, retryAfterSeconds: 0 });

    // The address already has 3 failures; two more (limit 5) lock it even for a fresh account.
    await fail(throttle, { email: 'bob@example.org', ip: alice.ip }, 2, last + 1000);
    const verdict = await check(throttle, { email: 'carol@example.org', ip: alice.ip }, last + 3000);
    expect(verdict.allowed).toBe(false);
    // Bob's own count (2) is under the account limit.
    expect((await check(throttle, { email: 'bob@example.org', ip: '192.0.2.1' }, last + 3000)).allowed).toBe(true);
  });

  it('locks a client address that tries many accounts', async () => {
    const throttle = new LoginThrottle(db, base);
    const ip = '192.0.2.44';
    for (let i = 0; i < 5; i++) await recordFailure(throttle, { email: `user${i}@example.org`, ip }, T0 + i * 1000);
    const at = T0 + 4000;
    expect(await check(throttle, { email: 'new@example.org', ip }, at)).toEqual({ allowed: false, retryAfterSeconds: 60 });
    expect((await check(throttle, { email: 'new@example.org', ip: '192.0.2.45' }, at)).allowed).toBe(true);
    expect((await check(throttle, { email: 'user0@example.org', ip: '192.0.2.45' }, at)).allowed).toBe(true);
  });

  it('locks an account after two failures in quick succession', async () => {
    const throttle = new LoginThrottle(db, { ...base, maxFailuresPerAccount: 30, quickLoginCheckMilliseconds: 1000, quickLoginWaitSeconds: 30 });
    await recordFailure(throttle, alice, T0);
    await recordFailure(throttle, alice, T0 + 1500); // slow enough
    expect((await check(throttle, alice, T0 + 1500)).allowed).toBe(true);
    await recordFailure(throttle, alice, T0 + 2000); // 500 ms after the previous one
    expect(await check(throttle, alice, T0 + 2000)).toEqual({ allowed: false, retryAfterSeconds: 30 });
    expect((await check(throttle, alice, T0 + 32_000)).allowed).toBe(true);

    // Without the quick check, rapid failures under the limit never lock.
    const lenient = new LoginThrottle(db, { ...base, maxFailuresPerAccount: 30, maxFailuresPerAddress: 30 });
    const bob = { email: 'bob@example.org', ip: '198.51.100.9' };
    for (let i = 0; i < 5; i++) await recordFailure(lenient, bob, T0 + i);
    expect((await check(lenient, bob, T0 + 5)).allowed).toBe(true);
  });

  it('forgets failures after failureResetSeconds without one', async () => {
    const throttle = new LoginThrottle(db, base);
    let last = await fail(throttle, alice, 2, T0);
    // A gap of the reset period: the count starts again, so two more failures do not lock.
    last = await fail(throttle, alice, 2, last + 3600_000);
    expect((await check(throttle, alice, last)).allowed).toBe(true);
    // Just under the reset period: the count continues and the next failure locks.
    await recordFailure(throttle, alice, last + 3599_000);
    expect((await check(throttle, alice, last + 3599_000)).allowed).toBe(false);

    // Purging drops forgotten, unlocked counters, and only those.
    expect(await throttle.purge(last + 3599_000 + 3599_000)).toBe(0);
    expect(await throttle.purge(last + 3599_000 + 3600_000)).toBe(2);
    expect(await db('login_throttle').count({ n: '*' }).first()).toMatchObject({ n: 0 });
  });

  it('allows everything and records nothing when disabled', async () => {
    const throttle = new LoginThrottle(db, { ...base, enabled: false, quickLoginCheckMilliseconds: 1000 });
    const last = await fail(throttle, alice, 10, T0);
    expect(await check(throttle, alice, last)).toEqual({ allowed: true, retryAfterSeconds: 0 });
    await recordSuccess(throttle, alice);
    expect(await db('login_throttle').select()).toEqual([]);
  });

  it('counts every one of many concurrent failures', async () => {
    const throttle = new LoginThrottle(db, { ...base, maxFailuresPerAccount: 1000, maxFailuresPerAddress: 1000 });
    const n = 20;
    // Several accounts share one address, so both per-key rows are contended.
    await Promise.all(
      Array.from({ length: n }, (_, i) => recordFailure(throttle, { email: `u${i % 2}@example.org`, ip: '192.0.2.200' }, T0 + i)),
    );
    const rows = await db('login_throttle').select('key', 'failures');
    const byKey = Object.fromEntries(rows.map((r) => [r.key, Number(r.failures)]));
    expect(byKey[addressKey('192.0.2.200')]).toBe(n);
    expect(byKey[accountKey('u0@example.org')]).toBe(n / 2);
    expect(byKey[accountKey('u1@example.org')]).toBe(n / 2);
  });

  it('admit: of many parallel attempts on one account, exactly the limit is let through; the refused are not counted', async () => {
    const throttle = new LoginThrottle(db, base);
    const verdicts = await Promise.all(Array.from({ length: 20 }, () => throttle.admit(REALM, alice, T0)));
    expect(verdicts.filter((v) => v.allowed)).toHaveLength(base.maxFailuresPerAccount);
    for (const v of verdicts.filter((v) => !v.allowed)) expect(v.retryAfterSeconds).toBe(60);
    const byKey = Object.fromEntries((await db('login_throttle').select('key', 'failures')).map((r) => [r.key, Number(r.failures)]));
    expect(byKey).toEqual({ [accountKey(alice.email)]: base.maxFailuresPerAccount, [addressKey(alice.ip)]: base.maxFailuresPerAccount });
  });

  it('admit: a locked address refuses, without counting, an account it has not locked', async () => {
    const throttle = new LoginThrottle(db, base);
    await Promise.all(Array.from({ length: base.maxFailuresPerAddress }, (_, i) => throttle.admit(REALM, { email: `u${i}@example.org`, ip: alice.ip }, T0)));
    expect(await throttle.admit(REALM, alice, T0 + 1000)).toEqual({ allowed: false, retryAfterSeconds: 59, counted: [] });
    expect(Number((await db('login_throttle').where({ key: accountKey(alice.email) }).first())?.failures ?? 0)).toBe(0);
  });

  it('recordAdmittedSuccess: the account starts afresh and the address count is taken back', async () => {
    const throttle = new LoginThrottle(db, base);
    await throttle.admit(REALM, alice, T0);
    const right = await throttle.admit(REALM, alice, T0 + 1000);
    await throttle.recordAdmittedSuccess(REALM, alice, right);
    const rows = await db('login_throttle').select('key', 'failures');
    expect(rows.map((r) => [r.key, Number(r.failures)])).toEqual([[addressKey(alice.ip), 1]]);
  });

  it('recordAdmittedSuccess: a right attempt that reached the address limit does not leave the address locked', async () => {
    const throttle = new LoginThrottle(db, base);
    for (let i = 0; i < base.maxFailuresPerAddress - 1; i++) await throttle.admit(REALM, { email: `u${i}@example.org`, ip: alice.ip }, T0 + i * 1000);
    const right = await throttle.admit(REALM, alice, T0 + 10_000);
    expect(right.allowed).toBe(true);
    // counting it locked the address...
    expect((await check(throttle, { email: 'other@example.org', ip: alice.ip }, T0 + 10_001)).allowed).toBe(false);
    await throttle.recordAdmittedSuccess(REALM, alice, right);
    // ...and taking it back lifts that lock, leaving the address its wrong attempts
    expect(await check(throttle, { email: 'other@example.org', ip: alice.ip }, T0 + 10_001)).toEqual({ allowed: true, retryAfterSeconds: 0 });
    const address = await db('login_throttle').where({ key: addressKey(alice.ip) }).first();
    expect(Number(address.failures)).toBe(base.maxFailuresPerAddress - 1);
  });

  it('takeBackAddress: lifts only the lock its own attempt set, not one a later failure has set', async () => {
    const throttle = new LoginThrottle(db, base);
    for (let i = 0; i < base.maxFailuresPerAddress - 1; i++) await throttle.admitAddress(REALM, 'user-code', alice.ip, T0 + i * 1000);
    const right = await throttle.admitAddress(REALM, 'user-code', alice.ip, T0 + 10_000);
    expect(right.allowed).toBe(true);
    // once the lock its counting set is over, a wrong guess (another instance) sets a new one before it is taken back
    const wrong = await throttle.admitAddress(REALM, 'user-code', alice.ip, T0 + 70_000);
    expect(wrong.allowed).toBe(true);
    await throttle.takeBackAddress(REALM, right);
    const verdict = await throttle.admitAddress(REALM, 'user-code', alice.ip, T0 + 70_001);
    expect(verdict).toEqual({ allowed: false, retryAfterSeconds: 60, counted: [] });
    expect(Number((await db('login_throttle').where({ key: `user-code:${addressKey(alice.ip)}` }).first()).failures)).toBe(base.maxFailuresPerAddress);
  });

  const reservationsOf = async () =>
    Object.fromEntries(
      ((await db('login_throttle_reservations').select('key').count({ n: '*' }).groupBy('key')) as Array<{ key: string; n: number | string }>).map((r) => [r.key, Number(r.n)]),
    );
  const failuresOf = async () => Object.fromEntries((await db('login_throttle').select('key', 'failures')).map((r) => [r.key, Number(r.failures)]));

  it('reserve: of many parallel attempts on one account, the limit is let through and none is counted yet; their failures lock', async () => {
    const throttle = new LoginThrottle(db, base);
    const reservations = await Promise.all(Array.from({ length: 20 }, () => throttle.reserve(REALM, alice, T0)));
    const allowed = reservations.filter((r) => r.allowed);
    expect(allowed).toHaveLength(base.maxFailuresPerAccount);
    // refused with the wait that the failures in flight would set (3 failures: 60 s), and not reserved
    for (const r of reservations.filter((r) => !r.allowed)) expect(r).toEqual({ allowed: false, retryAfterSeconds: 60, id: null, inFlight: true });
    expect(await reservationsOf()).toEqual({ [accountKey(alice.email)]: 3, [addressKey(alice.ip)]: 3 });
    expect(await failuresOf()).toEqual({ [accountKey(alice.email)]: 0, [addressKey(alice.ip)]: 0 });

    await Promise.all(allowed.map((r, i) => throttle.recordReservedFailure(REALM, alice, r, T0 + 100 + i)));
    expect(await reservationsOf()).toEqual({});
    expect(await failuresOf()).toEqual({ [accountKey(alice.email)]: 3, [addressKey(alice.ip)]: 3 });
    expect(await check(throttle, alice, T0 + 200)).toEqual({ allowed: false, retryAfterSeconds: 60 });
  });

  it('reserve: right attempts in flight on several devices are all let through, with the quick-failure rule on, round after round', async () => {
    const throttle = new LoginThrottle(db, { ...base, maxFailuresPerAccount: 30, maxFailuresPerAddress: 100, quickLoginCheckMilliseconds: 1000 });
    for (let round = 0; round < 3; round++) {
      const at = T0 + round * 10;
      const reservations = await Promise.all(Array.from({ length: 8 }, () => throttle.reserve(REALM, alice, at)));
      expect(reservations.map((r) => r.allowed)).toEqual(Array(8).fill(true));
      await Promise.all(reservations.map((r) => throttle.recordReservedSuccess(REALM, alice, r)));
    }
    expect(await reservationsOf()).toEqual({});
    // nothing is left behind: no count, no reservation, no empty row of the address
    expect(await failuresOf()).toEqual({});
    expect(await check(throttle, alice, T0 + 100)).toEqual({ allowed: true, retryAfterSeconds: 0 });
  });

  it('reserve: a right attempt forgets the account\'s failures but not the other attempts in flight', async () => {
    const throttle = new LoginThrottle(db, base);
    await recordFailure(throttle, alice, T0);
    const [right, other] = await Promise.all([throttle.reserve(REALM, alice, T0 + 1000), throttle.reserve(REALM, alice, T0 + 1000)]);
    expect(right!.allowed && other!.allowed).toBe(true);
    // 1 failure + 2 in flight: a third could be the 4th failure
    expect((await check(throttle, alice, T0 + 1000)).allowed).toBe(false);
    await throttle.recordReservedSuccess(REALM, alice, right!);
    expect(await reservationsOf()).toEqual({ [accountKey(alice.email)]: 1, [addressKey(alice.ip)]: 1 });
    // 0 failures + 1 in flight: two more may go ahead, the next one not
    const next = await Promise.all(Array.from({ length: 3 }, () => throttle.reserve(REALM, alice, T0 + 2000)));
    expect(next.filter((r) => r.allowed)).toHaveLength(2);
  });

  it('reserve: attempts in flight count against the address too', async () => {
    const throttle = new LoginThrottle(db, { ...base, maxFailuresPerAccount: 30 });
    const reservations = await Promise.all(Array.from({ length: 8 }, (_, i) => throttle.reserve(REALM, { email: `u${i}@example.org`, ip: alice.ip }, T0)));
    expect(reservations.filter((r) => r.allowed)).toHaveLength(base.maxFailuresPerAddress);
    // a refused attempt leaves nothing behind: rows only for the accounts let through (and the address)
    const accounts = Object.keys(await failuresOf()).filter((key) => key.startsWith('account:'));
    expect(accounts).toHaveLength(base.maxFailuresPerAddress);
  });

  it('reserve: attempts in flight that could not lock (no wait configured) do not hold others back', async () => {
    const throttle = new LoginThrottle(db, { ...base, waitIncrementSeconds: 0 });
    const reservations = await Promise.all(Array.from({ length: 8 }, () => throttle.reserve(REALM, alice, T0)));
    expect(reservations.every((r) => r.allowed)).toBe(true);
  });

  it('reserve: a reservation never settled (its process died) stops counting after five minutes', async () => {
    const throttle = new LoginThrottle(db, base);
    for (let i = 0; i < 3; i++) expect((await throttle.reserve(REALM, alice, T0)).allowed).toBe(true);
    expect((await check(throttle, alice, T0 + 299_999)).allowed).toBe(false);
    expect(await check(throttle, alice, T0 + 300_000)).toEqual({ allowed: true, retryAfterSeconds: 0 });
    expect(await reservationsOf()).toEqual({});
  });

  it('attempt: right passwords on more devices at once than the failure limit are all checked, a batch at a time', async () => {
    const throttle = new LoginThrottle(db, base);
    let running = 0;
    let most = 0;
    const check = async () => {
      running += 1;
      most = Math.max(most, running);
      await new Promise((resolve) => setTimeout(resolve, 30));
      running -= 1;
      return 'right';
    };
    const outcomes = await Promise.all(Array.from({ length: 12 }, () => throttle.attempt(REALM, alice, check, (r) => r === 'right')));
    expect(outcomes).toEqual(Array(12).fill({ allowed: true, result: 'right' }));
    // never more checks at a time than the failures left before the lock
    expect(most).toBeLessThanOrEqual(base.maxFailuresPerAccount);
    expect(await reservationsOf()).toEqual({});
    expect(await failuresOf()).toEqual({});
  });

  it('attempt: wrong passwords sent at once get as many checks as the limit, and the rest the lock', async () => {
    const throttle = new LoginThrottle(db, base);
    let checks = 0;
    const check = async () => {
      checks += 1;
      await new Promise((resolve) => setTimeout(resolve, 30));
      return 'wrong';
    };
    const outcomes = await Promise.all(Array.from({ length: 12 }, () => throttle.attempt(REALM, alice, check, (r) => r === 'right')));
    expect(checks).toBe(base.maxFailuresPerAccount);
    expect(outcomes.filter((o) => o.allowed)).toHaveLength(3);
    const refused = outcomes.filter((o) => !o.allowed);
    expect(refused).toHaveLength(9);
    for (const r of refused) expect(r.retryAfterSeconds).toBeGreaterThanOrEqual(59);
    expect(await failuresOf()).toEqual({ [accountKey(alice.email)]: 3, [addressKey(alice.ip)]: 3 });
    expect(await reservationsOf()).toEqual({});
  });

  it('attempt: a wrong answer is counted, a right one resets, a check that throws gives its reservation back uncounted', async () => {
    const throttle = new LoginThrottle(db, base);
    expect(await throttle.attempt(REALM, alice, async () => 'wrong', (r) => r === 'right')).toEqual({ allowed: true, result: 'wrong' });
    expect(await failuresOf()).toEqual({ [accountKey(alice.email)]: 1, [addressKey(alice.ip)]: 1 });
    await expect(throttle.attempt(REALM, alice, async () => Promise.reject(new Error('database down')), () => true)).rejects.toThrow('database down');
    expect(await reservationsOf()).toEqual({});
    expect(await failuresOf()).toEqual({ [accountKey(alice.email)]: 1, [addressKey(alice.ip)]: 1 });
    expect(await throttle.attempt(REALM, alice, async () => 'right', (r) => r === 'right')).toEqual({ allowed: true, result: 'right' });
    expect(await failuresOf()).toEqual({ [addressKey(alice.ip)]: 1 });
    expect(await reservationsOf()).toEqual({});
  });
});
