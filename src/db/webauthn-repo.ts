import { deleteInBatches } from './batched-delete.js';
import type { Db } from './knex.js';
import { queryAll, queryFirst, runWrite, sql } from './statements.js';

export interface CredentialRow {
  id: string;
  realmId: string;
  userId: string;
  rpId: string;
  publicKey: string;
  counter: number;
  transports: string[];
  deviceType: 'singleDevice' | 'multiDevice';
  backedUp: boolean;
  discoverable: boolean;
  aaguid: string | null;
  attestationFormat: string | null;
  name: string;
  createdAt: number;
  lastUsedAt: number | null;
}

export interface ChallengeRow {
  challenge: string;
  realmId: string;
  ceremony: 'registration' | 'authentication';
  boundTo: string;
  rpId: string;
  userId: string | null;
  expiresAt: number;
}

const toCredential = (r: any): CredentialRow => ({
  id: r.id,
  realmId: r.realm_id,
  userId: r.user_id,
  rpId: r.rp_id,
  publicKey: r.public_key,
  counter: Number(r.counter),
  transports: JSON.parse(r.transports),
  deviceType: r.device_type,
  backedUp: Boolean(r.backed_up),
  discoverable: Boolean(r.discoverable),
  aaguid: r.aaguid ?? null,
  attestationFormat: r.attestation_format ?? null,
  name: r.name,
  createdAt: Number(r.created_at),
  lastUsedAt: r.last_used_at === null || r.last_used_at === undefined ? null : Number(r.last_used_at),
});

const CREDENTIAL = sql('select * from webauthn_credentials where realm_id = ? and id = ? limit 1');
const CREDENTIALS_OF = sql('select * from webauthn_credentials where realm_id = ? and user_id = ? order by created_at');
const CREDENTIALS_OF_FOR_RP = sql('select * from webauthn_credentials where realm_id = ? and user_id = ? and rp_id = ? order by created_at');
const RECORD_USE = sql('update webauthn_credentials set counter = ?, last_used_at = ? where realm_id = ? and id = ?');
const RECORD_USE_FORWARD = sql('update webauthn_credentials set counter = ?, last_used_at = ? where realm_id = ? and id = ? and counter < ?');
const INSERT_CHALLENGE = sql(`
  insert into webauthn_challenges (challenge, realm_id, ceremony, bound_to, rp_id, user_id, expires_at, used_at)
  values (?, ?, ?, ?, ?, ?, ?, null)`);
// Uses the challenge: a mismatched ceremony or binding leaves it untouched. (Without `returning`: SQLite
// answers a `returning` through a temporary table, which made this statement cost three plain ones.)
const USE_CHALLENGE = sql(`
  update webauthn_challenges set used_at = ?
  where challenge = ? and realm_id = ? and ceremony = ? and bound_to = ? and used_at is null and expires_at > ?`);
// What the challenge was issued for; these columns never change after the insert.
const CHALLENGE_ISSUED_FOR = sql('select rp_id, user_id, expires_at from webauthn_challenges where challenge = ? limit 1');

export const webauthnRepo = {
  async credential(db: Db, realmId: string, id: string): Promise<CredentialRow | undefined> {
    const row = await queryFirst(db, CREDENTIAL, [realmId, id]);
    return row ? toCredential(row) : undefined;
  },
  async credentialsOf(db: Db, realmId: string, userId: string, rpId?: string): Promise<CredentialRow[]> {
    const rows = rpId ? await queryAll(db, CREDENTIALS_OF_FOR_RP, [realmId, userId, rpId]) : await queryAll(db, CREDENTIALS_OF, [realmId, userId]);
    return rows.map(toCredential);
  },
  /**
   * Stores a new credential; false, writing nothing, when its id is taken (credential ids are unique
   * across realms, and a client without attestation can send any id).
   */
  async insertCredential(db: Db, c: CredentialRow): Promise<boolean> {
    const inserted = await db('webauthn_credentials').insert({
      id: c.id,
      realm_id: c.realmId,
      user_id: c.userId,
      rp_id: c.rpId,
      public_key: c.publicKey,
      counter: c.counter,
      transports: JSON.stringify(c.transports),
      device_type: c.deviceType,
      backed_up: c.backedUp,
      discoverable: c.discoverable,
      aaguid: c.aaguid,
      attestation_format: c.attestationFormat,
      name: c.name,
      created_at: c.createdAt,
      last_used_at: c.lastUsedAt,
    })
      .onConflict('id')
      .ignore()
      .returning('id');
    return inserted.length === 1;
  },
  /** Moves the counter forward only: a concurrent use with the same counter loses. */
  async recordUse(db: Db, realmId: string, id: string, oldCounter: number, newCounter: number, at: number): Promise<boolean> {
    const changed =
      newCounter > 0
        ? await runWrite(db, RECORD_USE_FORWARD, [newCounter, at, realmId, id, newCounter])
        : await runWrite(db, RECORD_USE, [newCounter, at, realmId, id]);
    return changed === 1 || (newCounter === 0 && oldCounter === 0);
  },
  async updateBackup(db: Db, realmId: string, id: string, backedUp: boolean): Promise<void> {
    await db('webauthn_credentials').where({ realm_id: realmId, id }).update({ backed_up: backedUp });
  },
  async rename(db: Db, realmId: string, userId: string, id: string, name: string): Promise<number> {
    return db('webauthn_credentials').where({ realm_id: realmId, user_id: userId, id }).update({ name });
  },
  async remove(db: Db, realmId: string, userId: string, id: string): Promise<number> {
    return db('webauthn_credentials').where({ realm_id: realmId, user_id: userId, id }).delete();
  },
  async insertChallenge(db: Db, c: ChallengeRow): Promise<void> {
    await runWrite(db, INSERT_CHALLENGE, [c.challenge, c.realmId, c.ceremony, c.boundTo, c.rpId, c.userId, c.expiresAt]);
  },
  /**
   * Uses a challenge once: it must exist for this realm, ceremony and binding, be unexpired and
   * unused. The conditional update makes two concurrent uses impossible; a challenge presented for
   * another ceremony or binding is not used up.
   */
  async consumeChallenge(db: Db, realmId: string, challenge: string, ceremony: ChallengeRow['ceremony'], boundTo: string, now: number): Promise<ChallengeRow | undefined> {
    if ((await runWrite(db, USE_CHALLENGE, [now, challenge, realmId, ceremony, boundTo, now])) !== 1) return undefined;
    const row = await queryFirst(db, CHALLENGE_ISSUED_FOR, [challenge]);
    if (!row) return undefined;
    return { challenge, realmId, ceremony, boundTo, rpId: row.rp_id, userId: row.user_id ?? null, expiresAt: Number(row.expires_at) };
  },
  async purgeChallenges(db: Db, now: number): Promise<number> {
    return deleteInBatches(db, 'webauthn_challenges', ['challenge'], (q) => q.where('expires_at', '<=', now - 3600_000));
  },
};
