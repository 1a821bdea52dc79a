import { createHash } from 'node:crypto';
import { afterEach, beforeEach, expect, it } from 'vitest';
import { accountKey, addressKey, LoginThrottle, type BruteForceConfig } from '../../src/accounts/login-throttle.js';
import { migrate, openDatabase, type Db } from '../../src/db/knex.js';
import { describeEachDatabase, freshDatabase, type TestDatabase } from '../helpers/databases.js';

const REALM = 'default';
const T0 = 1_900_000_000_000;
const alice = { email: 'Alice@Example.org', ip: '203.0.113.7' };

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

  /** Records `n` failures one second apart starting at `from`; returns the time of the last one. */
  async function fail(throttle: LoginThrottle, keys: { email: string; ip: string }, n: number, from: number): Promise<number> {
    let at = from;
    for (let i = 0; i < n; i++) {
      at = from + i * 1000;
      await throttle.recordFailure(REALM, keys, at);
    }
    return at;
  }

  it('keys accounts by the sha256 of the trimmed, lower-cased email', async () => {
    const digest = createHash('sha256').update('alice@example.org').digest('hex');
    expect(accountKey('  ALICE@example.ORG ')).toBe(`account:${digest}`);
    expect(addressKey('2001:db8::1')).toBe('ip:2001:db8::1');
    const throttle = new LoginThrottle(db, base);
    await throttle.recordFailure(REALM, alice, T0);
    const keys = (await db('login_throttle').select('key').orderBy('key')).map((r) => r.key);
    expect(keys).toEqual([`account:${digest}`, 'ip:203.0.113.7']);
  });

  it('locks an account after the limit, with waits growing per block and capped', async () => {
    const throttle = new LoginThrottle(db, base);
    let last = await fail(throttle, alice, 2, T0);
    expect(await throttle.check(REALM, alice, last)).toEqual({ allowed: true, retryAfterSeconds: 0 });

    await throttle.recordFailure(REALM, alice, (last += 1000)); // 3rd failure: 60 s
    expect(await throttle.check(REALM, alice, last)).toEqual({ allowed: false, retryAfterSeconds: 60 });
    expect(await throttle.check(REALM, alice, last + 59_500)).toEqual({ allowed: false, retryAfterSeconds: 1 });
    expect(await throttle.check(REALM, alice, last + 60_000)).toEqual({ allowed: true, retryAfterSeconds: 0 });

    // Failures 4 and 5 keep the 60 s wait from each new failure; the 6th doubles it.
    last = await fail(throttle, alice, 2, last + 60_000);
    expect(await throttle.check(REALM, alice, last)).toEqual({ allowed: false, retryAfterSeconds: 60 });
    await throttle.recordFailure(REALM, alice, (last += 60_000));
    expect(await throttle.check(REALM, alice, last)).toEqual({ allowed: false, retryAfterSeconds: 120 });

    // The 9th failure would be 180 s, but maxWaitSeconds caps it at 150 s.
    last = await fail(throttle, alice, 3, last + 120_000);
    expect(await throttle.check(REALM, alice, last)).toEqual({ allowed: false, retryAfterSeconds: 150 });

    // Another account from another address is unaffected.
    expect(await throttle.check(REALM, { email: 'bob@example.org', ip: '198.51.100.1' }, last)).toEqual({ allowed: true, retryAfterSeconds: 0 });
    // Counters are per realm.
    await db('realms').insert({ id: 'other', display_name: 'Other', settings: '{}', revision: 1, created_at: T0, updated_at: T0 });
    expect((await throttle.check('other', alice, last)).allowed).toBe(true);
  });

  it('matches the account whatever the case and surrounding spaces of the email', async () => {
    const throttle = new LoginThrottle(db, base);
    const last = await fail(throttle, { email: ' alice@EXAMPLE.org', ip: '198.51.100.2' }, 3, T0);
    expect((await throttle.check(REALM, { email: 'alice@example.org', ip: '192.0.2.9' }, last)).allowed).toBe(false);
  });

  it('resets the account on success but keeps counting the address', async () => {
    const throttle = new LoginThrottle(db, base);
    const last = await fail(throttle, alice, 3, T0);
    expect((await throttle.check(REALM, alice, last)).allowed).toBe(false);
    await throttle.recordSuccess(REALM, alice);
    expect(await throttle.check(REALM, alice, last)).toEqual({ allowed: true, retryAfterSeconds: 0 });

    // The address already has 3 failures; two more (limit 5) lock it even for a fresh account.
    await fail(throttle, { email: 'bob@example.org', ip: alice.ip }, 2, last + 1000);
    const verdict = await throttle.check(REALM, { email: 'carol@example.org', ip: alice.ip }, last + 3000);
    expect(verdict.allowed).toBe(false);
    // Bob's own count (2) is under the account limit.
    expect((await throttle.check(REALM, { email: 'bob@example.org', ip: '192.0.2.1' }, last + 3000)).allowed).toBe(true);
  });

  it('locks a client address that tries many accounts', async () => {
    const throttle = new LoginThrottle(db, base);
    const ip = '192.0.2.44';
    for (let i = 0; i < 5; i++) await throttle.recordFailure(REALM, { email: `user${i}@example.org`, ip }, T0 + i * 1000);
    const at = T0 + 4000;
    expect(await throttle.check(REALM, { email: 'new@example.org', ip }, at)).toEqual({ allowed: false, retryAfterSeconds: 60 });
    expect((await throttle.check(REALM, { email: 'new@example.org', ip: '192.0.2.45' }, at)).allowed).toBe(true);
    expect((await throttle.check(REALM, { email: 'user0@example.org', ip: '192.0.2.45' }, at)).allowed).toBe(true);
  });

  it('locks an account after two failures in quick succession', async () => {
    const throttle = new LoginThrottle(db, { ...base, maxFailuresPerAccount: 30, quickLoginCheckMilliseconds: 1000, quickLoginWaitSeconds: 30 });
    await throttle.recordFailure(REALM, alice, T0);
    await throttle.recordFailure(REALM, alice, T0 + 1500); // slow enough
    expect((await throttle.check(REALM, alice, T0 + 1500)).allowed).toBe(true);
    await throttle.recordFailure(REALM, alice, T0 + 2000); // 500 ms after the previous one
    expect(await throttle.check(REALM, alice, T0 + 2000)).toEqual({ allowed: false, retryAfterSeconds: 30 });
    expect((await throttle.check(REALM, alice, T0 + 32_000)).allowed).toBe(true);

    // Without the quick check, rapid failures under the limit never lock.
    const lenient = new LoginThrottle(db, { ...base, maxFailuresPerAccount: 30, maxFailuresPerAddress: 30 });
    const bob = { email: 'bob@example.org', ip: '198.51.100.9' };
    for (let i = 0; i < 5; i++) await lenient.recordFailure(REALM, bob, T0 + i);
    expect((await lenient.check(REALM, bob, T0 + 5)).allowed).toBe(true);
  });

  it('forgets failures after failureResetSeconds without one', async () => {
    const throttle = new LoginThrottle(db, base);
    let last = await fail(throttle, alice, 2, T0);
    // A gap of the reset period: the count starts again, so two more failures do not lock.
    last = await fail(throttle, alice, 2, last + 3600_000);
    expect((await throttle.check(REALM, alice, last)).allowed).toBe(true);
    // Just under the reset period: the count continues and the next failure locks.
    await throttle.recordFailure(REALM, alice, last + 3599_000);
    expect((await throttle.check(REALM, alice, last + 3599_000)).allowed).toBe(false);

    // Purging drops forgotten, unlocked counters, and only those.
    expect(await throttle.purge(last + 3599_000 + 3599_000)).toBe(0);
    expect(await throttle.purge(last + 3599_000 + 3600_000)).toBe(2);
    expect(await db('login_throttle').count({ n: '*' }).first()).toMatchObject({ n: 0 });
  });

  it('allows everything and records nothing when disabled', async () => {
    const throttle = new LoginThrottle(db, { ...base, enabled: false, quickLoginCheckMilliseconds: 1000 });
    const last = await fail(throttle, alice, 10, T0);
    expect(await throttle.check(REALM, alice, last)).toEqual({ allowed: true, retryAfterSeconds: 0 });
    await throttle.recordSuccess(REALM, alice);
    expect(await db('login_throttle').select()).toEqual([]);
  });

  it('counts every one of many concurrent failures', async () => {
    const throttle = new LoginThrottle(db, { ...base, maxFailuresPerAccount: 1000, maxFailuresPerAddress: 1000 });
    const n = 20;
    // Several accounts share one address, so both per-key rows are contended.
    await Promise.all(
      Array.from({ length: n }, (_, i) => throttle.recordFailure(REALM, { email: `u${i % 2}@example.org`, ip: '192.0.2.200' }, T0 + i)),
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
    expect(await throttle.admit(REALM, alice, T0 + 1000)).toEqual({ allowed: false, retryAfterSeconds: 59 });
    expect(Number((await db('login_throttle').where({ key: accountKey(alice.email) }).first())?.failures ?? 0)).toBe(0);
  });

  it('recordAdmittedSuccess: the account starts afresh and the address count is taken back', async () => {
    const throttle = new LoginThrottle(db, base);
    await throttle.admit(REALM, alice, T0);
    await throttle.admit(REALM, alice, T0 + 1000);
    await throttle.recordAdmittedSuccess(REALM, alice);
    const rows = await db('login_throttle').select('key', 'failures');
    expect(rows.map((r) => [r.key, Number(r.failures)])).toEqual([[addressKey(alice.ip), 1]]);
  });
});
