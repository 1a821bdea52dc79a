import type { SecretBox } from '../crypto/secret-box.js';
import { keysRepo, type KeyRow } from '../db/keys-repo.js';
import type { Db } from '../db/knex.js';
import { LatchkeyError } from '../errors.js';
import { realmsRepo } from '../db/realms-repo.js';
import { generateKey, KEY_FAMILIES } from './generate.js';
import { keyStates, nextTransition, type KeyStatus } from './lifecycle.js';

export interface KeyPolicy {
  /** How long a superseded key stays published: the longest lifetime of anything it signed, plus skew. */
  retentionMs: number;
}

export interface SigningMaterial {
  /** Private JWKs in the order node-oidc-provider should prefer them (active signers first). */
  privateJwks: Array<Record<string, unknown>>;
  /** The public JWKS document every issuer of the realm publishes. */
  jwks: { keys: Array<Record<string, unknown>> };
  /** When this material goes stale (a pending key activates or a retired key drops out). */
  validUntil: number | null;
}

type Status = KeyStatus<KeyRow & { family: KeyRow['family'] }>;

/** A key's state, and whether this LATCHKEY_SECRET opens its private key. */
export type InspectedKey = Status & { readable: boolean };

/** What `discardUnreadable` did: the keys it deleted and the key set that replaced them (none when nothing was unreadable). */
export interface KeyRepair {
  discarded: Array<{ kid: string; family: KeyRow['family']; state: Status['state'] }>;
  kids: string[];
  activateAt: number | null;
}

/** A new key of every family for a realm, sealed with `box`, signing from `activateAt`; returns their kids. */
export async function insertKeySet(db: Db, box: SecretBox, realmId: string, activateAt: number, at: number): Promise<string[]> {
  const kids: string[] = [];
  for (const family of KEY_FAMILIES) {
    const key = generateKey(family);
    await keysRepo.insert(db, {
      kid: key.kid,
      realmId,
      family,
      publicJwk: key.publicJwk as Record<string, unknown>,
      sealedPrivateJwk: box.seal(JSON.stringify(key.privateJwk), `signing-key:${key.kid}`),
      createdAt: at,
      activateAt,
    });
    kids.push(key.kid);
  }
  return kids;
}

export class KeyService {
  constructor(
    private readonly db: Db,
    private readonly box: SecretBox,
    private readonly policy: KeyPolicy,
  ) {}

  /** Gives a realm its first key set (one per family, active at once) when it has none. */
  async ensureKeys(realmId: string, db: Db = this.db): Promise<void> {
    const existing = await keysRepo.list(db, realmId);
    const now = Date.now();
    const missing = KEY_FAMILIES.filter((f) => !existing.some((k) => k.family === f));
    if (!missing.length) return;
    await insertKeySet(db, this.box, realmId, now, now);
    await realmsRepo.bumpRevision(db, realmId, now);
  }

  /** Publishes a new key set now and makes it the signer after `activateAfterSeconds`. */
  async rotate(realmId: string, activateAfterSeconds: number): Promise<{ kids: string[]; activateAt: number }> {
    return this.db.transaction(async (trx) => {
      const now = Date.now();
      const activateAt = now + activateAfterSeconds * 1000;
      const kids = await insertKeySet(trx, this.box, realmId, activateAt, now);
      await realmsRepo.bumpRevision(trx, realmId, now);
      return { kids, activateAt };
    });
  }

  /**
   * Each key's state, and whether this secret opens its private key. A key sealed under another
   * LATCHKEY_SECRET (a command run with the wrong secret before commands checked it, 87575a0) cannot
   * sign: the realm's provider cannot be built until it is discarded (`discardUnreadable`).
   */
  async inspect(realmId: string, now = Date.now()): Promise<InspectedKey[]> {
    return (await this.statuses(realmId, now)).map((s) => ({ ...s, readable: this.#opens(s.key) }));
  }

  /**
   * Deletes the realm's keys this secret cannot open and, when it deleted any, publishes a new key set
   * that signs at once: every family has an active key the servers can use. Tokens signed by a deleted
   * key no longer verify. Refused when no key in the database opens with this secret: then the secret
   * is wrong, not the keys, and discarding them would throw good keys away.
   */
  async discardUnreadable(realmId: string): Promise<KeyRepair> {
    return this.db.transaction(async (trx) => {
      const now = Date.now();
      const statuses = keyStates(await keysRepo.list(trx, realmId), now, this.policy.retentionMs);
      const unreadable = statuses.filter((s) => !this.#opens(s.key));
      if (!unreadable.length) return { discarded: [], kids: [], activateAt: null };
      if (unreadable.length === statuses.length && !(await keysRepo.listAll(trx)).some((k) => this.#opens(k))) {
        throw new LatchkeyError(
          'secret_mismatch',
          'no signing key in this database opens with this LATCHKEY_SECRET: the secret is wrong, not the keys. Nothing was discarded: run the command with the secret the database was set up with',
          409,
        );
      }
      await keysRepo.remove(trx, unreadable.map((s) => s.key.kid));
      const kids = await insertKeySet(trx, this.box, realmId, now, now);
      await realmsRepo.bumpRevision(trx, realmId, now);
      return { discarded: unreadable.map((s) => ({ kid: s.key.kid, family: s.key.family, state: s.state })), kids, activateAt: now };
    });
  }

  #privateJwk(realmId: string, key: KeyRow): Record<string, unknown> {
    try {
      return JSON.parse(this.box.open(key.sealedPrivateJwk, `signing-key:${key.kid}`));
    } catch {
      throw new LatchkeyError(
        'unreadable_keys',
        `signing key ${key.kid} of realm "${realmId}" cannot be opened with this LATCHKEY_SECRET: either the secret is not the one the database was set up with, or the key was sealed with another (\`latchkey keys list --realm ${realmId}\` shows such keys; \`latchkey keys repair --realm ${realmId} --yes\` discards them)`,
        500,
      );
    }
  }

  /** True when this secret opens the key's private JWK. */
  #opens(key: KeyRow): boolean {
    try {
      JSON.parse(this.box.open(key.sealedPrivateJwk, `signing-key:${key.kid}`));
      return true;
    } catch {
      return false;
    }
  }

  async statuses(realmId: string, now = Date.now()): Promise<Status[]> {
    return keyStates(await keysRepo.list(this.db, realmId), now, this.policy.retentionMs);
  }

  /** Loads the realm's keys for its providers: private keys decrypted, JWKS precomputed. */
  async signingMaterial(realmId: string, now = Date.now()): Promise<SigningMaterial> {
    const statuses = await this.statuses(realmId, now);
    const order = { active: 0, pending: 1, retired: 2, expired: 3 } as const;
    const published = statuses.filter((s) => s.state !== 'expired').sort((a, b) => order[a.state] - order[b.state]);
    return {
      privateJwks: published.map((s) => this.#privateJwk(realmId, s.key)),
      jwks: { keys: published.map((s) => s.key.publicJwk) },
      validUntil: nextTransition(statuses, now),
    };
  }

  /** Deletes keys whose retention has passed; returns how many went. */
  async purgeExpired(realmId: string, now = Date.now()): Promise<number> {
    const expired = (await this.statuses(realmId, now)).filter((s) => s.state === 'expired').map((s) => s.key.kid);
    return keysRepo.remove(this.db, expired);
  }
}
