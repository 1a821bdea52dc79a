import { deleteInBatches } from './batched-delete.js';
import type { Db } from './knex.js';
import { queryFirst, runWrite, sql } from './statements.js';

export interface PayloadRow {
  payload: Record<string, unknown>;
  consumedAt: number | null;
}

const UPSERT = sql(`
  insert into oidc_payloads (realm_id, model, id, payload, grant_id, uid, user_code, account_id, expires_at, consumed_at)
  values (?, ?, ?, ?, ?, ?, ?, ?, ?, null)
  on conflict (realm_id, model, id) do update set
    payload = excluded.payload, grant_id = excluded.grant_id, uid = excluded.uid, user_code = excluded.user_code,
    account_id = excluded.account_id, expires_at = excluded.expires_at, consumed_at = null`);
/** The models whose rows carry their account in `account_id` (migrations/20261205000001_payload_account.js). */
const BY_ACCOUNT = new Set(['Session', 'Grant']);
const FIND_BY = {
  id: sql('select payload, consumed_at from oidc_payloads where realm_id = ? and model = ? and id = ? and (expires_at is null or expires_at > ?) limit 1'),
  uid: sql('select payload, consumed_at from oidc_payloads where realm_id = ? and model = ? and uid = ? and (expires_at is null or expires_at > ?) limit 1'),
  user_code: sql('select payload, consumed_at from oidc_payloads where realm_id = ? and model = ? and user_code = ? and (expires_at is null or expires_at > ?) limit 1'),
} as const;
// conditional: of two requests presenting the same code or refresh token, only one marks it
const CONSUME = sql('update oidc_payloads set consumed_at = ? where realm_id = ? and model = ? and id = ? and consumed_at is null');
// undoes this request's own mark: a row another request found consumed has been revoked (deleted) since
const UNCONSUME = sql('update oidc_payloads set consumed_at = null where realm_id = ? and model = ? and id = ? and consumed_at is not null');
const GRANT_OF = sql('select grant_id from oidc_payloads where realm_id = ? and model = ? and id = ? limit 1');
const DESTROY = sql('delete from oidc_payloads where realm_id = ? and model = ? and id = ?');
const REVOKE_BY_GRANT = sql("delete from oidc_payloads where realm_id = ? and grant_id = ? and model <> 'Interaction'");

const str = (value: unknown): string | null => (typeof value === 'string' ? value : null);

/** What the lookups below read of a stored Session or Grant. */
export interface ScannedPayload {
  accountId?: unknown;
  clientId?: unknown;
  authorizations?: Record<string, { grantId?: unknown; sid?: unknown }>;
  /** A Session's domain (src/oidc/adapter.ts). */
  latchkeyIssuer?: unknown;
  [field: string]: unknown;
}

/** A stored Session or Grant row, its payload parsed. */
export interface StoredRow {
  id: string;
  uid: string | null;
  payload: ScannedPayload;
  expiresAt: number | null;
}

/** A session ended outside a request: its domain and, per application signed in with it, its `sid`. */
export interface EndedSession {
  issuer: string | null;
  clients: Array<{ clientId: string; sid: string | null }>;
}

type RawRow = { id: string; uid: string | null; payload: string; expires_at: unknown };

/** Parsed rows (unreadable payloads skipped). */
function parsed(rows: RawRow[]): StoredRow[] {
  return rows.flatMap((r) => {
    try {
      const payload: unknown = JSON.parse(r.payload);
      return payload && typeof payload === 'object' ? [{ id: r.id, uid: r.uid, payload: payload as ScannedPayload, expiresAt: r.expires_at === null ? null : Number(r.expires_at) }] : [];
    } catch {
      return [];
    }
  });
}

/**
 * Every stored row of one model in a realm, its payload parsed: for the rare operator-driven changes that
 * look rows up by what is inside them and have no index (a client's grants).
 */
async function rowsOf(db: Db, realmId: string, model: 'Session' | 'Grant'): Promise<StoredRow[]> {
  return parsed(await db('oidc_payloads').select('id', 'uid', 'payload', 'expires_at').where({ realm_id: realmId, model }));
}

/**
 * An account's Session or Grant rows, through the (realm_id, account_id) index; with `now`, only the
 * live ones (not expired).
 */
async function rowsOfAccount(db: Db, realmId: string, accountId: string, model: 'Session' | 'Grant', now?: number): Promise<StoredRow[]> {
  const q = db('oidc_payloads').select('id', 'uid', 'payload', 'expires_at').where({ realm_id: realmId, account_id: accountId, model });
  if (now !== undefined) q.andWhere((w) => w.whereNull('expires_at').orWhere('expires_at', '>', now));
  // a row written with another account in its payload than in its column is not this account's
  return parsed(await q).filter((r) => r.payload.accountId === accountId);
}

/** The grants a session signed applications in with (one per application). */
const grantsOfSession = (row: StoredRow): string[] =>
  Object.values(row.payload.authorizations ?? {})
    .map((a) => a?.grantId)
    .filter((g): g is string => typeof g === 'string');

/** What announcing a session's end needs (src/oidc/backchannel-logout.ts). */
const endedOf = (row: StoredRow): EndedSession => ({
  issuer: str(row.payload.latchkeyIssuer),
  clients: Object.entries(row.payload.authorizations ?? {}).map(([clientId, a]) => ({ clientId, sid: str(a?.sid) })),
});

export const payloadsRepo = {
  async upsert(
    db: Db,
    key: { realmId: string; model: string; id: string },
    payload: Record<string, unknown>,
    expiresAt: number | null,
  ): Promise<void> {
    await runWrite(db, UPSERT, [
      key.realmId,
      key.model,
      key.id,
      JSON.stringify(payload),
      str(payload.grantId),
      str(payload.uid),
      str(payload.userCode),
      BY_ACCOUNT.has(key.model) ? str(payload.accountId) : null,
      expiresAt,
    ]);
  },
  async findBy(db: Db, realmId: string, model: string, column: 'id' | 'uid' | 'user_code', value: string, now: number): Promise<PayloadRow | undefined> {
    const row = await queryFirst(db, FIND_BY[column], [realmId, model, value, now]);
    if (!row) return undefined;
    return { payload: JSON.parse(row.payload), consumedAt: row.consumed_at === null ? null : Number(row.consumed_at) };
  },
  /**
   * Marks a row consumed unless it already is (or is gone); returns whether this call marked it. The
   * check and the mark are one statement, so it holds between concurrent requests and across instances.
   */
  async consume(db: Db, realmId: string, model: string, id: string, at: number): Promise<boolean> {
    return (await runWrite(db, CONSUME, [at, realmId, model, id])) === 1;
  },
  /**
   * Takes back the mark `consume` set, for a request that failed after consuming (it handed out nothing
   * in exchange). Returns whether a row was unmarked (false when the row is gone, e.g. its grant revoked).
   */
  async unconsume(db: Db, realmId: string, model: string, id: string): Promise<boolean> {
    return (await runWrite(db, UNCONSUME, [realmId, model, id])) === 1;
  },
  async grantIdOf(db: Db, realmId: string, model: string, id: string): Promise<string | undefined> {
    const row = await queryFirst(db, GRANT_OF, [realmId, model, id]);
    return typeof row?.grant_id === 'string' ? row.grant_id : undefined;
  },
  async destroy(db: Db, realmId: string, model: string, id: string): Promise<void> {
    await runWrite(db, DESTROY, [realmId, model, id]);
  },
  async revokeByGrantId(db: Db, realmId: string, grantId: string): Promise<void> {
    // Everything issued under the grant goes, but not a pending sign-in that refers to it: signing in
    // as another account ends the old session (revoking its grants) and then resumes that interaction.
    await runWrite(db, REVOKE_BY_GRANT, [realmId, grantId]);
  },
  /** Revokes a grant: everything issued under it, and the grant itself. */
  async revokeGrant(db: Db, realmId: string, grantId: string): Promise<void> {
    await db.transaction(async (trx) => {
      await runWrite(trx, REVOKE_BY_GRANT, [realmId, grantId]);
      await runWrite(trx, DESTROY, [realmId, 'Grant', grantId]);
    });
  },
  /**
   * Signs an account out everywhere but one session (uid `keepUid`): its other sessions (node-oidc-provider's
   * Session rows) end, and its grants other than the kept session's are revoked with everything issued
   * under them (refresh and access tokens, codes). Returns how many sessions and grants went. The account's
   * rows are found through the (realm_id, account_id) index.
   */
  async signOutEverywhere(db: Db, realmId: string, accountId: string, keepUid?: string): Promise<{ sessions: number; grants: number; ended: EndedSession[] }> {
    const sessions = await rowsOfAccount(db, realmId, accountId, 'Session');
    const kept = keepUid === undefined ? undefined : sessions.find((r) => r.uid === keepUid);
    const keptGrants = new Set(kept ? grantsOfSession(kept) : []);
    const endingRows = sessions.filter((r) => r !== kept);
    const ending = endingRows.map((r) => r.id);
    const revoking = (await rowsOfAccount(db, realmId, accountId, 'Grant')).map((r) => r.id).filter((id) => !keptGrants.has(id));
    for (let i = 0; i < ending.length; i += 100) {
      await db('oidc_payloads').where({ realm_id: realmId, model: 'Session' }).whereIn('id', ending.slice(i, i + 100)).delete();
    }
    for (const grantId of revoking) await payloadsRepo.revokeGrant(db, realmId, grantId);
    return { sessions: ending.length, grants: revoking.length, ended: endingRows.map(endedOf) };
  },
  /** An account's live sessions (node-oidc-provider's Session rows), through the account index. */
  async sessionsOf(db: Db, realmId: string, accountId: string, now: number): Promise<StoredRow[]> {
    return rowsOfAccount(db, realmId, accountId, 'Session', now);
  },
  /** An account's live grants (one per application and session), through the account index. */
  async grantsOf(db: Db, realmId: string, accountId: string, now: number): Promise<StoredRow[]> {
    return rowsOfAccount(db, realmId, accountId, 'Grant', now);
  },
  /**
   * Ends one session of an account (by its uid): the Session row goes, and the grants made in it are
   * revoked with everything issued under them. Undefined when the account has no such session (another
   * account's, ended already, never was).
   */
  async endSession(db: Db, realmId: string, accountId: string, uid: string): Promise<{ ended: EndedSession; grants: number } | undefined> {
    const row = (await rowsOfAccount(db, realmId, accountId, 'Session')).find((r) => r.uid === uid);
    if (!row) return undefined;
    const own = new Set((await rowsOfAccount(db, realmId, accountId, 'Grant')).map((g) => g.id));
    const grants = grantsOfSession(row).filter((g) => own.has(g));
    await runWrite(db, DESTROY, [realmId, 'Session', row.id]);
    for (const grantId of grants) await payloadsRepo.revokeGrant(db, realmId, grantId);
    return { ended: endedOf(row), grants: grants.length };
  },
  /**
   * Revokes every grant an account gave one client (in every session), with everything issued under them;
   * returns how many.
   */
  async revokeAccountClientGrants(db: Db, realmId: string, accountId: string, clientId: string): Promise<number> {
    const grants = (await rowsOfAccount(db, realmId, accountId, 'Grant')).filter((g) => g.payload.clientId === clientId);
    for (const g of grants) await payloadsRepo.revokeGrant(db, realmId, g.id);
    return grants.length;
  },
  /** Which of these grants hold a live refresh token (unused and not expired): through the grant index. */
  async grantsWithRefreshTokens(db: Db, realmId: string, grantIds: string[], now: number): Promise<Set<string>> {
    const found = new Set<string>();
    for (let i = 0; i < grantIds.length; i += 100) {
      const rows = (await db('oidc_payloads')
        .distinct('grant_id')
        .where({ realm_id: realmId, model: 'RefreshToken' })
        .whereIn('grant_id', grantIds.slice(i, i + 100))
        .whereNull('consumed_at')
        .andWhere((w) => w.whereNull('expires_at').orWhere('expires_at', '>', now))) as Array<{ grant_id: string }>;
      for (const r of rows) found.add(r.grant_id);
    }
    return found;
  },
  /**
   * Revokes every grant of a client (a deleted client), with everything issued under them; returns how
   * many. A rare operator action, so a scan of the realm's grants, as {@link signOutEverywhere} does.
   */
  async revokeClientGrants(db: Db, realmId: string, clientId: string): Promise<number> {
    const grants = (await rowsOf(db, realmId, 'Grant')).filter((r) => r.payload.clientId === clientId);
    for (const g of grants) await payloadsRepo.revokeGrant(db, realmId, g.id);
    return grants.length;
  },
  async purgeExpired(db: Db, now: number): Promise<number> {
    return deleteInBatches(db, 'oidc_payloads', ['realm_id', 'model', 'id'], (q) => q.whereNotNull('expires_at').andWhere('expires_at', '<=', now));
  },
};
