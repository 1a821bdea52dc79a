import { afterAll, beforeAll, expect, it } from 'vitest';
import { type Db } from '../../src/db/knex.js';
import { progressRepo } from '../../src/db/progress-repo.js';
import { webauthnRepo } from '../../src/db/webauthn-repo.js';
import { queryAll, queryFirst, runWrite, sql } from '../../src/db/statements.js';
import { describeEachDatabase, migratedDatabase, type TestDatabase } from '../helpers/databases.js';

const PUT = sql('insert into signin_progress (realm_id, uid, data, expires_at) values (?, ?, ?, ?)');
const GET = sql('select data, expires_at from signin_progress where realm_id = ? and uid = ? limit 1');
const LIST = sql('select uid from signin_progress where realm_id = ? order by uid');
const REMOVE = sql('delete from signin_progress where realm_id = ?');

describeEachDatabase('prepared statements (src/db/statements.ts)', (kind) => {
  let migrated: Awaited<ReturnType<typeof migratedDatabase>>;
  let database: TestDatabase;
  let db: Db;

  beforeAll(async () => {
    migrated = await migratedDatabase(kind);
    ({ database, db } = migrated);
  });
  afterAll(async () => {
    await migrated?.close();
  });

  it('writes, reads the first row and all rows, and counts changed rows', async () => {
    expect(await runWrite(db, PUT, ['s-a', 'u1', '{"n":1}', 1_900_000_000_000])).toBe(1);
    expect(await runWrite(db, PUT, ['s-a', 'u2', '{"n":2}', 1_900_000_000_000])).toBe(1);
    expect(await queryFirst(db, GET, ['s-a', 'u1'])).toEqual({ data: '{"n":1}', expires_at: 1_900_000_000_000 });
    expect(await queryFirst(db, GET, ['s-a', 'nobody'])).toBeUndefined();
    expect((await queryAll(db, LIST, ['s-a'])).map((r) => r.uid)).toEqual(['u1', 'u2']);
    expect(await runWrite(db, REMOVE, ['s-a'])).toBe(2);
    expect(await runWrite(db, REMOVE, ['s-a'])).toBe(0);
  });

  it('runs many statements at once (the connection is checked out when busy)', async () => {
    await Promise.all(Array.from({ length: 40 }, (_, i) => runWrite(db, PUT, ['s-b', `u${String(i).padStart(2, '0')}`, '{}', 1_900_000_000_000])));
    const rows = await Promise.all(Array.from({ length: 40 }, (_, i) => queryFirst(db, GET, ['s-b', `u${String(i).padStart(2, '0')}`])));
    expect(rows.every((r) => r?.data === '{}')).toBe(true);
    expect(await queryAll(db, LIST, ['s-b'])).toHaveLength(40);
  });

  it('inside a transaction runs on it and rolls back with it', async () => {
    await expect(
      db.transaction(async (trx) => {
        expect(await runWrite(trx, PUT, ['s-c', 'u1', '{}', 1_900_000_000_000])).toBe(1);
        expect(await queryFirst(trx, GET, ['s-c', 'u1'])).toMatchObject({ data: '{}' });
        expect(await queryAll(trx, LIST, ['s-c'])).toHaveLength(1);
        throw new Error('roll back');
      }),
    ).rejects.toThrow('roll back');
    expect(await queryFirst(db, GET, ['s-c', 'u1'])).toBeUndefined();
  });

  it('a statement outside an open transaction does not join it: it is not rolled back with it', async () => {
    let release!: () => void;
    const held = new Promise<void>((resolve) => (release = resolve));
    let outside: Promise<void> | undefined;
    const tx = db.transaction(async (trx) => {
      await trx('signin_progress').insert({ realm_id: 's-d', uid: 'in-tx', data: '{}', expires_at: 1_900_000_000_000 });
      // A write from elsewhere while the transaction is open (PostgreSQL runs it on another connection,
      // SQLite waits for the single connection).
      outside = progressRepo.put(db, 's-d', 'outside', { n: 1 }, 1_900_000_000_000);
      await Promise.race([outside, new Promise((r) => setTimeout(r, 50))]);
      await held;
      throw new Error('roll back');
    });
    release();
    await expect(tx).rejects.toThrow('roll back');
    await outside;
    expect(await progressRepo.get(db, 's-d', 'outside', 0)).toEqual({ n: 1 });
    expect(await progressRepo.get(db, 's-d', 'in-tx', 0)).toBeUndefined();
  });

  it('booleans and nulls bind on both databases', async () => {
    await db('realms').insert({ id: 's-f', display_name: 's-f', settings: '{}', created_at: 0, updated_at: 0 });
    await db('users').insert({ id: 'user-f', realm_id: 's-f', email: 'f@example.test', email_normalized: 'f@example.test', name: 'F', created_at: 0, updated_at: 0 });
    const set = sql('update users set disabled = ?, name = ? where realm_id = ? and id = ?');
    const get = sql('select disabled, name from users where realm_id = ? and id = ? limit 1');
    expect(await runWrite(db, set, [true, null, 's-f', 'user-f'])).toBe(1);
    const row = await queryFirst(db, get, ['s-f', 'user-f']);
    expect([Boolean(row?.disabled), row?.name]).toEqual([true, null]);
    await runWrite(db, set, [false, 'F', 's-f', 'user-f']);
    expect(Boolean((await queryFirst(db, get, ['s-f', 'user-f']))?.disabled)).toBe(false);
  });

  it('a WebAuthn challenge is used once, and only for its ceremony and binding', async () => {
    const now = Date.now();
    const c = { challenge: 'ch-1', realmId: 's-e', ceremony: 'authentication' as const, boundTo: 'interaction:u', rpId: 'localhost', userId: null, expiresAt: now + 60_000 };
    await webauthnRepo.insertChallenge(db, c);
    expect(await webauthnRepo.consumeChallenge(db, 's-e', 'ch-1', 'registration', 'interaction:u', now)).toBeUndefined();
    expect(await webauthnRepo.consumeChallenge(db, 's-e', 'ch-1', 'authentication', 'interaction:other', now)).toBeUndefined();
    expect(await webauthnRepo.consumeChallenge(db, 's-e', 'ch-1', 'authentication', 'interaction:u', now)).toEqual(c);
    expect(await webauthnRepo.consumeChallenge(db, 's-e', 'ch-1', 'authentication', 'interaction:u', now)).toBeUndefined();
    await webauthnRepo.insertChallenge(db, { ...c, challenge: 'ch-2', expiresAt: now - 1 });
    expect(await webauthnRepo.consumeChallenge(db, 's-e', 'ch-2', 'authentication', 'interaction:u', now)).toBeUndefined();
  });
});
