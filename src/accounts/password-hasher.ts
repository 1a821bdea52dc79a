import { randomBytes } from 'node:crypto';
import { availableParallelism } from 'node:os';
import { argon2id } from 'argon2';
import { Argon2Error, HashProcess, type HashPriority, type HashRequest } from './hash-process.js';
import { isBcryptHash } from './imported-hash.js';
import { normalizePassword } from './password-policy.js';
import { Semaphore } from './semaphore.js';

export interface PasswordHasherOptions {
  /** KiB of memory per hash. */
  memoryCost: number;
  /** Passes over memory. */
  timeCost: number;
  /** Lanes. */
  parallelism: number;
  /** Hash/verify operations allowed at once (default: `os.availableParallelism()`). */
  maxConcurrent?: number;
  /** CPU priority of the helper process (HashProcess; default `idle`). */
  priority?: HashPriority;
}

const ARGON2_VERSION = 0x13;
const PHC = /^\$(argon2id|argon2i|argon2d)(?:\$v=(\d+))?\$([^$]+)\$[A-Za-z0-9+/]+\$[A-Za-z0-9+/]+$/;

export interface Argon2Parameters {
  type: 'argon2id' | 'argon2i' | 'argon2d';
  version: number;
  memoryCost: number;
  timeCost: number;
  parallelism: number;
}

/** Reads the variant and parameters of an argon2 PHC string (parameters in any order); null when malformed. */
export function parseArgon2Hash(hash: string): Argon2Parameters | null {
  const match = typeof hash === 'string' ? PHC.exec(hash) : null;
  if (!match) return null;
  const params = new Map(match[3].split(',').map((kv) => kv.split('=', 2) as [string, string]));
  const num = (k: string): number => (/^\d+$/.test(params.get(k) ?? '') ? Number(params.get(k)) : NaN);
  const [memoryCost, timeCost, parallelism] = [num('m'), num('t'), num('p')];
  if (![memoryCost, timeCost, parallelism].every(Number.isSafeInteger)) return null;
  // A missing version field means Argon2 1.0 (0x10).
  const version = match[2] === undefined ? 0x10 : Number(match[2]);
  return { type: match[1] as Argon2Parameters['type'], version, memoryCost, timeCost, parallelism };
}

/** Standard base64 without padding, as PHC strings use. */
const b64 = (bytes: Buffer): string => bytes.toString('base64').replace(/=+$/, '');

/**
 * Argon2id password hashing. The hashing runs in a helper process at the lowest CPU priority
 * (HashProcess), so that a burst of sign-ins cannot starve the event loop or the libuv threads that
 * sign tokens; a semaphore caps how many hashes compute at once (default: one per core).
 * Passwords are NFKC-normalised before hashing and verifying.
 */
export class PasswordHasher {
  readonly #params: { memoryCost: number; timeCost: number; parallelism: number };
  readonly #limit: Semaphore;
  readonly #process: HashProcess;
  /** Never matches any password, but costs exactly one verification at the configured parameters. */
  readonly #dummyHash: string;
  /** Per bcrypt cost, a hash that never matches (see `verifyBcryptDummy`). */
  readonly #bcryptDummies = new Map<number, string>();
  /** Verifications run so far, by algorithm (diagnostics, tests). */
  readonly verifications = { argon2: 0, bcrypt: 0 };

  constructor(opts: PasswordHasherOptions) {
    this.#params = { memoryCost: opts.memoryCost, timeCost: opts.timeCost, parallelism: opts.parallelism };
    this.#limit = new Semaphore(opts.maxConcurrent ?? availableParallelism());
    this.#process = new HashProcess(this.#limit.max, opts.priority);
    const { memoryCost: m, timeCost: t, parallelism: p } = this.#params;
    this.#dummyHash = `$argon2id$v=${ARGON2_VERSION}$m=${m},t=${t},p=${p}$${b64(randomBytes(16))}$${b64(randomBytes(32))}`;
  }

  /** Hashes a password into a PHC string (`$argon2id$v=19$m=...,p=...,t=...$salt$hash`). */
  hash(password: string): Promise<string> {
    const input = normalizePassword(password);
    return this.#limit.run(async () => {
      const hash = await this.#process.run({ op: 'hash', password: input, options: { type: argon2id, ...this.#params } });
      return hash as string;
    });
  }

  /**
   * True when `password` matches `hash`. A missing, malformed or unknown hash gives false, after the
   * same work as a real verification so that it cannot be told apart by timing. Throws only when the
   * hashing process is unavailable (`hasher_unavailable`), never mistaking that for a wrong password.
   *
   * Besides argon2, a bcrypt hash imported from another system (src/accounts/imported-hash.ts) is
   * checked against the password as typed, not NFKC-normalised: the system that made it hashed what its
   * user typed. `needsRehash` is true for it, so the first sign-in replaces it with argon2id.
   */
  verify(hash: string | null | undefined, password: string): Promise<boolean> {
    if (typeof hash === 'string' && isBcryptHash(hash)) return this.#run('verify-bcrypt', hash, password);
    if (typeof hash !== 'string' || !parseArgon2Hash(hash)) return this.verifyDummy(password);
    return this.#run('verify', hash, normalizePassword(password));
  }

  #run(op: Extract<HashRequest['op'], `verify${string}`>, hash: string, input: string): Promise<boolean> {
    return this.#limit.run(async () => {
      this.verifications[op === 'verify-bcrypt' ? 'bcrypt' : 'argon2'] += 1;
      try {
        return (await this.#process.run({ op, hash, password: input })) === true;
      } catch (err) {
        // argon2 refusing the stored hash is a mismatch; the helper being unavailable is not
        if (err instanceof Argon2Error) return false;
        throw err;
      }
    });
  }

  /** Spends the time of a real verification and returns false; use when the account does not exist. */
  async verifyDummy(password: string): Promise<false> {
    await this.#run('verify', this.#dummyHash, normalizePassword(password));
    return false;
  }

  /**
   * Spends the time of a bcrypt verification at `cost` and returns false: the work a wrong password for
   * an imported bcrypt hash of that cost costs (UserService.verifyPassword).
   */
  async verifyBcryptDummy(password: string, cost: number): Promise<false> {
    let hash = this.#bcryptDummies.get(cost);
    if (!hash) {
      // cost, 22 characters of salt and 31 of hash in bcrypt's base64 alphabet; random, so nothing matches
      const alphabet = './ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';
      const tail = [...randomBytes(53)].map((b) => alphabet[b % 64]).join('');
      this.#bcryptDummies.set(cost, (hash = `$2b$${String(cost).padStart(2, '0')}$${tail}`));
    }
    await this.#run('verify-bcrypt', hash, password);
    return false;
  }

  /** True when `hash` is not argon2id v1.3 or any of its parameters is weaker than configured. */
  needsRehash(hash: string): boolean {
    const found = parseArgon2Hash(hash);
    return (
      !found ||
      found.type !== 'argon2id' ||
      found.version !== ARGON2_VERSION ||
      found.memoryCost < this.#params.memoryCost ||
      found.timeCost < this.#params.timeCost ||
      found.parallelism < this.#params.parallelism
    );
  }

  /** Stops the hashing process (after this, hashing fails with `hasher_unavailable`). */
  close(): Promise<void> {
    return this.#process.close();
  }

  /** The helper process's id while it runs (diagnostics, tests). */
  get helperPid(): number | undefined {
    return this.#process.pid;
  }

  /** Operations computing now, and operations waiting for a slot. */
  stats(): { running: number; queued: number } {
    return { running: this.#limit.running, queued: this.#limit.queued };
  }
}
