import { isSqlite, type Db } from './knex.js';
import { queryFirst, sql } from './statements.js';

/** Who made a user (null: a row from before this was recorded). */
export type UserOrigin = 'signup' | 'operator' | 'import' | 'connection';

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
  createdBy: UserOrigin | null;
  /** The password is a temporary one an operator set: the next sign-in asks for a new one before it completes. */
  passwordChangeRequired: boolean;
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
  createdBy: r.created_by ?? null,
  passwordChangeRequired: Boolean(r.password_change_required),
  createdAt: Number(r.created_at),
  updatedAt: Number(r.updated_at),
});

export const normalizeEmail = (email: string): string => email.trim().toLowerCase();

const BY_ID = sql('select * from users where realm_id = ? and id = ? limit 1');
const BY_EMAIL = sql('select * from users where realm_id = ? and email_normalized = ? limit 1');
// the predicate of the partial index users_bcrypt_hash, word for word (migrations/20261205000003_users_bcrypt_index.js)
const MAX_BCRYPT_COST = sql("select max(substr(password_hash, 5, 2)) as cost from users where realm_id = ? and password_hash like '$2%'");

export const usersRepo = {
  async findById(db: Db, realmId: string, id: string): Promise<UserRow | undefined> {
    const row = await queryFirst(db, BY_ID, [realmId, id]);
    return row ? toUser(row) : undefined;
  },
  async findByEmail(db: Db, realmId: string, email: string): Promise<UserRow | undefined> {
    const row = await queryFirst(db, BY_EMAIL, [realmId, normalizeEmail(email)]);
    return row ? toUser(row) : undefined;
  },
  /** The highest cost among the realm's imported bcrypt hashes (`$2b$12$...` is 12), or null when none is left. */
  async maxBcryptCost(db: Db, realmId: string): Promise<number | null> {
    const cost = Number((await queryFirst(db, MAX_BCRYPT_COST, [realmId]))?.cost);
    return Number.isInteger(cost) && cost > 0 ? cost : null;
  },
  /** The user's row, locked until the transaction `trx` ends on PostgreSQL (SQLite runs one writer at a time). */
  async findForUpdate(trx: Db, realmId: string, id: string): Promise<UserRow | undefined> {
    const q = trx('users').where({ realm_id: realmId, id });
    if (!isSqlite(trx)) q.forUpdate();
    const row = await q.first();
    return row ? toUser(row) : undefined;
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
      created_by: u.createdBy,
      password_change_required: u.passwordChangeRequired,
      created_at: u.createdAt,
      updated_at: u.updatedAt,
    });
  },
  async update(
    db: Db,
    realmId: string,
    id: string,
    changes: Partial<Pick<UserRow, 'disabled' | 'passwordHash' | 'name' | 'passkeyOfferSnoozedUntil' | 'emailVerified' | 'passwordChangeRequired'>>,
    at: number,
  ): Promise<number> {
    const row: Record<string, unknown> = { updated_at: at };
    if (changes.passkeyOfferSnoozedUntil !== undefined) row.passkey_offer_snoozed_until = changes.passkeyOfferSnoozedUntil;
    if (changes.disabled !== undefined) row.disabled = changes.disabled;
    if (changes.passwordHash !== undefined) row.password_hash = changes.passwordHash;
    if (changes.name !== undefined) row.name = changes.name;
    if (changes.emailVerified !== undefined) row.email_verified = changes.emailVerified;
    if (changes.passwordChangeRequired !== undefined) row.password_change_required = changes.passwordChangeRequired;
    return db('users').where({ realm_id: realmId, id }).update(row);
  },

  /** A new email address for the user; confirmed unless `verified` is false (a link sent to it proved it, or an operator vouches). */
  async updateEmail(db: Db, realmId: string, id: string, email: string, at: number, verified = true): Promise<number> {
    return db('users').where({ realm_id: realmId, id }).update({ email, email_normalized: normalizeEmail(email), email_verified: verified, updated_at: at });
  },
};

export type UserSortKey = 'created_at' | 'email_normalized';

export interface UserListQuery {
  tenantId?: string;
  email?: string;
  sort: UserSortKey;
  descending: boolean;
  limit: number;
  /** Keyset position: the sort value and id of the last row of the previous page. */
  after?: { value: string | number; id: string };
}

/** One page of a realm's users, in a stable order (the sort key, then id), filtered by tenant and email. */
export async function listUsers(db: Db, realmId: string, q: UserListQuery): Promise<UserRow[]> {
  const column = `users.${q.sort}`;
  const op = q.descending ? '<' : '>';
  const dir = q.descending ? 'desc' : 'asc';
  const query = db('users').select('users.*').where('users.realm_id', realmId);
  if (q.tenantId !== undefined) {
    query.join('tenant_members', function joinMembers() {
      this.on('tenant_members.user_id', '=', 'users.id').andOn('tenant_members.realm_id', '=', 'users.realm_id');
    });
    query.where('tenant_members.tenant_id', q.tenantId);
  }
  if (q.email !== undefined) query.where('users.email_normalized', normalizeEmail(q.email));
  if (q.after) {
    const { value, id } = q.after;
    query.where((w) => w.where(column, op, value).orWhere((w2) => w2.where(column, value).andWhere('users.id', op, id)));
  }
  const rows = await query.orderBy([{ column, order: dir }, { column: 'users.id', order: dir }]).limit(q.limit);
  return rows.map(toUser);
}
