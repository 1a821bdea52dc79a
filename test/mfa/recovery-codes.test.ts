import { createHmac, randomBytes } from 'node:crypto';
import { afterEach, beforeEach, expect, it, vi } from 'vitest';
import { factorsRepo } from '../../src/db/factors-repo.js';
import { migrate, openDatabase, type Db } from '../../src/db/knex.js';
import { normaliseRecoveryCode, RecoveryCodeService } from '../../src/mfa/recovery-codes.js';
import { listSecurityEvents, recordSecurityEvent } from '../../src/mfa/security-events.js';
import { describeEachDatabase, freshDatabase, type TestDatabase } from '../helpers/databases.js';

const REALM = 'default';
const USER = 'user-1';
const OTHER = 'user-2';
const T0 = 1_900_000_000_000;
const FORMAT = /^[abcdefghijkmnpqrstuvwxyz23456789]{4}-[abcdefghijkmnpqrstuvwxyz23456789]{4}-[abcdefghijkmnpqrstuvwxyz23456789]{4}$/;

describeEachDatabase('RecoveryCodeService', (kind) => {
  let tdb: TestDatabase;
  let db: Db;
  let key: Buffer;
  let codes: RecoveryCodeService;

  beforeEach(async () => {
    tdb = await freshDatabase(kind);
    db = openDatabase(tdb.url);
    await migrate(db);
    await db('realms').insert({ id: REALM, display_name: 'Default', settings: '{}', revision: 1, created_at: T0, updated_at: T0 });
    for (const id of [USER, OTHER]) {
      await db('users').insert({ id, realm_id: REALM, email: `${id}@example.org`, email_normalized: `${id}@example.org`, created_at: T0, updated_at: T0 });
    }
    key = randomBytes(32);
    codes = new RecoveryCodeService(db, key);
  });

  afterEach(async () => {
    await db.destroy();
    await tdb.drop();
  });

  it('generates ten distinct, well-formed codes', async () => {
    const list = await codes.generate(REALM, USER);
    expect(list).toHaveLength(10);
    expect(new Set(list).size).toBe(10);
    for (const code of list) {
      expect(code).toMatch(FORMAT);
      expect(code).not.toMatch(/[01lo]/);
    }
    expect(await codes.remaining(REALM, USER)).toBe(10);
    expect(await codes.remaining(REALM, OTHER)).toBe(0);
  });

  it('stores only HMAC-SHA256 hashes of the normalised codes', async () => {
    const list = await codes.generate(REALM, USER, T0);
    const rows = await db('recovery_codes').where({ user_id: USER });
    expect(rows).toHaveLength(10);
    const expected = list.map((c) => createHmac('sha256', key).update(c.replaceAll('-', '')).digest('hex')).sort();
    expect(rows.map((r) => r.code_hash).sort()).toEqual(expected);
    const dump = JSON.stringify(rows);
    for (const code of list) {
      expect(dump).not.toContain(code);
      expect(dump).not.toContain(code.replaceAll('-', ''));
    }
    for (const r of rows) {
      expect(r.realm_id).toBe(REALM);
      expect(Number(r.created_at)).toBe(T0);
      expect(r.used_at).toBeNull();
    }
  });

  it('accepts each code once', async () => {
    const [first, second] = await codes.generate(REALM, USER);
    expect(await codes.consume(REALM, USER, first!, T0)).toBe(true);
    expect(await codes.consume(REALM, USER, first!, T0)).toBe(false);
    expect(await codes.remaining(REALM, USER)).toBe(9);
    expect(await codes.consume(REALM, USER, second!)).toBe(true);
    expect(await codes.remaining(REALM, USER)).toBe(8);
    const used = await db('recovery_codes').whereNotNull('used_at');
    expect(used).toHaveLength(2);
  });

  it('normalises case, spaces and dashes', async () => {
    const list = await codes.generate(REALM, USER);
    expect(normaliseRecoveryCode(' AbCd-EFGH jklm ')).toBe('abcdefghjklm');
    expect(await codes.consume(REALM, USER, list[0]!.toUpperCase())).toBe(true);
    expect(await codes.consume(REALM, USER, list[1]!.replaceAll('-', ''))).toBe(true);
    expect(await codes.consume(REALM, USER, `  ${list[2]!.replaceAll('-', ' ')}  `)).toBe(true);
    expect(await codes.consume(REALM, USER, list[3]!.replaceAll('-', ' - ').toUpperCase())).toBe(true);
    expect(await codes.remaining(REALM, USER)).toBe(6);
  });

  it('rejects malformed codes, other users codes and other realms', async () => {
    const mine = await codes.generate(REALM, USER);
    const theirs = await codes.generate(REALM, OTHER);
    for (const bad of ['', 'abcd', 'abcd-efgh-jkl', 'abcd-efgh-jklmn', '0000-0000-0000', `${mine[0]}x`]) {
      expect(await codes.consume(REALM, USER, bad)).toBe(false);
    }
    expect(await codes.consume(REALM, USER, theirs[0]!)).toBe(false);
    expect(await codes.consume('elsewhere', USER, mine[0]!)).toBe(false);
    expect(await codes.remaining(REALM, USER)).toBe(10);
    expect(await codes.remaining(REALM, OTHER)).toBe(10);
  });

  it('checks codes with its own key', async () => {
    const list = await codes.generate(REALM, USER);
    const otherKey = new RecoveryCodeService(db, randomBytes(32));
    expect(await otherKey.consume(REALM, USER, list[0]!)).toBe(false);
    expect(() => new RecoveryCodeService(db, Buffer.alloc(4))).toThrow();
  });

  it('invalidates all earlier codes when generating new ones', async () => {
    const old = await codes.generate(REALM, USER);
    await codes.consume(REALM, USER, old[0]!);
    const fresh = await codes.generate(REALM, USER);
    expect(fresh.some((c) => old.includes(c))).toBe(false);
    expect(await codes.remaining(REALM, USER)).toBe(10);
    for (const code of old) expect(await codes.consume(REALM, USER, code)).toBe(false);
    expect(await codes.consume(REALM, USER, fresh[0]!)).toBe(true);
    expect(await db('recovery_codes').where({ user_id: USER }).count({ n: '*' }).first()).toEqual({ n: 10 });
    expect(await codes.removeAll(REALM, USER)).toBe(10);
    expect(await codes.remaining(REALM, USER)).toBe(0);
  });

  it('leaves exactly one set of ten codes when several generations run at once', async () => {
    // a double-submitted "Create new recovery codes": generations in parallel (PostgreSQL: two pools,
    // as two instances would have, each with connections open)
    const db2 = kind === 'postgres' ? openDatabase(tdb.url) : db;
    try {
      const second = new RecoveryCodeService(db2, key);
      await Promise.all([codes.generate(REALM, USER), second.generate(REALM, USER)]);
      for (let round = 0; round < 3; round++) {
        const sets = await Promise.all([codes.generate(REALM, USER), second.generate(REALM, USER), codes.generate(REALM, USER), second.generate(REALM, USER)]);
        expect(await codes.remaining(REALM, USER), `round ${round}`).toBe(10);
        // the codes that work are one whole set that was handed out
        const working = await Promise.all(sets.map(async (set) => (await Promise.all(set.map((c) => codes.consume(REALM, USER, c)))).filter(Boolean).length));
        expect(working.sort((x, y) => x - y)).toEqual([0, 0, 0, 10]);
      }
    } finally {
      if (db2 !== db) await db2.destroy();
    }
  });

  it('lets exactly one of several concurrent uses of one code succeed', async () => {
    const [code] = await codes.generate(REALM, USER);
    // PostgreSQL: a second pool as another instance would have; SQLite: one connection (better-sqlite3
    // would block the event loop on a second connection's lock). Every consume is held until all have
    // started, then they race on the conditional update.
    const db2 = kind === 'postgres' ? openDatabase(tdb.url) : db;
    const real = factorsRepo.consumeRecoveryCode.bind(factorsRepo);
    let arrived = 0;
    let release!: () => void;
    const gate = new Promise<void>((resolve) => (release = resolve));
    const spy = vi.spyOn(factorsRepo, 'consumeRecoveryCode').mockImplementation(async (...args) => {
      if (++arrived === 4) release();
      await gate;
      return real(...args);
    });
    try {
      const second = new RecoveryCodeService(db2, key);
      const results = await Promise.all([
        codes.consume(REALM, USER, code!),
        second.consume(REALM, USER, code!),
        codes.consume(REALM, USER, code!.toUpperCase()),
        second.consume(REALM, USER, code!.replaceAll('-', '')),
      ]);
      expect(results.filter(Boolean)).toHaveLength(1);
      expect(spy).toHaveBeenCalledTimes(4);
    } finally {
      spy.mockRestore();
      if (db2 !== db) await db2.destroy();
    }
    expect(await codes.remaining(REALM, USER)).toBe(9);
  });

  it('records and lists security events per realm and user, newest first', async () => {
    await recordSecurityEvent(db, { realmId: REALM, userId: USER, type: 'totp_enrolled', detail: { via: 'account' }, at: T0 });
    await recordSecurityEvent(db, { realmId: REALM, userId: USER, type: 'recovery_codes_generated', detail: { count: 10 }, at: T0 + 1 });
    await recordSecurityEvent(db, { realmId: REALM, userId: OTHER, type: 'totp_removed', detail: {}, at: T0 + 2 });
    await recordSecurityEvent(db, { realmId: REALM, type: 'realm_policy_changed', detail: { mfa: 'required' }, at: T0 + 3 });
    await recordSecurityEvent(db, { realmId: 'elsewhere', userId: USER, type: 'x', detail: {}, at: T0 + 4 });

    const mine = await listSecurityEvents(db, REALM, USER);
    expect(mine.map((e) => e.type)).toEqual(['recovery_codes_generated', 'totp_enrolled']);
    expect(mine[0]).toMatchObject({ realmId: REALM, userId: USER, detail: { count: 10 }, createdAt: T0 + 1 });
    expect(typeof mine[0]!.id).toBe('number');

    const all = await listSecurityEvents(db, REALM);
    expect(all.map((e) => e.type)).toEqual(['realm_policy_changed', 'totp_removed', 'recovery_codes_generated', 'totp_enrolled']);
    expect(all[0]!.userId).toBeNull();
    expect(await listSecurityEvents(db, REALM, undefined, { limit: 1 })).toHaveLength(1);
    await expect(recordSecurityEvent(db, { realmId: REALM, type: '', detail: {} })).rejects.toThrow();
  });
});
