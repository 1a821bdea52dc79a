import type { Db } from './knex.js';

export interface FederatedIdentityRow {
  realmId: string;
  connectionId: string;
  /** The upstream `sub` (or user id of an OAuth 2.0 provider). */
  subject: string;
  userId: string;
  email: string | null;
  /** The last upstream claims seen (never tokens). */
  profile: Record<string, unknown>;
  createdAt: number;
  lastLoginAt: number | null;
}

const toIdentity = (r: any): FederatedIdentityRow => ({
  realmId: r.realm_id,
  connectionId: r.connection_id,
  subject: r.subject,
  userId: r.user_id,
  email: r.email ?? null,
  profile: JSON.parse(r.profile),
  createdAt: Number(r.created_at),
  lastLoginAt: r.last_login_at === null || r.last_login_at === undefined ? null : Number(r.last_login_at),
});

/** Links from an upstream identity (connection, subject) to a realm user. */
export const federatedIdentitiesRepo = {
  async find(db: Db, realmId: string, connectionId: string, subject: string): Promise<FederatedIdentityRow | undefined> {
    const row = await db('federated_identities').where({ realm_id: realmId, connection_id: connectionId, subject }).first();
    return row ? toIdentity(row) : undefined;
  },
  async listForUser(db: Db, realmId: string, userId: string): Promise<FederatedIdentityRow[]> {
    return (await db('federated_identities').where({ realm_id: realmId, user_id: userId }).orderBy('created_at')).map(toIdentity);
  },
  /** Removes the user's link(s) through one connection; how many went. */
  async removeForUser(db: Db, realmId: string, userId: string, connectionId: string): Promise<number> {
    return db('federated_identities').where({ realm_id: realmId, user_id: userId, connection_id: connectionId }).delete();
  },
  async insert(db: Db, f: FederatedIdentityRow): Promise<void> {
    await db('federated_identities').insert({
      realm_id: f.realmId,
      connection_id: f.connectionId,
      subject: f.subject,
      user_id: f.userId,
      email: f.email,
      profile: JSON.stringify(f.profile),
      created_at: f.createdAt,
      last_login_at: f.lastLoginAt,
    });
  },
  async touch(db: Db, realmId: string, connectionId: string, subject: string, changes: { email: string | null; profile: Record<string, unknown>; at: number }): Promise<void> {
    await db('federated_identities')
      .where({ realm_id: realmId, connection_id: connectionId, subject })
      .update({ email: changes.email, profile: JSON.stringify(changes.profile), last_login_at: changes.at });
  },
};
