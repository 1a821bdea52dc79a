import { randomUUID } from 'node:crypto';
import type { LatchkeyConfig } from '../config/schema.js';
import type { Db } from '../db/knex.js';
import { realmsRepo } from '../db/realms-repo.js';
import { tenantsRepo } from '../db/tenants-repo.js';
import { usersRepo, type UserRow } from '../db/users-repo.js';
import { conflict, invalid, notFound } from '../errors.js';
import type { PasswordHasher } from './password-hasher.js';
import { checkPassword, normalizePassword } from './password-policy.js';

const EMAIL = /^[^\s@]+@[^\s@]+\.[^\s@]+$/;

export interface PublicUser {
  id: string;
  realm: string;
  email: string;
  email_verified: boolean;
  name: string | null;
  disabled: boolean;
  created_at: string;
}

export const toPublicUser = (u: UserRow): PublicUser => ({
  id: u.id,
  realm: u.realmId,
  email: u.email,
  email_verified: u.emailVerified,
  name: u.name,
  disabled: u.disabled,
  created_at: new Date(u.createdAt).toISOString(),
});

/** Users of a realm: creation with the password policy, look-ups, disabling. */
export class UserService {
  constructor(
    private readonly db: Db,
    private readonly hasher: PasswordHasher,
    private readonly passwordRules: LatchkeyConfig['passwords'],
  ) {}

  async create(input: { realmId: string; email: string; name?: string; password?: string; emailVerified?: boolean }): Promise<PublicUser> {
    const email = input.email?.trim();
    if (!email || !EMAIL.test(email) || email.length > 320) throw invalid(`"${input.email ?? ''}" is not a valid email address`);
    if (!(await realmsRepo.find(this.db, input.realmId))) throw notFound(`realm "${input.realmId}"`);
    let passwordHash: string | null = null;
    if (input.password !== undefined) {
      const problem = checkPassword(input.password, this.passwordRules, { email });
      if (problem) throw invalid(problem);
      passwordHash = await this.hasher.hash(normalizePassword(input.password));
    }
    if (await usersRepo.findByEmail(this.db, input.realmId, email)) throw conflict(`a user with email ${email} already exists in realm "${input.realmId}"`);
    const now = Date.now();
    const row: UserRow = {
      id: randomUUID(),
      realmId: input.realmId,
      email,
      emailVerified: input.emailVerified ?? true,
      name: input.name?.trim() || null,
      picture: null,
      passwordHash,
      disabled: false,
      passkeyOfferSnoozedUntil: null,
      createdAt: now,
      updatedAt: now,
    };
    try {
      await usersRepo.insert(this.db, row);
    } catch (err) {
      if (await usersRepo.findByEmail(this.db, input.realmId, email)) throw conflict(`a user with email ${email} already exists in realm "${input.realmId}"`);
      throw err;
    }
    return toPublicUser(row);
  }

  async setDisabled(realmId: string, email: string, disabled: boolean): Promise<PublicUser> {
    const user = await usersRepo.findByEmail(this.db, realmId, email);
    if (!user) throw notFound(`user ${email} in realm "${realmId}"`);
    const now = Date.now();
    await usersRepo.update(this.db, realmId, user.id, { disabled }, now);
    return toPublicUser({ ...user, disabled, updatedAt: now });
  }

  /** "Not now" on the passkey offer: ask again after `days` (far in the future for "don't ask again"). */
  async snoozePasskeyOffer(realmId: string, id: string, until: number): Promise<void> {
    await usersRepo.update(this.db, realmId, id, { passkeyOfferSnoozedUntil: until }, Date.now());
  }

  /**
   * One page of a realm's users (keyset pagination by id). `cursor` is the opaque `next_cursor` of the
   * previous page (base64url of the last id); `tenantId` keeps members of that tenant, `email` one address.
   */
  async list(realmId: string, options: { tenantId?: string; email?: string; limit?: number; cursor?: string } = {}): Promise<{ users: PublicUser[]; next_cursor: string | null }> {
    const limit = options.limit ?? 50;
    if (!Number.isInteger(limit) || limit < 1 || limit > 200) throw invalid(`limit must be a whole number from 1 to 200 (got ${options.limit})`);
    let afterId: string | undefined;
    if (options.cursor !== undefined) {
      afterId = /^[A-Za-z0-9_-]{1,200}$/.test(options.cursor) ? Buffer.from(options.cursor, 'base64url').toString('utf8') : '';
      if (!afterId || afterId.length > 64 || Buffer.from(afterId, 'utf8').toString('base64url') !== options.cursor) throw invalid('cursor is not a next_cursor value from an earlier page');
    }
    if (!(await realmsRepo.find(this.db, realmId))) throw notFound(`realm "${realmId}"`);
    if (options.tenantId && !(await tenantsRepo.find(this.db, realmId, options.tenantId))) throw notFound(`tenant "${options.tenantId}" in realm "${realmId}"`);
    const rows = await usersRepo.list(this.db, realmId, { tenantId: options.tenantId, email: options.email, afterId, limit: limit + 1 });
    const page = rows.slice(0, limit);
    return { users: page.map(toPublicUser), next_cursor: rows.length > limit ? Buffer.from(page.at(-1)!.id, 'utf8').toString('base64url') : null };
  }

  findById(realmId: string, id: string): Promise<UserRow | undefined> {
    return usersRepo.findById(this.db, realmId, id);
  }

  findByEmail(realmId: string, email: string): Promise<UserRow | undefined> {
    return usersRepo.findByEmail(this.db, realmId, email);
  }

  /**
   * Checks an email and password. Unknown emails cost the same argon2 work as wrong passwords,
   * so neither the answer nor its timing tells whether an account exists.
   */
  async verifyPassword(realmId: string, email: string, password: string): Promise<{ ok: true; user: UserRow } | { ok: false; reason: 'invalid_credentials' | 'account_disabled' }> {
    const user = await usersRepo.findByEmail(this.db, realmId, email);
    const candidate = normalizePassword(password);
    if (!user || !user.passwordHash) {
      await this.hasher.verifyDummy(candidate);
      return { ok: false, reason: 'invalid_credentials' };
    }
    const matches = await this.hasher.verify(user.passwordHash, candidate);
    if (!matches) return { ok: false, reason: 'invalid_credentials' };
    if (user.disabled) return { ok: false, reason: 'account_disabled' };
    if (this.hasher.needsRehash(user.passwordHash)) {
      await usersRepo.update(this.db, realmId, user.id, { passwordHash: await this.hasher.hash(candidate) }, Date.now());
    }
    return { ok: true, user };
  }
}
