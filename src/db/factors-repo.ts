import { isSqlite, type Db } from './knex.js';
import { queryFirst, sql } from './statements.js';

// read on every sign-in (which second factors does the user have): prepared once (src/db/statements.ts)
const FIND_TOTP = sql('select * from totp_factors where realm_id = ? and user_id = ? limit 1');

/** A user's TOTP authenticator (table `totp_factors`, one per user). */
export interface TotpFactorRow {
  userId: string;
  realmId: string;
  /** The base32 secret sealed with SecretBox (associated data `totp:<userId>`); never the secret itself. */
  sealedSecret: string;
  /** The latest RFC 6238 time step accepted; -1 when none has been. */
  lastUsedStep: number;
  /** Epoch ms of the confirming code; null while the enrolment is pending. */
  confirmedAt: number | null;
  createdAt: number;
}

export interface SecurityEventRow {
  id: number;
  realmId: string;
  userId: string | null;
  type: string;
  detail: Record<string, unknown>;
  createdAt: number;
}

const toTotp = (r: any): TotpFactorRow => ({
  userId: r.user_id,
  realmId: r.realm_id,
  sealedSecret: r.secret,
  lastUsedStep: Number(r.last_used_step),
  confirmedAt: r.confirmed_at === null || r.confirmed_at === undefined ? null : Number(r.confirmed_at),
  createdAt: Number(r.created_at),
});

const parseDetail = (value: unknown): Record<string, unknown> => {
  if (typeof value !== 'string') return (value as Record<string, unknown>) ?? {};
  try {
    return JSON.parse(value);
  } catch {
    return {};
  }
};

const toEvent = (r: any): SecurityEventRow => ({
  id: Number(r.id),
  realmId: r.realm_id,
  userId: r.user_id ?? null,
  type: r.type,
  detail: parseDetail(r.detail),
  createdAt: Number(r.created_at),
});

/** Storage of second factors other than passkeys: TOTP, recovery codes, and the security event log. */
export const factorsRepo = {
  // ---- totp_factors ----

  async findTotp(db: Db, realmId: string, userId: string): Promise<TotpFactorRow | undefined> {
    const row = await queryFirst(db, FIND_TOTP, [realmId, userId]);
    return row ? toTotp(row) : undefined;
  },

  /**
   * Stores a pending (unconfirmed) TOTP factor in place of a pending one, or of a confirmed one when
   * `replaceConfirmed` is set, in one transaction. Returns false, writing nothing, when a confirmed
   * factor is in the way (or the row belongs to another realm). On PostgreSQL the user's row is locked
   * first: two enrolments started at once otherwise both found nothing to delete, and the second insert
   * was ignored behind the first, reported as a confirmed factor in the way.
   */
  async putPendingTotp(
    db: Db,
    row: { realmId: string; userId: string; sealedSecret: string },
    at: number,
    replaceConfirmed: boolean,
  ): Promise<boolean> {
    return db.transaction(async (trx) => {
      if (!isSqlite(db)) await trx('users').select('id').where({ realm_id: row.realmId, id: row.userId }).forUpdate();
      const del = trx('totp_factors').where({ realm_id: row.realmId, user_id: row.userId });
      if (!replaceConfirmed) del.whereNull('confirmed_at');
      await del.delete();
      const inserted = await trx('totp_factors')
        .insert({ user_id: row.userId, realm_id: row.realmId, secret: row.sealedSecret, last_used_step: -1, confirmed_at: null, created_at: at })
        .onConflict('user_id')
        .ignore()
        .returning('user_id');
      return inserted.length === 1;
    });
  },

  /**
   * Confirms a pending factor with the time step of the code that proved it, atomically: only one of
   * several concurrent confirmations succeeds, and only while the stored secret is still
   * `sealedSecret` (the one the code was checked against). Returns whether this call confirmed it.
   */
  async confirmTotp(db: Db, realmId: string, userId: string, sealedSecret: string, step: number, at: number): Promise<boolean> {
    const n = await db('totp_factors')
      .where({ realm_id: realmId, user_id: userId, secret: sealedSecret })
      .whereNull('confirmed_at')
      .andWhere('last_used_step', '<', step)
      .update({ confirmed_at: at, last_used_step: step });
    return n === 1;
  },

  /**
   * Records `step` as used on a confirmed factor if no step at or after it has been: a conditional
   * update whose affected-row count says whether this caller won, so two instances racing with the
   * same code cannot both accept it; the stored secret must still be `sealedSecret`.
   */
  async claimTotpStep(db: Db, realmId: string, userId: string, sealedSecret: string, step: number): Promise<boolean> {
    const n = await db('totp_factors')
      .where({ realm_id: realmId, user_id: userId, secret: sealedSecret })
      .whereNotNull('confirmed_at')
      .andWhere('last_used_step', '<', step)
      .update({ last_used_step: step });
    return n === 1;
  },

  async deleteTotp(db: Db, realmId: string, userId: string): Promise<boolean> {
    return (await db('totp_factors').where({ realm_id: realmId, user_id: userId }).delete()) > 0;
  },

  /** Deletes the user's factor only while its sealed secret is still `sealedSecret` (not replaced since it was read). */
  async deleteTotpSealedAs(db: Db, realmId: string, userId: string, sealedSecret: string): Promise<boolean> {
    return (await db('totp_factors').where({ realm_id: realmId, user_id: userId, secret: sealedSecret }).delete()) > 0;
  },

  /** How many TOTP factors (of one realm, or of every realm) there are. */
  async countTotp(db: Db, realmId?: string): Promise<number> {
    const q = db('totp_factors').count({ n: '*' });
    if (realmId !== undefined) q.where({ realm_id: realmId });
    return Number(((await q) as Array<{ n: number | string }>)[0]?.n ?? 0);
  },

  /** The next `limit` TOTP factors (of one realm, or of every realm) after `after`, in (realm, user) order. */
  async listTotpPage(db: Db, realmId: string | undefined, after: { realmId: string; userId: string } | undefined, limit: number): Promise<TotpFactorRow[]> {
    const q = db('totp_factors').orderBy([{ column: 'realm_id' }, { column: 'user_id' }]).limit(limit);
    if (realmId !== undefined) q.where({ realm_id: realmId });
    if (after) q.where((w) => w.where('realm_id', '>', after.realmId).orWhere((x) => x.where('realm_id', after.realmId).andWhere('user_id', '>', after.userId)));
    return (await q).map(toTotp);
  },

  // ---- recovery_codes ----

  /**
   * Replaces all of a user's recovery codes with `hashes`, in one transaction. On PostgreSQL the user's
   * row is locked first: without it, replacements running at once (a double-submitted form) each
   * deleted only the codes their statement saw and all inserted theirs, leaving several sets valid.
   * SQLite runs one writer at a time.
   */
  async replaceRecoveryCodes(db: Db, realmId: string, userId: string, hashes: string[], at: number): Promise<void> {
    await db.transaction(async (trx) => {
      if (!isSqlite(db)) await trx('users').select('id').where({ realm_id: realmId, id: userId }).forUpdate();
      await trx('recovery_codes').where({ realm_id: realmId, user_id: userId }).delete();
      if (hashes.length > 0) {
        await trx('recovery_codes').insert(hashes.map((h) => ({ code_hash: h, realm_id: realmId, user_id: userId, created_at: at, used_at: null })));
      }
    });
  },

  /** Marks an unused code used; true only for the one caller whose update changed the row. */
  async consumeRecoveryCode(db: Db, realmId: string, userId: string, hash: string, at: number): Promise<boolean> {
    const n = await db('recovery_codes')
      .where({ code_hash: hash, user_id: userId, realm_id: realmId })
      .whereNull('used_at')
      .update({ used_at: at });
    return n === 1;
  },

  async countUnusedRecoveryCodes(db: Db, realmId: string, userId: string): Promise<number> {
    const row = await db('recovery_codes').where({ realm_id: realmId, user_id: userId }).whereNull('used_at').count({ n: '*' }).first();
    return Number(row?.n ?? 0);
  },

  async deleteRecoveryCodes(db: Db, realmId: string, userId: string): Promise<number> {
    return db('recovery_codes').where({ realm_id: realmId, user_id: userId }).delete();
  },

  // ---- security_events ----

  async insertSecurityEvent(
    db: Db,
    ev: { realmId: string; userId?: string | null; type: string; detail: Record<string, unknown> },
    at: number,
  ): Promise<void> {
    await db('security_events').insert({
      realm_id: ev.realmId,
      user_id: ev.userId ?? null,
      type: ev.type,
      detail: JSON.stringify(ev.detail ?? {}),
      created_at: at,
    });
  },

  /** Newest first; only the realm's events, and only the user's when `userId` is given. */
  async listSecurityEvents(db: Db, realmId: string, userId: string | undefined, limit: number): Promise<SecurityEventRow[]> {
    const q = db('security_events')
      .where({ realm_id: realmId })
      .orderBy([
        { column: 'created_at', order: 'desc' },
        { column: 'id', order: 'desc' },
      ])
      .limit(limit);
    if (userId !== undefined) q.andWhere({ user_id: userId });
    return (await q).map(toEvent);
  },
};
