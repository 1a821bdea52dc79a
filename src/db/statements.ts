import { createHash } from 'node:crypto';
import { yieldIfLong } from '../server/time-slice.js';
import { writeBatchOf, type Db } from './knex.js';
import type { BatchConnection } from './write-batch.js';

/**
 * Prepared statements for the hot paths, written once per repo as plain SQL with `?` placeholders in the
 * dialect both databases accept (unquoted snake_case identifiers, `on conflict ... do update`).
 *
 * Building a statement with knex's query builder and re-preparing it on every call costs about 100 µs of
 * event-loop time; a sign-in round runs some 30 of them (bench/README.md). Here:
 * - SQLite: better-sqlite3 statements are prepared once per connection and cached. The connection is
 *   knex's own (its pool holds exactly one): when knex is not using it, the statement runs on it at once
 *   (better-sqlite3 is synchronous, so nothing can interleave); otherwise it is checked out of the pool like
 *   any knex query, so it never slips into another caller's open transaction.
 * - PostgreSQL: a pg named prepared statement on a connection checked out of knex's pool (pg parses and
 *   plans it once per connection).
 * - Inside a knex transaction (`db` is a transaction): the same SQL through `db.raw`, on its connection.
 */
export interface Statement {
  /** SQL with `?` placeholders (SQLite and knex raw). */
  readonly text: string;
  /** The same SQL with `$1, $2, ...` placeholders (PostgreSQL). */
  readonly pgText: string;
  /** Name of the PostgreSQL prepared statement, derived from its text. */
  readonly name: string;
}

export type Param = string | number | boolean | null;
export type Row = Record<string, any>;

/** Declares a statement; call once at module level, not per query. */
export function sql(text: string): Statement {
  const normalized = text.replace(/\s+/g, ' ').trim();
  let n = 0;
  const pgText = normalized.replace(/\?/g, () => `$${++n}`);
  const name = `lk_${createHash('sha256').update(normalized).digest('hex').slice(0, 20)}`;
  return { text: normalized, pgText, name };
}

interface SqliteStatement {
  reader: boolean;
  /** False for a statement that writes (an `update ... returning` too, which reads like a query). */
  readonly: boolean;
  all(...params: unknown[]): Row[];
  get(...params: unknown[]): Row | undefined;
  run(...params: unknown[]): { changes: number };
}
interface SqliteConnection {
  prepare(text: string): SqliteStatement;
}
interface PgConnection {
  query(config: { name: string; text: string; values: Param[] }): Promise<{ rows: Row[]; rowCount: number | null }>;
}
interface TarnPool {
  numUsed(): number;
  numFree(): number;
  numPendingAcquires(): number;
  numPendingCreates(): number;
  free: Array<{ resource: unknown }>;
}
interface KnexClient {
  pool?: TarnPool;
  acquireConnection(): Promise<unknown>;
  releaseConnection(connection: unknown): Promise<unknown>;
  config: { client: string };
}

type Mode = 'all' | 'first' | 'run';
type Result = Row[] | Row | undefined | number;

const prepared = new WeakMap<SqliteConnection, Map<string, SqliteStatement>>();

function prepare(conn: SqliteConnection, st: Statement): SqliteStatement {
  let cache = prepared.get(conn);
  if (!cache) prepared.set(conn, (cache = new Map()));
  let stmt = cache.get(st.text);
  if (!stmt) cache.set(st.text, (stmt = conn.prepare(st.text)));
  return stmt;
}

const sqliteParams = (params: readonly Param[]): unknown[] => params.map((p) => (typeof p === 'boolean' ? Number(p) : p));

function runSqlite(conn: SqliteConnection, st: Statement, params: readonly Param[], mode: Mode): Result {
  return runPrepared(prepare(conn, st), params, mode);
}

function runPrepared(stmt: SqliteStatement, params: readonly Param[], mode: Mode): Result {
  const values = sqliteParams(params);
  if (mode === 'run') return stmt.run(...values).changes;
  if (mode === 'first') return stmt.get(...values);
  return stmt.all(...values);
}

/** Knex's SQLite connection when nobody holds or awaits it right now (then using it synchronously is safe). */
function idleSqliteConnection(client: KnexClient): SqliteConnection | undefined {
  const pool = client.pool;
  if (!pool || pool.numUsed() !== 0 || pool.numPendingAcquires() !== 0 || pool.numPendingCreates() !== 0 || pool.numFree() !== 1) return undefined;
  return pool.free[0].resource as SqliteConnection;
}

async function perform(db: Db, st: Statement, params: readonly Param[], mode: Mode): Promise<Result> {
  if ((db as { isTransaction?: boolean }).isTransaction) return viaKnexRaw(db, st, params, mode);
  const client = db.client as unknown as KnexClient;
  const sqlite = client.config.client === 'better-sqlite3';
  if (sqlite) {
    const idle = idleSqliteConnection(client);
    if (idle) {
      // writes share one commit per turn of the event loop (src/db/write-batch.ts); SQLite says which
      // statements write, so an `update ... returning` read with queryFirst joins the batch as well
      const stmt = prepare(idle, st);
      const batch = stmt.readonly ? undefined : writeBatchOf(db);
      batch?.enter(idle as unknown as BatchConnection);
      let result: Result;
      try {
        result = runPrepared(stmt, params, mode);
      } catch (err) {
        batch?.statementFailed(err);
        throw err;
      }
      // synchronous answers: give way to other requests when this chain has held the loop too long
      const pause = yieldIfLong();
      if (pause) await pause;
      return result;
    }
  }
  const conn = await client.acquireConnection();
  try {
    if (sqlite) return runSqlite(conn as SqliteConnection, st, params, mode);
    const result = await (conn as PgConnection).query({ name: st.name, text: st.pgText, values: params as Param[] });
    if (mode === 'run') return result.rowCount ?? 0;
    return mode === 'first' ? result.rows[0] : result.rows;
  } finally {
    await client.releaseConnection(conn);
  }
}

async function viaKnexRaw(db: Db, st: Statement, params: readonly Param[], mode: Mode): Promise<Result> {
  const result: any = await db.raw(st.text, params as Param[]);
  if (Array.isArray(result)) return mode === 'run' ? 0 : mode === 'first' ? result[0] : result; // SQLite reader
  if (Array.isArray(result?.rows)) return mode === 'run' ? (result.rowCount ?? 0) : mode === 'first' ? result.rows[0] : result.rows; // pg
  return mode === 'run' ? Number(result?.changes ?? 0) : mode === 'first' ? undefined : []; // SQLite writer
}

/** Every row the statement returns. */
export async function queryAll(db: Db, st: Statement, params: readonly Param[]): Promise<Row[]> {
  return (await perform(db, st, params, 'all')) as Row[];
}

/** The first row (write `limit 1` in the SQL), or undefined. */
export async function queryFirst(db: Db, st: Statement, params: readonly Param[]): Promise<Row | undefined> {
  return (await perform(db, st, params, 'first')) as Row | undefined;
}

/** Runs an insert / update / delete; returns how many rows it changed. */
export async function runWrite(db: Db, st: Statement, params: readonly Param[]): Promise<number> {
  return (await perform(db, st, params, 'run')) as number;
}
