import { createRequire } from 'node:module';
import { Worker } from 'node:worker_threads';
import { isSqlite, type Db } from './knex.js';

/**
 * The worker's program: its own better-sqlite3 connection to the same file, running a PASSIVE checkpoint
 * (it never waits for, nor blocks, the server's writes) every `intervalMs`. Plain JavaScript evaluated by
 * the worker, so it runs the same from dist/ and from the TypeScript sources under the tests.
 */
const WORKER = `
const { workerData, parentPort } = require('node:worker_threads');
const Database = require(workerData.driver);
let db;
try {
  db = new Database(workerData.filename, { fileMustExist: true });
  db.pragma('busy_timeout = 0');
} catch (err) {
  // the database went away before we started: nothing to checkpoint (the server's safety net remains)
  parentPort.postMessage({ failed: String((err && err.message) || err) });
  process.exit(0);
}
const timer = setInterval(() => {
  try {
    db.pragma('wal_checkpoint(PASSIVE)');
  } catch {
    // busy or locked this time: the next tick (or the server's own autocheckpoint) catches up
  }
}, workerData.intervalMs);
parentPort.on('message', () => {
  clearInterval(timer);
  db.close();
  parentPort.close();
});
`;

/**
 * SQLite WAL checkpoints off the event loop. By default SQLite checkpoints inside the commit that makes
 * the WAL reach 1000 pages: on the server's only connection, i.e. on the event loop, copying pages and
 * syncing the file (stalls of tens of ms under a burst of writes). A worker thread checkpoints instead,
 * once a second, so the WAL is usually reset long before the server's own autocheckpoint (kept, raised
 * to `safetyPages`) would run: that remains as a safety net for when the worker cannot keep up.
 *
 * Once a second rather than five times: a checkpoint copies each page once however often it changed
 * since the last one, and the pages a sign-in writes (the rightmost leaves of the tables and of the
 * expiry index) change with every flow. In alternating A/B runs a passkey flow cost 3-5% less server CPU
 * (bench/README.md). Under that load the WAL grows to some 8,000 pages (32 MB) between checkpoints,
 * hence the safety net at 16,000.
 */
export class WalCheckpointer {
  #exited = false;

  private constructor(private readonly worker: Worker) {
    worker.once('exit', () => (this.#exited = true));
  }

  /** Starts it for a SQLite file database; undefined for PostgreSQL or an in-memory database. */
  static async start(db: Db, options: { intervalMs?: number; safetyPages?: number; onError?: (err: Error) => void } = {}): Promise<WalCheckpointer | undefined> {
    if (!isSqlite(db)) return undefined;
    const filename = (db.client.config.connection as { filename?: string }).filename;
    if (!filename || filename === ':memory:') return undefined;
    await db.raw(`pragma wal_autocheckpoint = ${Math.max(1000, Math.floor(options.safetyPages ?? 16000))}`);
    const driver = createRequire(import.meta.url).resolve('better-sqlite3');
    const worker = new Worker(WORKER, { eval: true, workerData: { driver, filename, intervalMs: options.intervalMs ?? 1000 } });
    worker.on('message', (m: { failed?: string }) => {
      if (m.failed) options.onError?.(new Error(`WAL checkpoints: ${m.failed}`));
    });
    // never takes the server down: without the worker, the server's own autocheckpoint still runs
    worker.on('error', (err) => options.onError?.(err));
    worker.unref();
    return new WalCheckpointer(worker);
  }

  async stop(): Promise<void> {
    if (this.#exited) return;
    const exited = new Promise<void>((resolve) => this.worker.once('exit', () => resolve()));
    this.worker.postMessage('stop');
    await exited;
  }
}
