import type { Db } from './knex.js';

export interface PayloadRow {
  payload: Record<string, unknown>;
  consumedAt: number | null;
}

/** Storage of node-oidc-provider's models (sessions, codes, tokens, ...), always scoped to a realm. */
export const payloadsRepo = {
  async upsert(
    db: Db,
    key: { realmId: string; model: string; id: string },
    payload: Record<string, unknown>,
    expiresAt: number | null,
  ): Promise<void> {
    const row = {
      realm_id: key.realmId,
      model: key.model,
      id: key.id,
      payload: JSON.stringify(payload),
      grant_id: typeof payload.grantId === 'string' ? payload.grantId : null,
      uid: typeof payload.uid === 'string' ? payload.uid : null,
      user_code: typeof payload.userCode === 'string' ? payload.userCode : null,
      expires_at: expiresAt,
      consumed_at: null,
    };
    await db('oidc_payloads').insert(row).onConflict(['realm_id', 'model', 'id']).merge();
  },
  async findBy(db: Db, realmId: string, model: string, column: 'id' | 'uid' | 'user_code', value: string, now: number): Promise<PayloadRow | undefined> {
    const row = await db('oidc_payloads')
      .select('payload', 'consumed_at')
      .where({ realm_id: realmId, model, [column]: value })
      .andWhere((q) => q.whereNull('expires_at').orWhere('expires_at', '>', now))
      .first();
    if (!row) return undefined;
    return { payload: JSON.parse(row.payload), consumedAt: row.consumed_at === null ? null : Number(row.consumed_at) };
  },
  async consume(db: Db, realmId: string, model: string, id: string, at: number): Promise<void> {
    await db('oidc_payloads').where({ realm_id: realmId, model, id }).update({ consumed_at: at });
  },
  async destroy(db: Db, realmId: string, model: string, id: string): Promise<void> {
    await db('oidc_payloads').where({ realm_id: realmId, model, id }).delete();
  },
  async revokeByGrantId(db: Db, realmId: string, grantId: string): Promise<void> {
    // Everything issued under the grant goes, but not a pending sign-in that refers to it: signing in
    // as another account ends the old session (revoking its grants) and then resumes that interaction.
    await db('oidc_payloads').where({ realm_id: realmId, grant_id: grantId }).whereNot({ model: 'Interaction' }).delete();
  },
  async purgeExpired(db: Db, now: number): Promise<number> {
    return db('oidc_payloads').whereNotNull('expires_at').andWhere('expires_at', '<=', now).delete();
  },
};
