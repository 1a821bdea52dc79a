import type { Knex } from 'knex';
import type { Db } from './knex.js';

/**
 * Rows per statement of a purge. On SQLite a statement runs on the event loop (better-sqlite3 is
 * synchronous): deleting 500 expired rows of `oidc_payloads` with its indexes took 10–25 ms on the
 * benchmark machine, 100 rows about 2 ms.
 */
export const PURGE_BATCH_ROWS = 100;

/**
 * Deletes the rows of `table` that `where` selects, `batchSize` at a time (by primary key `key`), and
 * gives the event loop a turn between batches. A purge deletes whatever expired since the last one: in
 * one statement, 10,000 expired authorization codes held the event loop for 160 ms on SQLite, with no
 * request answered meanwhile. Each batch commits on its own, so a purge cut short (a restart) has
 * removed what it removed and the next one goes on. Returns how many rows went.
 */
export async function deleteInBatches(
  db: Db,
  table: string,
  key: string[],
  where: (query: Knex.QueryBuilder) => void,
  batchSize = PURGE_BATCH_ROWS,
): Promise<number> {
  let total = 0;
  for (;;) {
    const batch = db(table).select(key).where(where).limit(batchSize);
    const rows = db(table);
    const removed = await (key.length === 1 ? rows.whereIn(key[0]!, batch) : rows.whereIn(key, batch)).delete();
    total += removed;
    if (removed < batchSize) return total;
    await new Promise<void>((resolve) => setImmediate(resolve));
  }
}
