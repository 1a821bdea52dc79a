import { statSync } from 'node:fs';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { type Db } from '../../src/db/knex.js';
import { payloadsRepo } from '../../src/db/payloads-repo.js';
import { WalCheckpointer } from '../../src/db/wal-checkpointer.js';
import { describeEachDatabase, migratedDatabase, type TestDatabase } from '../helpers/databases.js';

const until = async (check: () => boolean, ms = 5000) => {
  const end = Date.now() + ms;
  while (!check()) {
    if (Date.now() > end) return false;
    await new Promise((r) => setTimeout(r, 25));
  }
  return true;
};

describeEachDatabase('WAL checkpoints in a worker thread', (kind) => {
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

  it(kind === 'sqlite' ? 'copies committed pages into the database file while the server only appends to the WAL' : 'is not started for PostgreSQL', async () => {
    const checkpointer = await WalCheckpointer.start(db, { intervalMs: 20 });
    if (kind === 'postgres') {
      expect(checkpointer).toBeUndefined();
      return;
    }
    try {
      expect(checkpointer).toBeInstanceOf(WalCheckpointer);
      // the server's own autocheckpoint only remains as a safety net
      expect(await db.raw('pragma wal_autocheckpoint')).toEqual([{ wal_autocheckpoint: 16000 }]);
      const file = database.url.slice('sqlite:'.length);
      // settle: whatever the migrations left in the WAL is checkpointed first
      await new Promise((r) => setTimeout(r, 200));
      const before = statSync(file).size;
      for (let i = 0; i < 300; i++) {
        await payloadsRepo.upsert(db, { realmId: 'default', model: 'Session', id: `s${i}` }, { uid: `u${i}`, filler: 'x'.repeat(2000) }, Date.now() + 60_000);
      }
      // ~600 kB of rows: far below 16000 pages, so only the worker can have moved them into the file
      expect(await until(() => statSync(file).size > before + 300 * 2000)).toBe(true);
      expect((await payloadsRepo.findBy(db, 'default', 'Session', 'uid', 'u299', Date.now()))?.payload).toMatchObject({ uid: 'u299' });
    } finally {
      await checkpointer?.stop();
    }
  });
});
