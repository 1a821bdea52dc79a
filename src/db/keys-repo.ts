import type { KeyFamily } from '../keys/generate.js';
import type { Db } from './knex.js';

export interface KeyRow {
  kid: string;
  realmId: string;
  family: KeyFamily;
  publicJwk: Record<string, unknown>;
  /** Sealed (encrypted) private JWK. */
  sealedPrivateJwk: string;
  createdAt: number;
  activateAt: number;
}

const toKey = (r: any): KeyRow => ({
  kid: r.kid,
  realmId: r.realm_id,
  family: r.alg,
  publicJwk: JSON.parse(r.public_jwk),
  sealedPrivateJwk: r.private_jwk,
  createdAt: Number(r.created_at),
  activateAt: Number(r.activate_at),
});

export const keysRepo = {
  async list(db: Db, realmId: string): Promise<KeyRow[]> {
    return (await db('signing_keys').where({ realm_id: realmId }).orderBy('activate_at')).map(toKey);
  },
  /** Every realm's keys (a handful per realm). */
  async listAll(db: Db): Promise<KeyRow[]> {
    return (await db('signing_keys').orderBy(['realm_id', 'activate_at'])).map(toKey);
  },
  async insert(db: Db, key: KeyRow): Promise<void> {
    await db('signing_keys').insert({
      kid: key.kid,
      realm_id: key.realmId,
      alg: key.family,
      public_jwk: JSON.stringify(key.publicJwk),
      private_jwk: key.sealedPrivateJwk,
      created_at: key.createdAt,
      activate_at: key.activateAt,
    });
  },
  async remove(db: Db, kids: string[]): Promise<number> {
    if (!kids.length) return 0;
    return db('signing_keys').whereIn('kid', kids).delete();
  },
};
