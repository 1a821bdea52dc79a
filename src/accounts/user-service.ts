import { EMAIL_ADDRESS as EMAIL } from './email-address.js';
import { randomUUID } from 'node:crypto';
import type { LatchkeyConfig } from '../config/schema.js';
import type { Db } from '../db/knex.js';
import { emailLinksRepo } from '../db/email-links-repo.js';
import { payloadsRepo, type EndedSession } from '../db/payloads-repo.js';
import { realmsRepo } from '../db/realms-repo.js';
import { tenantsRepo } from '../db/tenants-repo.js';
import { listUsers, normalizeEmail, usersRepo, type UserOrigin, type UserRow, type UserSortKey } from '../db/users-repo.js';
import { conflict, invalid, invalidField, LatchkeyError, notFound } from '../errors.js';
import { optionalName } from '../display-name.js';
import type { PasswordHasher } from './password-hasher.js';
import { checkPassword, normalizePassword } from './password-policy.js';
import { isBcryptHash } from './imported-hash.js';
import type { ImportUser } from './user-import.js';
import { perRequestMemo } from '../server/per-request.js';

export interface PublicUser {
  id: string;
  realm: string;
  email: string;
  email_verified: boolean;
  name: string | null;
  disabled: boolean;
  /** The password is a temporary one: the next sign-in asks for a new one. */
  password_change_required: boolean;
  created_at: string;
}

export const toPublicUser = (u: UserRow): PublicUser => ({
  id: u.id,
  realm: u.realmId,
  email: u.email,
  email_verified: u.emailVerified,
  name: u.name,
  disabled: u.disabled,
  password_change_required: u.passwordChangeRequired,
  created_at: new Date(u.createdAt).toISOString(),
});

/** Orders of `list`: a field, descending with a leading "-". */
export const USER_SORTS = { created_at: 'created_at', '-created_at': 'created_at', email: 'email_normalized', '-email': 'email_normalized' } as const satisfies Record<string, UserSortKey>;
export type UserSort = keyof typeof USER_SORTS;

const badCursor = (why: string) => new LatchkeyError('invalid_cursor', `cursor ${why}`, 400);

/** The position after a page's last user: base64url JSON of the sort, its value and the id. */
function encodeUserCursor(sort: UserSort, value: string | number, id: string): string {
  return Buffer.from(JSON.stringify({ s: sort, v: value, id }), 'utf8').toString('base64url');
}

function decodeUserCursor(cursor: string, sort: UserSort): { value: string | number; id: string } {
  let c: { s?: unknown; v?: unknown; id?: unknown } | undefined;
  try {
    c = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8'));
  } catch {
    c = undefined;
  }
  if (!c || typeof c !== 'object' || typeof c.id !== 'string' || (typeof c.v !== 'string' && typeof c.v !== 'number') || typeof c.s !== 'string') {
    throw badCursor('is not a next_cursor value from an earlier page');
  }
  if (c.s !== sort) throw badCursor(`belongs to another sort order ("${c.s}"): pass sort=${c.s} or start again without a cursor`);
  return { value: c.v, id: c.id };
}

/** Announces sessions ended outside a request; resolves with how many logout tokens went out and how many failed. */
export type SessionsEndedListener = (realmId: string, accountId: string, ended: EndedSession[]) => Promise<{ delivered: number; failed: number }>;

/** Users of a realm: creation with the password policy, look-ups, disabling. */
export class UserService {
  constructor(
    private readonly db: Db,
    private readonly hasher: PasswordHasher,
    private readonly passwordRules: LatchkeyConfig['passwords'],
  ) {}

  /**
   * A new user. `passwordHash` is one `hashNewPassword` made earlier (a sign-up that waited for its
   * emailed code); otherwise `password` is checked against the policy and hashed here.
   */
  async create(input: {
    realmId: string;
    email: string;
    name?: string;
    password?: string;
    /** `password` is temporary: the user chooses a new one at their next sign-in. */
    temporaryPassword?: boolean;
    passwordHash?: string;
    emailVerified?: boolean;
    disabled?: boolean;
    createdBy?: UserOrigin;
  }): Promise<PublicUser> {
    if (input.temporaryPassword && input.password === undefined) throw invalidField('temporaryPassword', (n) => `a temporary password needs a password (${n('password')})`);
    const email = input.email?.trim();
    if (!email || !EMAIL.test(email) || email.length > 320) throw invalid(`"${input.email ?? ''}" is not a valid email address`);
    // shown on the account and consent pages and put in ID tokens: the shared name rule (src/display-name.ts)
    const name = optionalName(input.name, 'name');
    if (!(await realmsRepo.find(this.db, input.realmId))) throw notFound(`realm "${input.realmId}"`);
    const passwordHash = input.passwordHash ?? (input.password === undefined ? null : await this.#hashNew(input.password, email));
    if (await usersRepo.findByEmail(this.db, input.realmId, email)) throw conflict(`a user with email ${email} already exists in realm "${input.realmId}"`);
    const now = Date.now();
    const row: UserRow = {
      id: randomUUID(),
      realmId: input.realmId,
      email,
      emailVerified: input.emailVerified ?? true,
      name,
      picture: null,
      passwordHash,
      disabled: input.disabled ?? false,
      passkeyOfferSnoozedUntil: null,
      createdBy: input.createdBy ?? 'operator',
      passwordChangeRequired: input.temporaryPassword === true,
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

  /**
   * Creates the users of a checked import file (`parseUserImport`) one by one, each in one insert;
   * an address that already has an account is skipped, never changed. With `dryRun` nothing is written
   * and the counts say what would be. `onProgress` hears how many users were handled so far.
   */
  async importUsers(
    realmId: string,
    users: ImportUser[],
    options: { dryRun?: boolean; onProgress?: (done: number, total: number) => void } = {},
  ): Promise<{ realm: string; dry_run: boolean; total: number; created: number; skipped: { email: string; where: string; reason: 'exists' }[]; password_hashes: Record<'argon2' | 'bcrypt' | 'none', number> }> {
    if (!(await realmsRepo.find(this.db, realmId))) throw notFound(`realm "${realmId}"`);
    const skipped: { email: string; where: string; reason: 'exists' }[] = [];
    const hashes = { argon2: 0, bcrypt: 0, none: 0 };
    let created = 0;
    for (const [i, u] of users.entries()) {
      // create() looks the address up itself (and refuses a taken one with a conflict); a dry run only looks
      if (await this.#importOne(realmId, u, options.dryRun, created)) {
        created++;
        hashes[u.hashKind ?? 'none']++;
      } else skipped.push({ email: u.email, where: u.where, reason: 'exists' });
      options.onProgress?.(i + 1, users.length);
    }
    return { realm: realmId, dry_run: Boolean(options.dryRun), total: users.length, created, skipped, password_hashes: hashes };
  }

  /** Creates one imported user (or, in a dry run, checks its address is free); false when the address has an account. */
  async #importOne(realmId: string, u: ImportUser, dryRun: boolean | undefined, createdSoFar: number): Promise<boolean> {
    if (dryRun) return !(await usersRepo.findByEmail(this.db, realmId, u.email));
    try {
      await this.create({ realmId, email: u.email, name: u.name ?? undefined, passwordHash: u.passwordHash ?? undefined, emailVerified: u.emailVerified, disabled: u.disabled, createdBy: 'import' });
      return true;
    } catch (err) {
      // there already, or created meanwhile (by a sign-up, or another import): skipped, never changed
      if (err instanceof LatchkeyError && err.code === 'conflict') return false;
      throw new LatchkeyError('import_failed', `${u.where} (${u.email}) could not be imported, and the users after it were not: ${(err as Error).message}. ${createdSoFar} user${createdSoFar === 1 ? ' was' : 's were'} created before it; import the file again to add the rest (existing users are skipped)`, err instanceof LatchkeyError ? err.status : 500);
    }
  }

  /**
   * Every user of the realm in the form `latchkey user import` reads (oldest first), for a copy into
   * another realm or out of Latchkey. Password hashes only with `includePasswordHashes`: they are secrets.
   */
  async exportUsers(
    realmId: string,
    options: { includePasswordHashes?: boolean; onProgress?: (done: number) => void } = {},
  ): Promise<{ realm: string; password_hashes: boolean; users: Array<{ email: string; name: string | null; email_verified: boolean; disabled: boolean; password_hash?: string | null }> }> {
    if (!(await realmsRepo.find(this.db, realmId))) throw notFound(`realm "${realmId}"`);
    const users: Array<{ email: string; name: string | null; email_verified: boolean; disabled: boolean; password_hash?: string | null }> = [];
    let after: { value: number; id: string } | undefined;
    for (;;) {
      const page = await listUsers(this.db, realmId, { sort: 'created_at', descending: false, limit: 500, after });
      for (const u of page) {
        users.push({ email: u.email, name: u.name, email_verified: u.emailVerified, disabled: u.disabled, ...(options.includePasswordHashes ? { password_hash: u.passwordHash } : {}) });
      }
      options.onProgress?.(users.length);
      const last = page.at(-1);
      if (page.length < 500 || !last) break;
      after = { value: last.createdAt, id: last.id };
    }
    return { realm: realmId, password_hashes: Boolean(options.includePasswordHashes), users };
  }

  async setDisabled(realmId: string, email: string, disabled: boolean): Promise<PublicUser> {
    const user = await usersRepo.findByEmail(this.db, realmId, email);
    if (!user) throw notFound(`user ${email} in realm "${realmId}"`);
    const now = Date.now();
    await usersRepo.update(this.db, realmId, user.id, { disabled }, now);
    return toPublicUser({ ...user, disabled, updatedAt: now });
  }

  /**
   * Changes a user's name, disabled flag or password, by id. A new password is checked against the
   * policy (with the user's email as context) before anything is written; all changes go in one update.
   */
  /** `temporaryPassword` goes with `password`: the user chooses a new one at their next sign-in (a password set without it is not temporary). */
  async update(realmId: string, id: string, changes: { name?: string | null; disabled?: boolean; password?: string; temporaryPassword?: boolean }): Promise<PublicUser> {
    if (changes.temporaryPassword !== undefined && changes.password === undefined) throw invalidField('temporaryPassword', (n) => `goes with a new password (${n('password')})`);
    const user = await usersRepo.findById(this.db, realmId, id);
    if (!user) throw notFound(`user ${id} in realm "${realmId}"`);
    const name = changes.name === undefined ? undefined : optionalName(changes.name, 'name');
    const row: Partial<Pick<UserRow, 'name' | 'disabled' | 'passwordHash' | 'passwordChangeRequired'>> = {};
    if (name !== undefined) row.name = name;
    if (changes.disabled !== undefined) row.disabled = changes.disabled;
    if (changes.password !== undefined) {
      row.passwordHash = await this.#hashNew(changes.password, user.email);
      row.passwordChangeRequired = changes.temporaryPassword === true;
    }
    const now = Date.now();
    await usersRepo.update(this.db, realmId, id, row, now);
    // a reset link sent before the change must not undo it
    if (row.passwordHash !== undefined) await emailLinksRepo.removeForUser(this.db, 'password_reset', realmId, id);
    return toPublicUser({ ...user, ...row, updatedAt: now });
  }

  /**
   * Sets a new password from a reset link: the password is checked against the policy and hashed first,
   * then `claim` uses the link (single use), and only if it did is the password written (and the email
   * address marked confirmed); every other pending reset link of the user ends with it. A password the policy refuses throws and leaves the link
   * usable; false when the link was used meanwhile.
   */
  async resetPassword(realmId: string, id: string, password: string, claim: () => Promise<boolean>): Promise<boolean> {
    const user = await usersRepo.findById(this.db, realmId, id);
    if (!user) return false;
    const passwordHash = await this.#hashNew(password, user.email);
    if (!(await claim())) return false;
    // the link came by email: the address is confirmed as well
    await usersRepo.update(this.db, realmId, id, { passwordHash, emailVerified: true, passwordChangeRequired: false }, Date.now());
    await emailLinksRepo.removeForUser(this.db, 'password_reset', realmId, id);
    return true;
  }

  /** Marks the user's email address as confirmed (a link sent to it was used); false when the user is gone. */
  async confirmEmail(realmId: string, id: string, claim: () => Promise<boolean>): Promise<boolean> {
    if (!(await claim())) return false;
    return (await usersRepo.update(this.db, realmId, id, { emailVerified: true }, Date.now())) === 1;
  }

  /**
   * Changes the user's email address through a link sent to the new one: `claim` uses the link (single
   * use) once the address is known to be free; the address is then confirmed, and the user's other
   * pending address links end. False when the link was used meanwhile; a conflict when the address
   * belongs to another account (the link stays unused).
   */
  async changeEmail(realmId: string, id: string, newEmail: string, claim: () => Promise<boolean>): Promise<boolean> {
    const email = newEmail.trim();
    if (!EMAIL.test(email) || email.length > 320) throw invalid(`"${newEmail}" is not a valid email address`);
    const holder = await usersRepo.findByEmail(this.db, realmId, email);
    if (holder && holder.id !== id) throw conflict(`a user with email ${email} already exists in realm "${realmId}"`);
    if (!(await claim())) return false;
    let changed: number;
    try {
      changed = await usersRepo.updateEmail(this.db, realmId, id, email, Date.now());
    } catch (err) {
      // the unique (realm, address) index: another account took it since the check above
      if (await usersRepo.findByEmail(this.db, realmId, email)) throw conflict(`a user with email ${email} already exists in realm "${realmId}"`);
      throw err;
    }
    for (const purpose of ['change_email', 'verify_email'] as const) await emailLinksRepo.removeForUser(this.db, purpose, realmId, id);
    return changed === 1;
  }

  /**
   * An operator changes the user's email address (no link): confirmed unless `verified` is false. A
   * conflict when another account has the address; pending address links of the user end.
   */
  async setEmail(realmId: string, email: string, newEmail: string, options: { verified?: boolean } = {}): Promise<PublicUser> {
    const user = await usersRepo.findByEmail(this.db, realmId, email);
    if (!user) throw notFound(`user ${email} in realm "${realmId}"`);
    const next = newEmail.trim();
    if (!EMAIL.test(next) || next.length > 320) throw invalid(`"${newEmail}" is not a valid email address`);
    const holder = await usersRepo.findByEmail(this.db, realmId, next);
    if (holder && holder.id !== user.id) throw conflict(`a user with email ${next} already exists in realm "${realmId}"`);
    const verified = options.verified ?? true;
    const now = Date.now();
    try {
      await usersRepo.updateEmail(this.db, realmId, user.id, next, now, verified);
    } catch (err) {
      if (await usersRepo.findByEmail(this.db, realmId, next)) throw conflict(`a user with email ${next} already exists in realm "${realmId}"`);
      throw err;
    }
    for (const purpose of ['change_email', 'verify_email'] as const) await emailLinksRepo.removeForUser(this.db, purpose, realmId, user.id);
    return toPublicUser({ ...user, email: next, emailVerified: verified, updatedAt: now });
  }

  /** Sets (or replaces) the password of the user with this email. */
  async setPassword(realmId: string, email: string, password: string, options: { temporary?: boolean } = {}): Promise<PublicUser> {
    const user = await usersRepo.findByEmail(this.db, realmId, email);
    if (!user) throw notFound(`user ${email} in realm "${realmId}"`);
    return this.update(realmId, user.id, { password, temporaryPassword: options.temporary === true });
  }

  /**
   * The password a user chooses at sign-in in place of a temporary one: it must pass the policy and differ
   * from the temporary one (which costs one verification). Throws `invalid_input` with a sentence naming
   * the rule; writes nothing then.
   */
  async replaceTemporaryPassword(realmId: string, user: UserRow, password: string): Promise<void> {
    this.#checkNew(password, user.email);
    if (await this.hasher.verify(user.passwordHash, password)) throw invalid('Choose a password different from the temporary one.');
    const passwordHash = await this.hasher.hash(normalizePassword(password));
    await usersRepo.update(this.db, realmId, user.id, { passwordHash, passwordChangeRequired: false }, Date.now());
    await emailLinksRepo.removeForUser(this.db, 'password_reset', realmId, user.id);
  }

  /** The argon2id hash of a new password for `email`, once it passes the policy; throws `invalid_input` naming the rule. */
  hashNewPassword(password: string, email: string): Promise<string> {
    return this.#hashNew(password, email);
  }

  /**
   * Finishes a sign-up on the row an earlier, unfinished passwordless sign-up of the address left (no way
   * in at all): the emailed code proved the mailbox, so it gets the name, the password hash and a
   * confirmed address.
   */
  async completeSignup(realmId: string, id: string, input: { name?: string; passwordHash?: string }): Promise<void> {
    const changes: Partial<Pick<UserRow, 'name' | 'passwordHash' | 'emailVerified'>> = { emailVerified: true };
    if (input.name) changes.name = input.name.trim();
    if (input.passwordHash) changes.passwordHash = input.passwordHash;
    await usersRepo.update(this.db, realmId, id, changes, Date.now());
  }

  /** The argon2id hash of a new password, once it passes the policy; otherwise an error naming the rule. */
  async #hashNew(password: string, email: string): Promise<string> {
    this.#checkNew(password, email);
    return this.hasher.hash(normalizePassword(password));
  }

  /** Throws `invalid_input` naming the rule when a new password for `email` breaks the policy. */
  #checkNew(password: string, email: string): void {
    const problem = checkPassword(password, this.passwordRules, { email });
    if (problem) throw invalid(problem);
  }

  /**
   * Signs the user out everywhere except the session with uid `keepSessionUid`: their other sessions end
   * and the grants of other sessions and applications are revoked (refresh tokens included).
   */
  async signOutEverywhere(realmId: string, id: string, keepSessionUid?: string): Promise<{ sessions: number; grants: number; logoutTokens: { delivered: number; failed: number } }> {
    const { sessions, grants, ended } = await payloadsRepo.signOutEverywhere(this.db, realmId, id, keepSessionUid);
    const logoutTokens = this.#sessionsEnded && ended.length ? await this.#sessionsEnded(realmId, id, ended) : { delivered: 0, failed: 0 };
    return { sessions, grants, logoutTokens };
  }

  /**
   * Ends one session of the user (by its uid, as the account page and `latchkey user sessions` show it):
   * the grants made in it are revoked with everything issued under them, and the applications signed in
   * with it are sent logout tokens as {@link signOutEverywhere} does. Undefined when the user has no such
   * session (another user's, ended already, never was).
   */
  async endSession(realmId: string, id: string, sessionUid: string): Promise<{ grants: number; logoutTokens: { delivered: number; failed: number } } | undefined> {
    const done = await payloadsRepo.endSession(this.db, realmId, id, sessionUid);
    if (!done) return undefined;
    const logoutTokens = this.#sessionsEnded ? await this.#sessionsEnded(realmId, id, [done.ended]) : { delivered: 0, failed: 0 };
    return { grants: done.grants, logoutTokens };
  }

  /** Revokes every grant the user gave one application, with every token issued under them; returns how many. */
  async removeAppAccess(realmId: string, id: string, clientId: string): Promise<number> {
    return payloadsRepo.revokeAccountClientGrants(this.db, realmId, id, clientId);
  }

  #sessionsEnded?: SessionsEndedListener;
  /** Who announces sessions that {@link signOutEverywhere} ends (back-channel logout, src/oidc/backchannel-logout.ts). */
  onSessionsEnded(listener: SessionsEndedListener): void {
    this.#sessionsEnded = listener;
  }

  /** "Not now" on the passkey offer: ask again after `days` (far in the future for "don't ask again"). */
  async snoozePasskeyOffer(realmId: string, id: string, until: number): Promise<void> {
    await usersRepo.update(this.db, realmId, id, { passkeyOfferSnoozedUntil: until }, Date.now());
  }

  /**
   * One page of a realm's users in a stable order (`sort`, then id), optionally members of a tenant or
   * with one email. `cursor` is the opaque `next_cursor` of the previous page, for the same sort.
   */
  async list(
    realmId: string,
    options: { tenantId?: string; email?: string; limit?: number; cursor?: string; sort?: UserSort } = {},
  ): Promise<{ users: PublicUser[]; next_cursor: string | null }> {
    const limit = options.limit ?? 50;
    if (!Number.isInteger(limit) || limit < 1 || limit > 200) throw invalidField('limit', `must be a whole number from 1 to 200 (got ${options.limit})`);
    const sort = options.sort ?? 'created_at';
    const key = USER_SORTS[sort];
    if (!key) throw invalidField('sort', `must be one of ${Object.keys(USER_SORTS).join(', ')} (got "${sort}")`);
    const after = options.cursor === undefined ? undefined : decodeUserCursor(options.cursor, sort);
    if (!(await realmsRepo.find(this.db, realmId))) throw notFound(`realm "${realmId}"`);
    if (options.tenantId && !(await tenantsRepo.find(this.db, realmId, options.tenantId))) throw notFound(`tenant "${options.tenantId}" in realm "${realmId}"`);
    const rows = await listUsers(this.db, realmId, { tenantId: options.tenantId, email: options.email, sort: key, descending: sort.startsWith('-'), limit: limit + 1, after });
    const page = rows.slice(0, limit);
    const last = page.at(-1);
    const next = rows.length > limit && last ? encodeUserCursor(sort, key === 'created_at' ? last.createdAt : normalizeEmail(last.email), last.id) : null;
    return { users: page.map(toPublicUser), next_cursor: next };
  }

  /**
   * A user by id. With `request` (the Node request at hand), the answer is shared by every lookup made
   * while that request is served: a passkey verify reads the user, and the sign-in's resume within the
   * same request (src/oidc/resume-in-process.ts) asks findAccount for them again.
   */
  findById(realmId: string, id: string, request?: object): Promise<UserRow | undefined> {
    const load = () => usersRepo.findById(this.db, realmId, id);
    return request ? this.#perRequest(request, `${realmId}\n${id}`, load) : load();
  }

  readonly #perRequest = perRequestMemo<UserRow | undefined>();

  findByEmail(realmId: string, email: string): Promise<UserRow | undefined> {
    return usersRepo.findByEmail(this.db, realmId, email);
  }

  /**
   * Checks an email and password. Unknown emails cost the same argon2 work as wrong passwords,
   * so neither the answer nor its timing tells whether an account exists.
   *
   * While users with imported bcrypt hashes remain in the realm (until each signs in once), every
   * failed check costs one argon2 and one bcrypt verification at their highest cost: a wrong password
   * for such a user (bcrypt, then an argon2 dummy), for anyone else (argon2, then a bcrypt dummy) and
   * an unknown email (both dummies) then take the same work. Right passwords pay nothing extra.
   */
  async verifyPassword(realmId: string, email: string, password: string): Promise<{ ok: true; user: UserRow } | { ok: false; reason: 'invalid_credentials' | 'account_disabled' }> {
    const user = await usersRepo.findByEmail(this.db, realmId, email);
    const candidate = normalizePassword(password);
    if (!user || !user.passwordHash) {
      await this.hasher.verifyDummy(candidate);
      await this.#asCostlyAsImported(realmId, password, null);
      return { ok: false, reason: 'invalid_credentials' };
    }
    // the password as typed: the hasher normalises it for argon2, and checks an imported bcrypt hash against what its user typed
    const matches = await this.hasher.verify(user.passwordHash, password);
    if (!matches) {
      await this.#asCostlyAsImported(realmId, password, user.passwordHash);
      return { ok: false, reason: 'invalid_credentials' };
    }
    if (user.disabled) return { ok: false, reason: 'account_disabled' };
    if (this.hasher.needsRehash(user.passwordHash)) {
      await usersRepo.update(this.db, realmId, user.id, { passwordHash: await this.hasher.hash(candidate) }, Date.now());
    }
    return { ok: true, user };
  }

  /** The rest of a failed check's work when imported bcrypt hashes remain (see verifyPassword); `checked` is the hash just tried. */
  async #asCostlyAsImported(realmId: string, password: string, checked: string | null): Promise<void> {
    if (checked !== null && isBcryptHash(checked)) {
      await this.hasher.verifyDummy(normalizePassword(password));
      return;
    }
    const cost = await this.importedBcryptCost(realmId);
    if (cost !== null) await this.hasher.verifyBcryptDummy(password, cost);
  }

  /** The highest cost among the realm's imported bcrypt hashes not yet replaced by a sign-in, or null when none is left. */
  importedBcryptCost(realmId: string): Promise<number | null> {
    return usersRepo.maxBcryptCost(this.db, realmId);
  }
}
