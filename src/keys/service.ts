import type { SecretBox } from '../crypto/secret-box.js';
import { keysRepo, type KeyRow } from '../db/keys-repo.js';
import type { Db } from '../db/knex.js';
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

async function insertKeySet(db: Db, box: SecretBox, realmId: string, activateAt: number, at: number): Promise<string[]> {
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

  async statuses(realmId: string, now = Date.now()): Promise<Status[]> {
    return keyStates(await keysRepo.list(this.db, realmId), now, this.policy.retentionMs);
  }

  /** Loads the realm's keys for its providers: private keys decrypted, JWKS precomputed. */
  async signingMaterial(realmId: string, now = Date.now()): Promise<SigningMaterial> {
    const statuses = await this.statuses(realmId, now);
    const order = { active: 0, pending: 1, retired: 2, expired: 3 } as const;
    const published = statuses.filter((s) => s.state !== 'expired').sort((a, b) => order[a.state] - order[b.state]);
    return {
      privateJwks: published.map((s) => JSON.parse(this.box.open(s.key.sealedPrivateJwk, `signing-key:${s.key.kid}`))),
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
