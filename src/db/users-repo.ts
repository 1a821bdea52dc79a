import type { Db } from './knex.js';

export interface UserRow {
  id: string;
  realmId: string;
  email: string;
  emailVerified: boolean;
  name: string | null;
  picture: string | null;
  passwordHash: string | null;
  disabled: boolean;
  /** "Create a passkey" is not offered again before this time. */
  passkeyOfferSnoozedUntil: number | null;
  createdAt: number;
  updatedAt: number;
}

const toUser = (r: any): UserRow => ({
  id: r.id,
  realmId: r.realm_id,
  email: r.email,
  emailVerified: Boolean(r.email_verified),
  name: r.name ?? null,
  picture: r.picture ?? null,
  passwordHash: r.password_hash ?? null,
  disabled: Boolean(r.disabled),
  passkeyOfferSnoozedUntil: r.passkey_offer_snoozed_until === null || r.passkey_offer_snoozed_until === undefined ? null : Number(r.passkey_offer_snoozed_until),
  createdAt: Number(r.created_at),
  updatedAt: Number(r.updated_at),
});

export const normalizeEmail = (email: string): string => email.trim().toLowerCase();

export const usersRepo = {
  async findById(db: Db, realmId: string, id: string): Promise<UserRow | undefined> {
    const row = await db('users').where({ realm_id: realmId, id }).first();
    return row ? toUser(row) : undefined;
  },
  async findByEmail(db: Db, realmId: string, email: string): Promise<UserRow | undefined> {
    const row = await db('users').where({ realm_id: realmId, email_normalized: normalizeEmail(email) }).first();
    return row ? toUser(row) : undefined;
  },
  /** One page of a realm's users in id order after `afterId`, optionally members of a tenant or with an email. */
  async list(db: Db, realmId: string, q: { tenantId?: string; email?: string; afterId?: string; limit: number }): Promise<UserRow[]> {
    const query = db('users').where({ 'users.realm_id': realmId }).select('users.*').orderBy('users.id').limit(q.limit);
    if (q.afterId) query.andWhere('users.id', '>', q.afterId);
    if (q.email) query.andWhere('users.email_normalized', normalizeEmail(q.email));
    if (q.tenantId) {
      query.join('tenant_members', function () {
        this.on('tenant_members.user_id', '=', 'users.id').andOn('tenant_members.realm_id', '=', 'users.realm_id');
      }).andWhere('tenant_members.tenant_id', q.tenantId);
    }
    return (await query).map(toUser);
  },
  async insert(db: Db, u: UserRow): Promise<void> {
    await db('users').insert({
      id: u.id,
      realm_id: u.realmId,
      email: u.email,
      email_normalized: normalizeEmail(u.email),
      email_verified: u.emailVerified,
      name: u.name,
      picture: u.picture,
      password_hash: u.passwordHash,
      disabled: u.disabled,
      created_at: u.createdAt,
      updated_at: u.updatedAt,
    });
  },
  async update(db: Db, realmId: string, id: string, changes: Partial<Pick<UserRow, 'disabled' | 'passwordHash' | 'name' | 'passkeyOfferSnoozedUntil'>>, at: number): Promise<number> {
    const row: Record<string, unknown> = { updated_at: at };
    if (changes.passkeyOfferSnoozedUntil !== undefined) row.passkey_offer_snoozed_until = changes.passkeyOfferSnoozedUntil;
    if (changes.disabled !== undefined) row.disabled = changes.disabled;
    if (changes.passwordHash !== undefined) row.password_hash = changes.passwordHash;
    if (changes.name !== undefined) row.name = changes.name;
    return db('users').where({ realm_id: realmId, id }).update(row);
  },
};
