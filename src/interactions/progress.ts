import type { Db } from '../db/knex.js';
import { progressRepo } from '../db/progress-repo.js';
import type { PendingSignup } from '../accounts/signup-codes.js';

export type Stage = 'identify' | 'password' | 'passkey' | 'mfa' | 'mfa-enrol' | 'recovery-codes' | 'passkey-offer' | 'tenant-pick' | 'sso' | 'signup-code' | 'password-change' | 'verify-email';

/**
 * A sign-in's state between pages, stored server-side (never in the browser): who was identified,
 * which factors have been verified, and what comes next.
 */
export interface Progress {
  stage: Stage;
  email?: string;
  /** Set once a first factor (password, passkey, recovery code, or a live session for step-up) is verified. */
  userId?: string;
  /** RFC 8176 methods verified so far in this sign-in. */
  amr: string[];
  /** The first factor was a recovery code of a passwordless user: lead them to a new passkey. */
  recovered?: boolean;
  /** Recovery codes were already shown for this sign-in (they are shown once). */
  codesShown?: boolean;
  /** Signed up without a password just now: a passkey must be created before anything else. */
  passwordlessSignup?: boolean;
  /** A sign-up waiting for the code emailed to its address (stage `signup-code`). */
  signup?: PendingSignup;
  /** A step-up of a live session rather than a fresh sign-in. */
  stepUp?: boolean;
  /** An upstream identity of this connection waits for the account's proof before it is linked. */
  linking?: { connectionId: string; name: string };
  /**
   * The tenant this sign-in is for (tenant_id parameter, connection, email domain or the picker). It
   * sticks to the sign-in (a later Progress without it keeps it) until the sign-in restarts at `identify`.
   */
  tenantId?: string;
  /** The connection this sign-in came through (amr `fed`): one of the tenant's own makes the user a member. */
  viaConnection?: string;
  /** The tenants offered on the tenant picker (stage `tenant-pick`). */
  tenantChoices?: string[];
  /**
   * A MAC of the authenticator-app key this sign-in started setting up (stage `mfa-enrol`): only that
   * pending key is shown again here, never one another sign-in or the account page started.
   */
  totpKeyMark?: string;
}

const TTL_MS = 30 * 60 * 1000;

/** The interaction a progress belongs to: the object loaded for this request (see kit.ts interactionOf). */
export interface ProgressKey {
  readonly uid: string;
}

/**
 * Stored per interaction uid. Reads are remembered for the interaction object of the request at hand
 * (one object per request, see interactionOf): a page that asks several times what stage the sign-in
 * is at reads the row once, and every write through this store updates what is remembered. A later
 * request loads a new interaction object and so reads the row again.
 */
export class ProgressStore {
  readonly #seen = new WeakMap<ProgressKey, Progress | undefined>();

  constructor(private readonly db: Db) {}

  /** A sign-in whose interaction was created by this very request (the first page): nothing is stored for it yet. */
  started(key: ProgressKey): void {
    if (!this.#seen.has(key)) this.#seen.set(key, undefined);
  }

  async get(realmId: string, key: ProgressKey): Promise<Progress | undefined> {
    if (this.#seen.has(key)) return this.#seen.get(key);
    const found = (await progressRepo.get(this.db, realmId, key.uid, Date.now())) as Progress | undefined;
    this.#seen.set(key, found);
    return found;
  }

  async put(realmId: string, key: ProgressKey, progress: Progress): Promise<void> {
    let next = progress;
    if (!('tenantId' in progress) && progress.stage !== 'identify') {
      const prior = await this.get(realmId, key);
      if (prior?.tenantId) next = { ...progress, tenantId: prior.tenantId };
    }
    await progressRepo.put(this.db, realmId, key.uid, next as unknown as Record<string, unknown>, Date.now() + TTL_MS);
    this.#seen.set(key, JSON.parse(JSON.stringify(next)) as Progress);
  }

  /** Forgets the progress; a sign-in that never stored any (known from a read) writes nothing. */
  async clear(realmId: string, key: ProgressKey): Promise<void> {
    if (this.#seen.has(key) && this.#seen.get(key) === undefined) return;
    await progressRepo.remove(this.db, realmId, key.uid);
    this.#seen.set(key, undefined);
  }
}
