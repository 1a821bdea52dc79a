import { execFile } from 'node:child_process';
import { createServer, request, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createRequire } from 'node:module';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { migrate, openDatabase, writeBatchOf, type Db } from '../../src/db/knex.js';
import { queryFirst, runWrite, sql } from '../../src/db/statements.js';
import { afterCommit, DurableResponse, HOLD_MS, WriteBatch, writesPending } from '../../src/db/write-batch.js';
import { freshDatabase, postgresReachable, type TestDatabase } from '../helpers/databases.js';
import { busyWait, nextTurn } from '../helpers/event-loop.js';
import { startTestServer } from '../helpers/server.js';

const PUT = sql('insert into signin_progress (realm_id, uid, data, expires_at) values (?, ?, ?, ?)');
const GET = sql('select data from signin_progress where realm_id = ? and uid = ? limit 1');
const LATER = 1_900_000_000_000;

/** better-sqlite3, opened directly: the part these tests use (the project has no type package for it). */
interface RawConnection {
  prepare(sql: string): { run(...params: unknown[]): unknown; get(...params: unknown[]): unknown };
  exec(sql: string): unknown;
  readonly inTransaction: boolean;
  close(): void;
}
const Database = createRequire(import.meta.url)('better-sqlite3') as new (file: string, options?: { readonly?: boolean }) => RawConnection;
/** A batch opened in this turn commits at the end of the next one: awaited here, the commit is done. */
const batchWindow = async () => {
  await nextTurn();
  await nextTurn();
};

/** What another connection (as another process would) sees of a signin_progress row right now. */
function seenElsewhere(file: string, uid: string): boolean {
  const other = new Database(file, { readonly: true });
  try {
    return other.prepare('select 1 from signin_progress where uid = ?').get(uid) !== undefined;
  } finally {
    other.close();
  }
}

describe('SQLite group commit (src/db/write-batch.ts)', () => {
  let database: TestDatabase;
  let file: string;
  let db: Db;
  const batchErrors: Error[] = [];

  beforeAll(async () => {
    database = await freshDatabase('sqlite');
    file = database.url.slice('sqlite:'.length);
    db = openDatabase(database.url, { onWriteBatchError: (err) => batchErrors.push(err) });
    await migrate(db);
    // a deferred foreign key fails at COMMIT, which is how a commit failure is made here
    await db.raw('create table wb_parent (id text primary key)');
    await db.raw('create table wb_child (id text primary key, parent_id text not null references wb_parent (id) deferrable initially deferred)');
  });
  afterAll(async () => {
    await db?.destroy();
    await database?.drop();
  });
  afterEach(() => {
    batchErrors.length = 0;
  });

  it('writes share one commit at the end of the next turn of the event loop', async () => {
    // the batch itself, on a connection of its own: two writes, one transaction, committed after the next poll
    const conn = new Database(file);
    try {
      const batch = new WriteBatch();
      const insert = conn.prepare('insert into signin_progress (realm_id, uid, data, expires_at) values (?, ?, ?, ?)');
      batch.enter(conn);
      insert.run('r', 'raw-1', '{}', LATER);
      batch.enter(conn);
      insert.run('r', 'raw-2', '{}', LATER);
      expect(conn.inTransaction).toBe(true);
      expect(batch.open).toBe(true);
      expect(writesPending()).toBe(true);
      expect(seenElsewhere(file, 'raw-1')).toBe(false);
      await nextTurn();
      // requests that arrived meanwhile (the next turn's poll) would still join it
      expect(batch.open).toBe(true);
      expect(seenElsewhere(file, 'raw-1')).toBe(false);
      await nextTurn();
      expect(batch.open).toBe(false);
      expect(conn.inTransaction).toBe(false);
      expect(writesPending()).toBe(false);
      expect(seenElsewhere(file, 'raw-1')).toBe(true);
      expect(seenElsewhere(file, 'raw-2')).toBe(true);
    } finally {
      conn.close();
    }
  });

  it('a response ready within HOLD_MS waits for the batch to commit at the end of the next turn', async () => {
    const conn = new Database(file);
    try {
      const order: string[] = [];
      await nextTurn();
      const batch = new WriteBatch();
      batch.enter(conn);
      conn.prepare('insert into signin_progress (realm_id, uid, data, expires_at) values (?, ?, ?, ?)').run('r', 'held', '{}', LATER);
      setImmediate(() => order.push('end of this turn'));
      afterCommit((err) => order.push(err ? `failed: ${err.message}` : `committed, seen elsewhere: ${seenElsewhere(file, 'held')}`));
      await Promise.resolve();
      order.push('chain done');
      await nextTurn();
      expect(order).toEqual(['chain done', 'end of this turn']);
      expect(batch.open).toBe(true);
      await nextTurn();
      expect(order).toEqual(['chain done', 'end of this turn', 'committed, seen elsewhere: true']);
      expect(batch.open).toBe(false);
    } finally {
      conn.close();
    }
  });

  it('a response ready once the batch is HOLD_MS old makes it commit as soon as the current promise chain is done', async () => {
    const conn = new Database(file);
    try {
      const order: string[] = [];
      await nextTurn();
      // queued before the batch opens: without the early commit it would run before the batch commits
      setImmediate(() => order.push('end of turn'));
      const batch = new WriteBatch();
      batch.enter(conn);
      conn.prepare('insert into signin_progress (realm_id, uid, data, expires_at) values (?, ?, ?, ?)').run('r', 'early', '{}', LATER);
      busyWait(HOLD_MS + 1);
      afterCommit((err) => order.push(err ? `failed: ${err.message}` : `committed, seen elsewhere: ${seenElsewhere(file, 'early')}`));
      await Promise.resolve(); // the rest of this chain runs first
      order.push('chain done');
      await nextTurn();
      expect(order).toEqual(['chain done', 'committed, seen elsewhere: true', 'end of turn']);
      expect(batch.open).toBe(false);
      // the batch's own scheduled commit, two turns on, finds nothing to do and leaves a new batch alone
      batch.enter(conn);
      conn.prepare('insert into signin_progress (realm_id, uid, data, expires_at) values (?, ?, ?, ?)').run('r', 'early-2', '{}', LATER);
      await nextTurn();
      expect(batch.open).toBe(true);
      await nextTurn();
      expect(batch.open).toBe(false);
      expect(seenElsewhere(file, 'early-2')).toBe(true);
    } finally {
      conn.close();
    }
  });

  it('runWrite on the idle SQLite connection of knex joins the batch; reads on it see the write at once', async () => {
    await nextTurn(); // a fresh turn: the first statement of a turn never yields (src/server/time-slice.ts)
    expect(await runWrite(db, PUT, ['r', 'turn-1', '{}', LATER])).toBe(1);
    expect(writeBatchOf(db)?.open).toBe(true);
    expect(seenElsewhere(file, 'turn-1')).toBe(false);
    expect(await queryFirst(db, GET, ['r', 'turn-1'])).toEqual({ data: '{}' });
    await batchWindow();
    expect(writeBatchOf(db)?.open).toBe(false);
    expect(seenElsewhere(file, 'turn-1')).toBe(true);
  });

  it('a write read through queryFirst (update ... returning) joins the batch too', async () => {
    await batchWindow();
    await runWrite(db, PUT, ['r', 'returning', '{}', LATER]);
    await batchWindow();
    expect(writeBatchOf(db)?.open).toBe(false);
    const TAKE = sql("update signin_progress set data = '{\"taken\":true}' where realm_id = ? and uid = ? returning uid");
    expect(await queryFirst(db, TAKE, ['r', 'returning'])).toEqual({ uid: 'returning' });
    expect(writeBatchOf(db)?.open).toBe(true);
    expect(await queryFirst(db, TAKE, ['r', 'no such row'])).toBeUndefined();
    await batchWindow();
    expect(writeBatchOf(db)?.open).toBe(false);
    const other = new Database(file, { readonly: true });
    try {
      expect(other.prepare('select data from signin_progress where uid = ?').get('returning')).toEqual({ data: '{"taken":true}' });
    } finally {
      other.close();
    }
  });

  it('a read alone opens no transaction', async () => {
    await queryFirst(db, GET, ['r', 'turn-1']);
    expect(writeBatchOf(db)?.open).toBe(false);
  });

  it('commits before knex uses the connection, so a knex transaction works in the same turn', async () => {
    await batchWindow();
    await runWrite(db, PUT, ['r', 'before-knex', '{}', LATER]);
    expect(writeBatchOf(db)?.open).toBe(true);
    await db.transaction(async (trx) => {
      await trx('signin_progress').insert({ realm_id: 'r', uid: 'in-knex-trx', data: '{}', expires_at: LATER });
    });
    expect(seenElsewhere(file, 'before-knex')).toBe(true);
    expect(seenElsewhere(file, 'in-knex-trx')).toBe(true);
  });

  it('a failing statement is undone alone; the rest of the batch commits', async () => {
    await runWrite(db, PUT, ['r', 'kept', '{}', LATER]);
    await expect(runWrite(db, PUT, ['r', 'kept', '{"again":true}', LATER])).rejects.toThrow(/UNIQUE constraint failed/);
    await runWrite(db, PUT, ['r', 'kept-too', '{}', LATER]);
    await batchWindow();
    expect(batchErrors).toEqual([]);
    expect(seenElsewhere(file, 'kept')).toBe(true);
    expect(seenElsewhere(file, 'kept-too')).toBe(true);
  });

  it('a failed commit writes nothing of the batch and reports it', async () => {
    await runWrite(db, PUT, ['r', 'rolled-back', '{}', LATER]);
    await runWrite(db, sql('insert into wb_child (id, parent_id) values (?, ?)'), ['c1', 'no-such-parent']);
    await batchWindow();
    expect(batchErrors).toHaveLength(1);
    expect(batchErrors[0].message).toMatch(/none of them was written/);
    expect(String((batchErrors[0].cause as Error).message)).toMatch(/FOREIGN KEY constraint failed/);
    expect(seenElsewhere(file, 'rolled-back')).toBe(false);
    // the connection is usable afterwards
    await runWrite(db, PUT, ['r', 'after-failure', '{}', LATER]);
    await batchWindow();
    expect(seenElsewhere(file, 'after-failure')).toBe(true);
  });

  it('commits before the database closes', async () => {
    const other = await freshDatabase('sqlite');
    const otherDb = openDatabase(other.url);
    try {
      await migrate(otherDb);
      await batchWindow();
      await runWrite(otherDb, PUT, ['r', 'at-close', '{}', LATER]);
      expect(writeBatchOf(otherDb)?.open).toBe(true);
      await otherDb.destroy();
      expect(seenElsewhere(other.url.slice('sqlite:'.length), 'at-close')).toBe(true);
    } finally {
      await other.drop();
    }
  });

  describe('DurableResponse', () => {
    let server: Server;
    let origin: string;
    /** Each request writes a row named by its path, answers, then keeps the event loop busy for 300 ms. */
    let handler: (uid: string) => Promise<void>;

    beforeAll(async () => {
      server = createServer({ ServerResponse: DurableResponse }, (req, res) => {
        const uid = (req.url ?? '/').slice(1);
        void handler(uid).then(
          () => {
            res.end('written');
            // the response must not leave while this turn (and its batch) is still open
            busyWait(300);
          },
          (err: Error) => {
            res.statusCode = 500;
            res.end(err.message);
          },
        );
      });
      await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
      origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    });
    afterAll(async () => {
      await new Promise<void>((resolve) => server.close(() => resolve()));
    });

    it('a response leaves only once the writes made for it are committed', async () => {
      handler = async (uid) => {
        await runWrite(db, PUT, ['r', uid, '{}', LATER]);
      };
      // another process fetches, and on the answer looks at the database with its own connection
      const script = `
        const Database = require('better-sqlite3');
        require('node:http').get(process.argv[1] + '/durable-1', (res) => {
          const db = new Database(process.argv[2], { readonly: true });
          const row = db.prepare('select 1 from signin_progress where uid = ?').get('durable-1');
          console.log(JSON.stringify({ status: res.statusCode, committed: row !== undefined }));
          res.resume();
        });`;
      const out = await new Promise<string>((resolve, reject) => {
        execFile(process.execPath, ['-e', script, origin, file], { cwd: process.cwd() }, (err, stdout, stderr) => (err ? reject(new Error(stderr || err.message)) : resolve(stdout)));
      });
      expect(JSON.parse(out)).toEqual({ status: 200, committed: true });
    });

    it('a response whose batch fails to commit is not sent: the connection closes', async () => {
      handler = async (uid) => {
        await runWrite(db, PUT, ['r', uid, '{}', LATER]);
        await runWrite(db, sql('insert into wb_child (id, parent_id) values (?, ?)'), [uid, 'no-such-parent']);
      };
      const outcome = await new Promise<string>((resolve) => {
        const req = request(`${origin}/durable-2`, (res) => resolve(`answered ${res.statusCode}`));
        req.on('error', (err: NodeJS.ErrnoException) => resolve(`error ${err.code ?? err.message}`));
        req.end();
      });
      expect(outcome).toMatch(/^error (ECONNRESET|socket hang up)/);
      expect(batchErrors).toHaveLength(1);
      expect(seenElsewhere(file, 'durable-2')).toBe(false);
    });

    it('a response whose batch failed before it was ready (the request awaited something after writing) is not sent either', async () => {
      handler = async (uid) => {
        await runWrite(db, PUT, ['r', uid, '{}', LATER]);
        await runWrite(db, sql('insert into wb_child (id, parent_id) values (?, ?)'), [uid, 'no-such-parent']);
        // the batch commits, and fails, while this request waits (a time slice, a password hash)
        await new Promise((resolve) => setTimeout(resolve, 20));
        expect(writesPending()).toBe(false);
        expect(batchErrors).toHaveLength(1);
      };
      const outcome = await new Promise<string>((resolve) => {
        const req = request(`${origin}/durable-3`, (res) => resolve(`answered ${res.statusCode}`));
        req.on('error', (err: NodeJS.ErrnoException) => resolve(`error ${err.code ?? err.message}`));
        req.end();
      });
      expect(outcome).toMatch(/^error (ECONNRESET|socket hang up)/);
      expect(batchErrors).toHaveLength(1);
      expect(seenElsewhere(file, 'durable-3')).toBe(false);
    });
  });
});

describe('the Latchkey server', () => {
  it('answers with DurableResponse', async () => {
    const running = await startTestServer({ db: 'sqlite' });
    try {
      const kServerResponse = Object.getOwnPropertySymbols(running.server).find((s) => s.description === 'ServerResponse');
      expect(kServerResponse && (running.server as unknown as Record<symbol, unknown>)[kServerResponse]).toBe(DurableResponse);
      const res = await fetch(`${running.url}/healthz`);
      expect(res.status).toBe(200);
    } finally {
      await running.close();
    }
  });
});

describe('PostgreSQL has no write batch', () => {
  it('every statement commits on its own', async (ctx) => {
    if (!(await postgresReachable())) ctx.skip();
    const database = await freshDatabase('postgres');
    const pgDb = openDatabase(database.url);
    try {
      expect(writeBatchOf(pgDb)).toBeUndefined();
    } finally {
      await pgDb.destroy();
      await database.drop();
    }
  });
});
