/**
 * Group commit for SQLite: the writes made on knex's SQLite connection during one turn of the event
 * loop share one transaction, committed when the turn ends (`setImmediate`).
 *
 * Why: each SQLite commit in WAL mode costs a dozen system calls (WAL frame writes, shared-memory lock
 * calls) whatever it contains, and a sign-in request makes several writes in a row (a passkey verify that
 * resumes the authorization: challenge, session, grant, authorization code, interaction). Five upserts
 * in one transaction cost 52 µs each on this machine against 125 µs each on their own, and a passkey
 * sign-in costs 11-13% less server CPU (bench/README.md, "Comparing two builds").
 *
 * Guarantees kept:
 * - Every statement runs at once on the one connection, so every later read in this process sees it.
 * - No HTTP response leaves before the writes made while it was prepared are committed:
 *   `DurableResponse` (the server's response class) holds `end()` until then. A response held when a
 *   commit fails is not sent: its connection is closed, and nothing of the batch is written.
 * - A response never waits for the rest of the loop turn: once one is held, the open batches commit as
 *   soon as the current job's promise chain is done (`process.nextTick`), before the next socket's
 *   request runs. Writes of other requests that ran before it share that commit; later ones open a new
 *   batch. (Holding answers to the turn's end put a token request behind every sign-in step read in the
 *   same turn; committing early cost about 2% of a passkey flow's CPU in bench/ab.js.)
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
let waiters: Waiter[] = [];
/** The batches open right now, in any database of this process (tests open several). */
const openBatches = new Set<WriteBatch>();
let earlyCommitQueued = false;

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
 * Calls `fn` once every open batch has ended, with the error of one that failed; the batches then
 * commit as soon as the current promise chain is done. Only while `writesPending()`.
 */
export function afterCommit(fn: Waiter): void {
  waiters.push(fn);
  if (!earlyCommitQueued) {
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
  readonly #commitLater = (): void => this.commit();

  constructor(options: { onError?: (err: Error) => void } = {}) {
    this.#onError = options.onError ?? (() => {});
  }

  /** True while this batch holds a transaction open. */
  get open(): boolean {
    return this.#conn !== null;
  }

  /**
   * Call just before a write on `conn` when nothing else is using it: joins the open batch, or opens one
   * that commits when this turn of the event loop ends.
   */
  enter(conn: BatchConnection): void {
    if (this.#conn) return;
    // a transaction this batch did not open: leave it alone (the write then commits with it)
    if (conn.inTransaction) return;
    control(conn, 'BEGIN IMMEDIATE');
    this.#conn = conn;
    openBatches.add(this);
    setImmediate(this.#commitLater);
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
    if (err) this.#onError(err);
    batchEnded(err);
  }
}

/**
 * The server's response class: `end()` waits while a write batch is open, so a client never sees an
 * answer (an authorization code, a session cookie) before what it refers to is committed. When the
 * commit fails, the response is not sent and the connection is closed.
 */
export class DurableResponse<Request extends IncomingMessage = IncomingMessage> extends ServerResponse<Request> {
  override end(...args: unknown[]): this {
    if (!writesPending()) return (super.end as (...a: unknown[]) => this).apply(this, args);
    afterCommit((err) => {
      if (err) this.destroy(err);
      else (super.end as (...a: unknown[]) => this).apply(this, args);
    });
    return this;
  }
}
