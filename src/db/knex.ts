import { mkdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import knexFactory, { type Knex } from 'knex';
import pg from 'pg';
import type { Logger } from 'pino';
import { projectRoot } from './paths.js';
import { WriteBatch } from './write-batch.js';

// PostgreSQL returns BIGINT as strings by default; our bigints are epoch milliseconds, safe as numbers.
pg.types.setTypeParser(20, (value: string) => Number(value));

export type Db = Knex;

export function isSqlite(db: Db): boolean {
  return db.client.config.client === 'better-sqlite3';
}

/** The events of knex's pool (tarn) that a write batch listens to; tarn calls them synchronously. */
interface PoolEvents {
  on(event: 'acquireRequest' | 'poolDestroyRequest', listener: () => void): unknown;
}

const batches = new WeakMap<object, WriteBatch>();

/** The group-commit batch of a SQLite database opened by `openDatabase` (none for PostgreSQL). */
export function writeBatchOf(db: Db): WriteBatch | undefined {
  return batches.get(db.client);
}

/**
 * Gives a SQLite database its write batch (src/db/write-batch.ts). Before knex takes the connection out
 * of its pool, for a query of its own or a transaction, and before the pool closes, the batch commits.
 */
function attachWriteBatch(db: Db, onError: ((err: Error) => void) | undefined): void {
  const batch = new WriteBatch({ onError });
  const pool = (db.client as unknown as { pool?: PoolEvents }).pool;
  if (!pool) return;
  pool.on('acquireRequest', () => batch.commit());
  pool.on('poolDestroyRequest', () => batch.commit());
  batches.set(db.client, batch);
}

function knexLog(log: Logger) {
  const text = (m: unknown) => (typeof m === 'string' ? m : String((m as Error)?.message ?? m));
  return {
    warn: (m: unknown) => log.warn({ source: 'knex' }, text(m)),
    error: (m: unknown) => log.error({ source: 'knex' }, text(m)),
    deprecate: (m: unknown) => log.warn({ source: 'knex' }, text(m)),
    debug: (m: unknown) => log.debug({ source: 'knex' }, text(m)),
  };
}

/**
 * Opens the database named by a `sqlite:PATH` or `postgres://` URL.
 *
 * `compileSqlOnError: false`: a failed query's error message carries its SQL with `?` placeholders, not
 * with the values inlined (knex's default), so an error that reaches the log never shows a password
 * hash, a token payload or an encrypted key that was bound to the statement.
 */
export function openDatabase(
  url: string,
  options: { pool?: { min?: number; max?: number }; onWriteBatchError?: (err: Error) => void; log?: Logger } = {},
): Db {
  // knex's own messages ("Acquire connection error: <stack>") otherwise go to stdout through console.log,
  // in the middle of the JSON log lines and of the CLI's JSON output
  const log = options.log ? knexLog(options.log) : undefined;
  if (url.startsWith('sqlite:')) {
    const filename = url.slice('sqlite:'.length);
    if (filename !== ':memory:') mkdirSync(dirname(filename), { recursive: true });
    const db = knexFactory({
      client: 'better-sqlite3',
      connection: { filename },
      useNullAsDefault: true,
      compileSqlOnError: false,
      ...(log ? { log } : {}),
      // better-sqlite3 is synchronous: one connection serialises writes the way SQLite wants them.
      pool: {
        min: 1,
        max: 1,
        afterCreate(conn: { pragma: (s: string) => unknown }, done: (err: Error | null, conn: unknown) => void) {
          try {
            conn.pragma('journal_mode = WAL');
            conn.pragma('synchronous = NORMAL');
            conn.pragma('busy_timeout = 5000');
            conn.pragma('foreign_keys = ON');
            done(null, conn);
          } catch (err) {
            done(err as Error, conn);
          }
        },
      },
    });
    attachWriteBatch(db, options.onWriteBatchError);
    return db;
  }
  return knexFactory({
    client: 'pg',
    connection: url,
    compileSqlOnError: false,
    ...(log ? { log } : {}),
    pool: { min: options.pool?.min ?? 0, max: options.pool?.max ?? 10 },
  });
}

export function migrationConfig(): Knex.MigratorConfig {
  return {
    directory: join(projectRoot(), 'migrations'),
    loadExtensions: ['.js'],
    tableName: 'knex_migrations',
  };
}

/** The migrations the database has and the ones it still needs, by file name. */
export async function migrationStatus(db: Db): Promise<{ applied: string[]; pending: string[] }> {
  const [completed, pending] = (await db.migrate.list(migrationConfig())) as [Array<{ name: string } | string>, Array<{ file: string } | string>];
  return {
    applied: completed.map((m) => (typeof m === 'string' ? m : m.name)),
    pending: pending.map((m) => (typeof m === 'string' ? m : m.file)),
  };
}

/** Applies every pending migration; safe to call from several instances at once. */
export async function migrate(db: Db): Promise<string[]> {
  const [, applied] = (await db.migrate.latest(migrationConfig())) as [number, string[]];
  return applied;
}

export async function ping(db: Db): Promise<void> {
  await db.raw('select 1');
}

export const now = (): number => Date.now();
