import { randomUUID } from 'node:crypto';
import type { LatchkeyConfig } from '../config/schema.js';
import type { Db } from '../db/knex.js';
import { realmsRepo } from '../db/realms-repo.js';
import { listUsers, usersRepo, type UserListQuery, type UserRow } from '../db/users-repo.js';
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

  /** Changes a user's name or disabled flag, by id. */
  async update(realmId: string, id: string, changes: { name?: string | null; disabled?: boolean }): Promise<PublicUser> {
    const user = await usersRepo.findById(this.db, realmId, id);
    if (!user) throw notFound(`user ${id} in realm "${realmId}"`);
    const now = Date.now();
    const name = changes.name === undefined ? undefined : changes.name?.trim() || null;
    await usersRepo.update(this.db, realmId, id, { ...(name !== undefined ? { name } : {}), ...(changes.disabled !== undefined ? { disabled: changes.disabled } : {}) }, now);
    return toPublicUser({ ...user, ...(name !== undefined ? { name } : {}), ...(changes.disabled !== undefined ? { disabled: changes.disabled } : {}), updatedAt: now });
  }

  /** "Not now" on the passkey offer: ask again after `days` (far in the future for "don't ask again"). */
  async snoozePasskeyOffer(realmId: string, id: string, until: number): Promise<void> {
    await usersRepo.update(this.db, realmId, id, { passkeyOfferSnoozedUntil: until }, Date.now());
  }

  /** A page of users (see listUsers for the order and the keyset position). */
  async list(realmId: string, query: UserListQuery): Promise<UserRow[]> {
    return listUsers(this.db, realmId, query);
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
