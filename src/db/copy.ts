import { LatchkeyError } from '../errors.js';
import { isSqlite, migrate, migrationStatus, type Db } from './knex.js';

/**
 * Copies every row of one Latchkey database into another (`latchkey db copy`): the way from the
 * embedded SQLite file a deployment started on to PostgreSQL (or back, for a local copy of production).
 *
 * - The source must be at the current schema (`latchkey migrate` first) and is only read.
 * - The target is migrated to the same schema and must hold no rows at all: the copy never merges.
 * - Tables go parents first (foreign keys read from the target's catalogue), each in pages ordered by
 *   its primary key, all in one transaction: a failure leaves the target as empty as it was.
 * - Values keep their meaning across the two engines: SQLite keeps booleans as 0 and 1, which
 *   PostgreSQL reads as false and true; epoch milliseconds are bigints on both. Serial columns
 *   (security_events.id) continue after the highest copied value.
 * - Nothing is decrypted: signing keys, TOTP and connection secrets stay sealed with LATCHKEY_SECRET,
 *   so the target needs the same secret.
 */
const MIGRATION_TABLES = new Set(['knex_migrations', 'knex_migrations_lock']);
const PAGE = 500;

export interface CopyProgress {
  table: string;
  copied: number;
  total: number;
}

export interface CopyResult {
  tables: Array<{ table: string; rows: number }>;
  rows: number;
}

async function tablesOf(db: Db): Promise<string[]> {
  const names: string[] = isSqlite(db)
    ? ((await db.raw("select name from sqlite_master where type = 'table' and name not like 'sqlite_%'")) as Array<{ name: string }>).map((r) => r.name)
    : ((await db.raw('select tablename from pg_tables where schemaname = current_schema()')) as { rows: Array<{ tablename: string }> }).rows.map((r) => r.tablename);
  return names.filter((n) => !MIGRATION_TABLES.has(n)).sort();
}

/** Child table -> the tables its foreign keys point at. */
async function parentsOf(db: Db, tables: string[]): Promise<Map<string, Set<string>>> {
  const parents = new Map(tables.map((t) => [t, new Set<string>()]));
  if (isSqlite(db)) {
    for (const table of tables) {
      for (const fk of (await db.raw(`pragma foreign_key_list(${quoteSqlite(table)})`)) as Array<{ table: string }>) parents.get(table)!.add(fk.table);
    }
  } else {
    const { rows } = (await db.raw(
      `select child.relname as child, parent.relname as parent
         from pg_constraint c
         join pg_class child on child.oid = c.conrelid
         join pg_class parent on parent.oid = c.confrelid
        where c.contype = 'f' and c.connamespace = current_schema()::regnamespace`,
    )) as { rows: Array<{ child: string; parent: string }> };
    for (const { child, parent } of rows) parents.get(child)?.add(parent);
  }
  return parents;
}

const quoteSqlite = (name: string) => `"${name.replace(/"/g, '""')}"`;

/** Tables with every table they refer to before them (a table referring to itself is fine). */
function parentsFirst(tables: string[], parents: Map<string, Set<string>>): string[] {
  const ordered: string[] = [];
  const state = new Map<string, 'visiting' | 'done'>();
  const visit = (table: string) => {
    if (state.get(table) === 'done') return;
    if (state.get(table) === 'visiting') throw new LatchkeyError('copy_failed', `the foreign keys of table ${table} form a cycle: it cannot be copied parents first`, 500);
    state.set(table, 'visiting');
    for (const parent of parents.get(table) ?? []) if (parent !== table && parents.has(parent)) visit(parent);
    state.set(table, 'done');
    ordered.push(table);
  };
  for (const table of tables) visit(table);
  return ordered;
}

async function primaryKeyOf(db: Db, table: string): Promise<string[]> {
  if (isSqlite(db)) {
    const columns = (await db.raw(`pragma table_info(${quoteSqlite(table)})`)) as Array<{ name: string; pk: number }>;
    const pk = columns.filter((c) => c.pk > 0).sort((a, b) => a.pk - b.pk).map((c) => c.name);
    return pk.length ? pk : columns.map((c) => c.name);
  }
  const { rows } = (await db.raw(
    `select a.attname as name
       from pg_index i
       join pg_attribute a on a.attrelid = i.indrelid and a.attnum = any(i.indkey)
      where i.indrelid = ?::regclass and i.indisprimary
      order by array_position(i.indkey, a.attnum)`,
    [table],
  )) as { rows: Array<{ name: string }> };
  if (rows.length) return rows.map((r) => r.name);
  const { rows: all } = (await db.raw('select column_name as name from information_schema.columns where table_schema = current_schema() and table_name = ? order by ordinal_position', [table])) as { rows: Array<{ name: string }> };
  return all.map((r) => r.name);
}

async function countRows(db: Db, table: string): Promise<number> {
  const [row] = (await db(table).count({ n: '*' })) as Array<{ n: number | string }>;
  return Number(row?.n ?? 0);
}

/** After rows with explicit ids went into a PostgreSQL serial column, its sequence continues after them. */
async function advanceSequences(trx: Db, table: string): Promise<void> {
  const { rows } = (await trx.raw(
    "select column_name as name from information_schema.columns where table_schema = current_schema() and table_name = ? and column_default like 'nextval(%'",
    [table],
  )) as { rows: Array<{ name: string }> };
  for (const { name } of rows) {
    await trx.raw(`select setval(pg_get_serial_sequence(?, ?), greatest(coalesce((select max(??) from ??), 0), 1), (select count(*) > 0 from ??))`, [table, name, name, table, table]);
  }
}

export async function copyDatabase(source: Db, target: Db, options: { onProgress?: (p: CopyProgress) => void } = {}): Promise<CopyResult> {
  const { pending } = await migrationStatus(source);
  if (pending.length) {
    throw new LatchkeyError('source_not_migrated', `the source database lacks ${pending.length} migration${pending.length > 1 ? 's' : ''} (${pending.join(', ')}): run latchkey migrate against it first (with its DATABASE_URL), then copy`, 400);
  }
  await migrate(target);
  const tables = await tablesOf(target);
  const sourceTables = new Set(await tablesOf(source));
  const missing = tables.filter((t) => !sourceTables.has(t));
  if (missing.length) throw new LatchkeyError('copy_failed', `the source database has no table ${missing.join(', ')}: is it a Latchkey database?`, 400);
  for (const table of tables) {
    const n = await countRows(target, table);
    if (n > 0) throw new LatchkeyError('target_not_empty', `the target database is not empty (table ${table} has ${n} row${n > 1 ? 's' : ''}): copy into a new, empty database; nothing was written`, 409);
  }
  const order = parentsFirst(tables, await parentsOf(target, tables));
  const counted: Array<{ table: string; rows: number }> = [];
  await target.transaction(async (trx) => {
    for (const table of order) {
      const total = await countRows(source, table);
      const key = await primaryKeyOf(source, table);
      let copied = 0;
      options.onProgress?.({ table, copied, total });
      while (copied < total) {
        const rows = (await source(table)
          .select('*')
          .orderBy(key.map((column) => ({ column })))
          .limit(PAGE)
          .offset(copied)) as Array<Record<string, unknown>>;
        if (rows.length === 0) break;
        await trx.batchInsert(table, rows, PAGE);
        copied += rows.length;
        options.onProgress?.({ table, copied, total });
      }
      if (!isSqlite(trx)) await advanceSequences(trx, table);
      counted.push({ table, rows: copied });
    }
  });
  return { tables: counted, rows: counted.reduce((sum, t) => sum + t.rows, 0) };
}
