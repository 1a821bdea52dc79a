import type { Db } from './knex.js';

export interface TrustedIssuerRow {
  realmId: string;
  id: string;
  issuer: string;
  audience: string;
  userIdExpression: string;
  userIdPrefix: string;
  adminUserIds: string[];
  createdAt: number;
  updatedAt: number;
}

const toRow = (r: any): TrustedIssuerRow => ({
  realmId: r.realm_id,
  id: r.id,
  issuer: r.issuer,
  audience: r.audience,
  userIdExpression: r.user_id_expression,
  userIdPrefix: r.user_id_prefix ?? '',
  adminUserIds: JSON.parse(r.admin_user_ids ?? '[]'),
  createdAt: Number(r.created_at),
  updatedAt: Number(r.updated_at),
});

export const trustedIssuersRepo = {
  async find(db: Db, realmId: string, id: string): Promise<TrustedIssuerRow | undefined> {
    const row = await db('trusted_issuers').where({ realm_id: realmId, id }).first();
    return row ? toRow(row) : undefined;
  },
  async findByIssuerAndAudience(db: Db, realmId: string, issuer: string, audience: string): Promise<TrustedIssuerRow | undefined> {
    const row = await db('trusted_issuers').where({ realm_id: realmId, issuer, audience }).first();
    return row ? toRow(row) : undefined;
  },
  /** Every registration of `issuer` in the realm (one per audience), oldest first. */
  async listByIssuer(db: Db, realmId: string, issuer: string): Promise<TrustedIssuerRow[]> {
    return (await db('trusted_issuers').where({ realm_id: realmId, issuer }).orderBy(['created_at', 'id'])).map(toRow);
  },
  async list(db: Db, realmId: string): Promise<TrustedIssuerRow[]> {
    return (await db('trusted_issuers').where({ realm_id: realmId }).orderBy(['created_at', 'id'])).map(toRow);
  },
  async insert(db: Db, t: TrustedIssuerRow): Promise<void> {
    await db('trusted_issuers').insert({
      realm_id: t.realmId,
      id: t.id,
      issuer: t.issuer,
      audience: t.audience,
      user_id_expression: t.userIdExpression,
      user_id_prefix: t.userIdPrefix,
      admin_user_ids: JSON.stringify(t.adminUserIds),
      created_at: t.createdAt,
      updated_at: t.updatedAt,
    });
  },
  async remove(db: Db, realmId: string, id: string): Promise<boolean> {
    return (await db('trusted_issuers').where({ realm_id: realmId, id }).delete()) > 0;
  },
};
