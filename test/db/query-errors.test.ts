import { afterAll, beforeAll, expect, it } from 'vitest';
import { type Db } from '../../src/db/knex.js';
import { describeEachDatabase, migratedDatabase } from '../helpers/databases.js';

/** A value that must never show up in an error message (and so never in a log line). */
const SECRET = '$argon2id$v=19$m=19456,t=2,p=1$c2VjcmV0LXNhbHQ$bm90LWEtcmVhbC1oYXNoLWJ1dC1zZWNyZXQ';

describeEachDatabase('errors of failed queries', (kind) => {
  let migrated: Awaited<ReturnType<typeof migratedDatabase>>;
  let db: Db;

  beforeAll(async () => {
    migrated = await migratedDatabase(kind);
    db = migrated.db;
  });
  afterAll(async () => {
    await migrated?.close();
  });

  it('name the statement but not the values bound to it', async () => {
    // no realm "nowhere": a foreign-key (or, on PostgreSQL, a constraint) error on the insert
    const row = { id: 'u-1', realm_id: 'nowhere', email: 'a@example.test', email_normalized: 'a@example.test', password_hash: SECRET, created_at: 1, updated_at: 1 };
    const failed = await db('users')
      .insert(row)
      .then(() => undefined, (err: Error) => err);
    expect(failed).toBeInstanceOf(Error);
    expect(failed!.message).toMatch(/^insert into [`"]users[`"]/);
    expect(failed!.message).toMatch(/values \((\?|\$1), /);
    expect(failed!.message).not.toContain(SECRET);
    expect(failed!.message).not.toContain('c2VjcmV0LXNhbHQ');
    expect(await db('users').where({ id: 'u-1' })).toEqual([]);

    // a column that does not exist, with the secret in the where clause
    const unknown = await db('users')
      .where({ no_such_column: SECRET })
      .first()
      .then(() => undefined, (err: Error) => err);
    expect(unknown).toBeInstanceOf(Error);
    expect(unknown!.message).toContain('no_such_column');
    expect(unknown!.message).not.toContain(SECRET);
  });
});
