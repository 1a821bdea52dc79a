/**
 * Group commit for SQLite: the writes made on knex's SQLite connection share one transaction, committed
 * at the end of the event loop's next turn (two `setImmediate` hops), so that requests already waiting
 * on their sockets, which the next poll delivers, write into the same commit.
 *
 * Why: each SQLite commit in WAL mode costs a dozen system calls (WAL frame writes, shared-memory lock
 * calls) and a scan of the page cache whatever it contains, and a sign-in request makes several writes
 * in a row (a passkey verify that resumes the authorization: challenge, session, grant, authorization
 * code, interaction). Five upserts in one transaction cost 52 µs each on this machine against 125 µs
 * each on their own. Under load, fewer and larger commits also write fewer WAL frames per request: the
 * pages every write touches (the table's last leaf, the tail of the expiry index, the interior pages)
 * go out once per commit (bench/README.md, "Comparing two builds").
 *
 * Guarantees kept:
 * - Every statement runs at once on the one connection, so every later read in this process sees it.
 * - No HTTP response leaves before the writes made while it was prepared are committed:
 *   `DurableResponse` (the server's response class) holds `end()` until then. A response held when a
 *   commit fails is not sent: its connection is closed, and nothing of the batch is written. Nor is a
 *   response whose request was under way when any batch failed: a request that wrote and then awaited
 *   something (a time slice, a hash) may find its batch already ended, and its writes undone.
 * - Responses are not held long: once the batch has been open for `HOLD_MS`, a response that is ready
 *   makes the open batches commit as soon as the current job's promise chain is done
 *   (`process.nextTick`), before the next socket's request runs. (Committing as soon as any response
 *   was ready gave about one commit per request.) An idle server commits at once: the next turn's poll
 *   finds nothing and its check phase commits.
 * - A knex query or transaction never runs inside a batch: the batch commits the moment knex asks its
 *   pool for the connection, and before the pool closes.
 * - A statement that fails inside a batch is undone alone (SQLite's statement rollback), as it would be
 *   on its own; the batch goes on. Should SQLite roll back the whole transaction instead (disk full,
 *   I/O error), the batch fails as a whole.
 *
 * PostgreSQL is untouched: there every statement commits on its own, on a pooled connection.
 */
import { ServerResponse, type IncomingMessage } from 'node:http';

/** The part of a better-sqlite3 connection a batch needs. */
export interface BatchConnection {
  prepare(sql: string): { run(): unknown };
  readonly inTransaction: boolean;
}

type Control = 'BEGIN IMMEDIATE' | 'COMMIT' | 'ROLLBACK';
/** BEGIN / COMMIT / ROLLBACK prepared once per connection: `exec` would parse its SQL again on every call. */
const controls = new WeakMap<BatchConnection, Map<Control, { run(): unknown }>>();
function control(conn: BatchConnection, sql: Control): void {
  let mine = controls.get(conn);
  if (!mine) controls.set(conn, (mine = new Map()));
  let statement = mine.get(sql);
  if (!statement) mine.set(sql, (statement = conn.prepare(sql)));
  statement.run();
}

type Waiter = (err: Error | null) => void;

/** A failure of a batch that ended while others were still open. */
let failure: Error | null = null;
/** How many batches have failed in this process; a response compares it with its count at the start. */
let failedBatches = 0;
let waiters: Waiter[] = [];
/** The batches open right now, in any database of this process (tests open several). */
const openBatches = new Set<WriteBatch>();
let earlyCommitQueued = false;
/** When the oldest open batch began (`performance.now()`). */
let openedAt = 0;

/**
 * How long a batch may keep a ready response waiting before it commits early (ms). Measured with
 * bench/ab.js: holding responses to the end of the next turn cut a passkey sign-in's server CPU by
 * 10-17%; committing as soon as a response was ready (the earlier rule) gave one commit per request.
 */
export const HOLD_MS = 2;

function commitOpenBatches(): void {
  earlyCommitQueued = false;
  for (const batch of [...openBatches]) batch.commit();
}

function batchEnded(err: Error | null): void {
  if (err) failure ??= err;
  if (openBatches.size > 0) return;
  const done = waiters;
  const result = failure;
  waiters = [];
  failure = null;
  for (const waiter of done) waiter(result);
}

/** True while some write batch is open: a response finished now must wait for its commit. */
export function writesPending(): boolean {
  return openBatches.size > 0;
}

/**
 * Calls `fn` once every open batch has ended, with the error of one that failed: at the end of the
 * next turn, or, when the oldest batch has been open for `HOLD_MS` already, as soon as the current
 * promise chain is done. Only while `writesPending()`.
 */
export function afterCommit(fn: Waiter): void {
  waiters.push(fn);
  if (!earlyCommitQueued && performance.now() - openedAt >= HOLD_MS) {
    earlyCommitQueued = true;
    process.nextTick(commitOpenBatches);
  }
}

export class WriteBatchError extends Error {
  override readonly name = 'WriteBatchError';
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
  }
}

export class WriteBatch {
  #conn: BatchConnection | null = null;
  readonly #onError: (err: Error) => void;
  /** Counts the transactions this batch opened: a hop scheduled for one that already ended does nothing. */
  #opened = 0;

  constructor(options: { onError?: (err: Error) => void } = {}) {
    this.#onError = options.onError ?? (() => {});
  }

  /** True while this batch holds a transaction open. */
  get open(): boolean {
    return this.#conn !== null;
  }

  /**
   * Call just before a write on `conn` when nothing else is using it: joins the open batch, or opens one
   * that commits when the next turn of the event loop ends.
   */
  enter(conn: BatchConnection): void {
    if (this.#conn) return;
    // a transaction this batch did not open: leave it alone (the write then commits with it)
    if (conn.inTransaction) return;
    control(conn, 'BEGIN IMMEDIATE');
    this.#conn = conn;
    if (openBatches.size === 0) openedAt = performance.now();
    openBatches.add(this);
    const opened = ++this.#opened;
    // two hops: the commit comes after the next turn's poll
    setImmediate(() => setImmediate(() => opened === this.#opened && this.commit()));
  }

  /** Call when a statement inside the batch threw: if SQLite rolled the whole transaction back, the batch failed. */
  statementFailed(cause: unknown): void {
    const conn = this.#conn;
    if (!conn || conn.inTransaction) return;
    this.#end(new WriteBatchError('SQLite rolled back a batch of writes after a statement failed', { cause }));
  }

  /** Commits the open batch now (no-op when none is open). */
  commit(): void {
    const conn = this.#conn;
    if (!conn) return;
    if (!conn.inTransaction) {
      this.#end(new WriteBatchError('the batch of writes was rolled back before its commit'));
      return;
    }
    try {
      control(conn, 'COMMIT');
      this.#end(null);
    } catch (cause) {
      // a failed COMMIT (for example a deferred constraint) leaves the transaction open: undo all of it
      try {
        if (conn.inTransaction) control(conn, 'ROLLBACK');
      } catch {
        // the connection is unusable; better-sqlite3 reports that on its next statement
      }
      this.#end(new WriteBatchError('the commit of a batch of writes failed; none of them was written', { cause }));
    }
  }

  #end(err: Error | null): void {
    this.#conn = null;
    openBatches.delete(this);
    if (err) {
      failedBatches++;
      this.#onError(err);
    }
    batchEnded(err);
  }
}

/**
 * The server's response class: `end()` waits while a write batch is open, so a client never sees an
 * answer (an authorization code, a session cookie) before what it refers to is committed. When the
 * commit fails, or a batch failed at any time since the request came in, the response is not sent and
 * the connection is closed.
 */
export class DurableResponse<Request extends IncomingMessage = IncomingMessage> extends ServerResponse<Request> {
  readonly #failedBatchesAtStart = failedBatches;

  override end(...args: unknown[]): this {
    if (failedBatches !== this.#failedBatchesAtStart) {
      this.destroy(new WriteBatchError('a batch of writes failed while this response was prepared; none of its writes was kept'));
      return this;
    }
    if (!writesPending()) return (super.end as (...a: unknown[]) => this).apply(this, args);
    afterCommit((err) => {
      if (err) this.destroy(err);
      else (super.end as (...a: unknown[]) => this).apply(this, args);
    });
    return this;
  }
}
