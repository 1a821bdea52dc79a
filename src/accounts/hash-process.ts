import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { setPriority } from 'node:os';
import { pathToFileURL } from 'node:url';
import { LatchkeyError } from '../errors.js';

/**
 * The program of the helper process: argon2 hash / verify requests in, answers out, over the IPC channel.
 * It is plain JavaScript run with `node -e` (so it works the same from the compiled dist/ and from the
 * TypeScript sources under the tests); argv[1] is the file URL of the argon2 package it uses, argv[2]
 * that of bcryptjs, loaded on first use (only passwords imported with a bcrypt hash need it).
 * It exits when its parent goes away (the channel closes).
 */
const HELPER = `
const argon2 = await import(process.argv[1]);
let bcrypt;
const verifyBcrypt = async (hash, password) => {
  bcrypt ??= (await import(process.argv[2])).default;
  return bcrypt.compare(password, hash);
};
process.on('message', async (m) => {
  try {
    const value =
      m.op === 'hash' ? await argon2.hash(m.password, m.options) : m.op === 'verify-bcrypt' ? await verifyBcrypt(m.hash, m.password) : await argon2.verify(m.hash, m.password);
    process.send({ id: m.id, value });
  } catch (err) {
    process.send({ id: m.id, error: String((err && err.message) || err) });
  }
});
process.on('disconnect', () => process.exit(0));
process.send({ ready: true });
`;

export interface HashRequest {
  /** `verify-bcrypt`: a bcrypt hash imported from another system (src/accounts/imported-hash.ts). */
  op: 'hash' | 'verify' | 'verify-bcrypt';
  password: string;
  hash?: string;
  options?: Record<string, unknown>;
}

/** What argon2 itself refused (a malformed hash, bad options), as opposed to the helper being unavailable. */
export class Argon2Error extends Error {}

interface Pending {
  resolve(value: unknown): void;
  reject(err: Error): void;
}

/**
 * util-linux's `chrt`, which starts the helper under the SCHED_IDLE scheduling policy: it then runs only on
 * CPU time nothing else wants, and a woken event loop takes its core at once. With plain nice 19 the
 * scheduler still gives the hashing a slice now and then while the event loop waits, which shows as
 * latency spikes of token requests during a burst of sign-ins. Absent (not Linux, a minimal image):
 * the helper runs at nice 19 alone.
 */
const CHRT = process.platform === 'linux' ? ['/usr/bin/chrt', '/bin/chrt'].find((p) => existsSync(p)) : undefined;

/**
 * `idle`: SCHED_IDLE (through chrt) and nice 19, as below. `normal`: the helper keeps our own priority; for
 * a host whose cores other processes keep busy, where an idle-priority helper gets almost no CPU time
 * (measured on a 2-core machine at load 10: a verification took 3-12 s at idle priority, 0.3-0.5 s at normal).
 */
export type HashPriority = 'idle' | 'normal';

/**
 * Runs argon2 in a separate helper process at the lowest CPU priority (SCHED_IDLE where `chrt` is
 * available, and nice 19). A burst of sign-ins then cannot take the cores from the event loop, and from
 * the libuv threads signing tokens: the scheduler always prefers them to the hashing. The caller caps concurrency (PasswordHasher's semaphore); the
 * helper's thread pool is sized to that cap.
 *
 * With priority `normal` it runs at our own priority instead (HashPriority).
 *
 * The helper is started on first use and again after it dies; requests in flight when it dies fail
 * with `hasher_unavailable` (never as a wrong password). It does not keep the server alive: its handles
 * are referenced only while requests are in flight.
 */
export class HashProcess {
  readonly #threads: number;
  readonly #priority: HashPriority;
  #child: ChildProcess | undefined;
  #ready: Promise<ChildProcess> | undefined;
  readonly #pending = new Map<number, Pending>();
  #nextId = 1;
  #closed = false;
  /** Cleared when the helper could not be started through chrt (then it starts without it). */
  #viaChrt: boolean;

  constructor(threads: number, priority: HashPriority = 'idle') {
    this.#threads = Math.max(1, threads);
    this.#priority = priority;
    this.#viaChrt = priority === 'idle' && CHRT !== undefined;
  }

  /** The helper's process id, while it runs. */
  get pid(): number | undefined {
    return this.#child?.pid;
  }

  async run(request: HashRequest): Promise<unknown> {
    if (this.#closed) throw unavailable('the password hasher has been shut down');
    const child = await this.#start();
    const id = this.#nextId++;
    return new Promise((resolve, reject) => {
      this.#pending.set(id, { resolve, reject });
      this.#ref(child);
      child.send({ id, ...request }, (err) => {
        if (err && this.#pending.delete(id)) reject(unavailable(`could not reach the password hashing process: ${err.message}`));
      });
    });
  }

  /** Ends the helper (requests in flight fail). */
  async close(): Promise<void> {
    this.#closed = true;
    const child = this.#child;
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    await new Promise<void>((resolve) => {
      child.once('exit', () => resolve());
      child.kill('SIGTERM');
    });
  }

  #start(): Promise<ChildProcess> {
    this.#ready ??= new Promise<ChildProcess>((resolve, reject) => {
      const packageUrl = (name: string) => pathToFileURL(createRequire(import.meta.url).resolve(name)).href;
      const [argon2Url, bcryptUrl] = [packageUrl('argon2'), packageUrl('bcryptjs')];
      const viaChrt = this.#viaChrt;
      const args = ['--input-type=module', '-e', HELPER, argon2Url, bcryptUrl];
      const child = spawn(viaChrt ? CHRT! : process.execPath, viaChrt ? ['--idle', '0', process.execPath, ...args] : args, {
        // Only what the helper needs: the pool size for the hashing cap (and no secrets from our environment).
        env: { UV_THREADPOOL_SIZE: String(Math.max(4, this.#threads)) },
        stdio: ['ignore', 'ignore', 'inherit', 'ipc'],
      });
      this.#child = child;
      let started = false;
      let settled = false;
      // chrt refused or failed (for example a seccomp profile that forbids sched_setscheduler): start without it
      const withoutChrt = (): boolean => {
        if (started || settled || !viaChrt || this.#closed) return false;
        settled = true;
        this.#viaChrt = false;
        this.#ready = undefined;
        this.#start().then(resolve, reject);
        return true;
      };
      child.on('message', (m: { id?: number; ready?: boolean; value?: unknown; error?: string }) => {
        if (m.ready) {
          started = true;
          if (this.#priority === 'idle') {
            try {
              setPriority(child.pid!, 19);
            } catch {
              // not permitted on this system: hashing still works, at normal priority
            }
          }
          this.#unrefIfIdle(child);
          resolve(child);
          return;
        }
        const pending = m.id === undefined ? undefined : this.#pending.get(m.id);
        if (!pending) return;
        this.#pending.delete(m.id!);
        if (m.error !== undefined) pending.reject(new Argon2Error(m.error));
        else pending.resolve(m.value);
        this.#unrefIfIdle(child);
      });
      child.on('error', (err) => {
        if (this.#child === child) {
          this.#child = undefined;
          this.#ready = undefined;
        }
        if (withoutChrt()) return;
        if (!started) reject(unavailable(`could not start the password hashing process: ${err.message}`));
      });
      child.on('exit', (code, signal) => {
        if (this.#child === child) {
          this.#child = undefined;
          this.#ready = undefined;
        }
        const why = `the password hashing process stopped (${signal ?? `exit code ${code}`})`;
        if (withoutChrt()) return;
        if (!started) reject(unavailable(why));
        for (const [id, pending] of this.#pending) {
          this.#pending.delete(id);
          pending.reject(unavailable(why));
        }
      });
    });
    return this.#ready;
  }

  #ref(child: ChildProcess): void {
    child.ref();
    (child.channel as { ref?: () => void } | undefined)?.ref?.();
  }

  #unrefIfIdle(child: ChildProcess): void {
    if (this.#pending.size > 0) return;
    child.unref();
    (child.channel as { unref?: () => void } | undefined)?.unref?.();
  }
}

const unavailable = (message: string) => new LatchkeyError('hasher_unavailable', message, 503);
