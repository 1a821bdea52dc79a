import { deleteInBatches } from './batched-delete.js';
import type { Db } from './knex.js';
import { queryFirst, runWrite, sql } from './statements.js';

export interface PayloadRow {
  payload: Record<string, unknown>;
  consumedAt: number | null;
}

const UPSERT = sql(`
  insert into oidc_payloads (realm_id, model, id, payload, grant_id, uid, user_code, expires_at, consumed_at)
  values (?, ?, ?, ?, ?, ?, ?, ?, null)
  on conflict (realm_id, model, id) do update set
    payload = excluded.payload, grant_id = excluded.grant_id, uid = excluded.uid, user_code = excluded.user_code,
    expires_at = excluded.expires_at, consumed_at = null`);
const FIND_BY = {
  id: sql('select payload, consumed_at from oidc_payloads where realm_id = ? and model = ? and id = ? and (expires_at is null or expires_at > ?) limit 1'),
  uid: sql('select payload, consumed_at from oidc_payloads where realm_id = ? and model = ? and uid = ? and (expires_at is null or expires_at > ?) limit 1'),
  user_code: sql('select payload, consumed_at from oidc_payloads where realm_id = ? and model = ? and user_code = ? and (expires_at is null or expires_at > ?) limit 1'),
} as const;
const CONSUME = sql('update oidc_payloads set consumed_at = ? where realm_id = ? and model = ? and id = ?');
const DESTROY = sql('delete from oidc_payloads where realm_id = ? and model = ? and id = ?');
const REVOKE_BY_GRANT = sql("delete from oidc_payloads where realm_id = ? and grant_id = ? and model <> 'Interaction'");

const str = (value: unknown): string | null => (typeof value === 'string' ? value : null);

/** Storage of node-oidc-provider's models (sessions, codes, tokens, ...), always scoped to a realm. */
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
      expiresAt,
    ]);
  },
  async findBy(db: Db, realmId: string, model: string, column: 'id' | 'uid' | 'user_code', value: string, now: number): Promise<PayloadRow | undefined> {
    const row = await queryFirst(db, FIND_BY[column], [realmId, model, value, now]);
    if (!row) return undefined;
    return { payload: JSON.parse(row.payload), consumedAt: row.consumed_at === null ? null : Number(row.consumed_at) };
  },
  async consume(db: Db, realmId: string, model: string, id: string, at: number): Promise<void> {
    await runWrite(db, CONSUME, [at, realmId, model, id]);
  },
  async destroy(db: Db, realmId: string, model: string, id: string): Promise<void> {
    await runWrite(db, DESTROY, [realmId, model, id]);
  },
  async revokeByGrantId(db: Db, realmId: string, grantId: string): Promise<void> {
    // Everything issued under the grant goes, but not a pending sign-in that refers to it: signing in
    // as another account ends the old session (revoking its grants) and then resumes that interaction.
    await runWrite(db, REVOKE_BY_GRANT, [realmId, grantId]);
  },
  async purgeExpired(db: Db, now: number): Promise<number> {
    return deleteInBatches(db, 'oidc_payloads', ['realm_id', 'model', 'id'], (q) => q.whereNotNull('expires_at').andWhere('expires_at', '<=', now));
  },
};
