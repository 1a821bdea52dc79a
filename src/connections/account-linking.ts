import { randomUUID } from 'node:crypto';
import { connectionsRepo } from '../db/connections-repo.js';
import { factorsRepo } from '../db/factors-repo.js';
import { federatedIdentitiesRepo } from '../db/federated-identities-repo.js';
import type { Db } from '../db/knex.js';
import { conflict, notFound } from '../errors.js';
import { usersRepo, type UserRow } from '../db/users-repo.js';
import { webauthnRepo } from '../db/webauthn-repo.js';
import { recordSecurityEvent } from '../mfa/security-events.js';
import type { PendingLink, PendingStore } from './pending.js';
import { safePicture } from './safe-picture.js';
import type { UsableConnection } from './service.js';
import type { UpstreamIdentity } from './upstream.js';

const EMAIL = /^[^\s@]+@[^\s@]+\.[^\s@]+$/;

/**
 * What an upstream identity means here:
 * - `signed-in`: it is linked to this user (or was just created and linked);
 * - `proof-needed`: its verified email belongs to an existing user, who must prove the account first;
 * - `refused`: it cannot sign in (no usable email, an unverified email that an account already uses,
 *   a disabled account).
 */
export type Resolution =
  | { kind: 'signed-in'; user: UserRow; created: boolean }
  | { kind: 'proof-needed'; user: UserRow; link: PendingLink }
  | { kind: 'refused'; reason: 'email_missing' | 'email_unverified' | 'account_disabled' };

/** A linked upstream identity as the account page, the CLI and the admin API show it. */
export interface LinkedIdentity {
  connectionId: string;
  connectionName: string;
  subject: string;
  email: string | null;
  /** The upstream name last seen. */
  name: string | null;
  linkedAt: number;
  lastUsedAt: number | null;
}

/** A linked identity as the CLI and the admin API print it. */
export const publicIdentity = (l: LinkedIdentity) => ({
  connection_id: l.connectionId,
  connection_name: l.connectionName,
  subject: l.subject,
  email: l.email,
  name: l.name,
  linked_at: new Date(l.linkedAt).toISOString(),
  last_used_at: l.lastUsedAt === null ? null : new Date(l.lastUsedAt).toISOString(),
});

/**
 * An operator's unlink (CLI, admin API): the user's link through `connectionId` goes, or an error says
 * why not. `force` removes even the user's last way in (they then need a password set or a reset link
 * from an operator); `forceHint` names how the caller forces it (`--force`, `?force=true`).
 */
export async function operatorUnlink(
  linking: AccountLinking,
  input: { realmId: string; userId: string; who: string; connectionId: string; force?: boolean; by: string; forceHint: string },
): Promise<void> {
  const outcome = await linking.unlink(input.realmId, input.userId, input.connectionId, { force: input.force, by: input.by });
  if (outcome === 'not_found') throw notFound(`a link of user ${input.who} through connection "${input.connectionId}"`);
  if (outcome === 'last_way_in') {
    throw conflict(
      `connection "${input.connectionId}" is the only way user ${input.who} can sign in (no password, passkey, recovery codes or other linked identity): set a password first, or add ${input.forceHint} to unlink it anyway`,
    );
  }
}

/** `linked_elsewhere`: another user of the realm has it; `connection_in_use`: the user has another identity at this connection. */
export type LinkOutcome = 'linked' | 'already_yours' | 'linked_elsewhere' | 'connection_in_use' | 'not_found';
export type UnlinkOutcome = 'unlinked' | 'not_found' | 'last_way_in';

/**
 * Whether a user can still sign in once some linked identities are gone: a password, a passkey (a
 * discoverable credential; security keys are second factors only), unused recovery codes (a passwordless
 * user signs in with one and is led to a new passkey) or `otherIdentities` linked ones: the ways in the
 * account page counts before deleting a last passkey (src/account/credentials.ts).
 */
async function otherWayIn(trx: Db, user: UserRow, otherIdentities: number): Promise<boolean> {
  if (user.passwordHash || otherIdentities > 0) return true;
  if ((await webauthnRepo.credentialsOf(trx, user.realmId, user.id)).some((c) => c.discoverable)) return true;
  return (await factorsRepo.countUnusedRecoveryCodes(trx, user.realmId, user.id)) > 0;
}

/** Links upstream identities to realm users: by (connection, subject), never silently by email. */
export class AccountLinking {
  constructor(
    private readonly db: Db,
    private readonly pending: PendingStore,
    private readonly safeImageHosts: readonly string[],
  ) {}

  async resolve(connection: UsableConnection, identity: UpstreamIdentity): Promise<Resolution> {
    const realmId = connection.realmId;
    const profile = this.#profile(identity);
    const known = await federatedIdentitiesRepo.find(this.db, realmId, connection.id, identity.subject);
    if (known) {
      const user = await usersRepo.findById(this.db, realmId, known.userId);
      if (!user || user.disabled) return { kind: 'refused', reason: 'account_disabled' };
      await federatedIdentitiesRepo.touch(this.db, realmId, connection.id, identity.subject, { email: identity.email ?? null, profile, at: Date.now() });
      return { kind: 'signed-in', user, created: false };
    }
    const email = identity.email?.trim();
    if (!email || !EMAIL.test(email)) return { kind: 'refused', reason: 'email_missing' };
    const existing = await usersRepo.findByEmail(this.db, realmId, email);
    if (existing) {
      // an address the upstream does not vouch for proves nothing: no link, not even after proof
      if (!identity.emailVerified) return { kind: 'refused', reason: 'email_unverified' };
      if (existing.disabled) return { kind: 'refused', reason: 'account_disabled' };
      return {
        kind: 'proof-needed',
        user: existing,
        link: { connectionId: connection.id, connectionName: connection.name, subject: identity.subject, userId: existing.id, email, profile },
      };
    }
    const user = await this.#createLinkedUser(connection, identity, email, profile);
    if (!user) return this.resolve(connection, identity); // created concurrently: look again
    return { kind: 'signed-in', user, created: true };
  }

  /** Remembers the identity waiting for proof, for this interaction. */
  async awaitProof(realmId: string, uid: string, link: PendingLink): Promise<void> {
    await this.pending.putLink(realmId, uid, link);
  }

  /** The connection whose identity waits in this sign-in for this account's proof, if any (nothing is used up). */
  async waitingFor(realmId: string, uid: string, accountId: string): Promise<string | undefined> {
    const link = await this.pending.getLink(realmId, uid);
    return link?.userId === accountId ? link.connectionId : undefined;
  }

  /**
   * Called when a sign-in completes: links the waiting identity if the account that just proved
   * itself is the one it was waiting for (and returns it); the waiting identity is forgotten either way.
   */
  async completeProof(realmId: string, uid: string, accountId: string): Promise<PendingLink | undefined> {
    const link = await this.pending.getLink(realmId, uid);
    if (!link) return undefined;
    await this.pending.clearLink(realmId, uid);
    if (link.userId !== accountId) return undefined;
    const linked = await this.db.transaction(async (trx) => {
      // the connection may have been removed meanwhile; the identity may have been linked by a parallel sign-in
      if (!(await connectionsRepo.find(trx, realmId, link.connectionId))) return false;
      if (await federatedIdentitiesRepo.find(trx, realmId, link.connectionId, link.subject)) return false;
      await federatedIdentitiesRepo.insert(trx, {
        realmId,
        connectionId: link.connectionId,
        subject: link.subject,
        userId: link.userId,
        email: link.email,
        profile: link.profile,
        createdAt: Date.now(),
        lastLoginAt: Date.now(),
      });
      return true;
    });
    return linked ? link : undefined;
  }

  async identitiesOf(realmId: string, userId: string) {
    return federatedIdentitiesRepo.listForUser(this.db, realmId, userId);
  }

  /** The user's linked identities with the name of their connection, oldest link first. */
  async linkedOf(realmId: string, userId: string): Promise<LinkedIdentity[]> {
    const [identities, connections] = await Promise.all([federatedIdentitiesRepo.listForUser(this.db, realmId, userId), connectionsRepo.list(this.db, realmId)]);
    const byId = new Map(connections.map((c) => [c.id, c]));
    return identities.map((f) => ({
      connectionId: f.connectionId,
      connectionName: byId.get(f.connectionId)?.displayName ?? f.connectionId,
      subject: f.subject,
      email: f.email,
      name: typeof f.profile.name === 'string' ? f.profile.name : null,
      linkedAt: f.createdAt,
      lastUsedAt: f.lastLoginAt,
    }));
  }

  /**
   * Links an upstream identity to a user who proved both sides (signed in here, then at the upstream):
   * no email is compared. Refused, with nothing written, when the identity is linked already (to this
   * user or another) or the user already has another identity at this connection.
   */
  async linkToUser(connection: UsableConnection, identity: UpstreamIdentity, userId: string): Promise<LinkOutcome> {
    const realmId = connection.realmId;
    const now = Date.now();
    const attempt = () =>
      this.db.transaction(async (trx): Promise<LinkOutcome> => {
        if (!(await usersRepo.findForUpdate(trx, realmId, userId))) return 'not_found';
        const known = await federatedIdentitiesRepo.find(trx, realmId, connection.id, identity.subject);
        if (known) return known.userId === userId ? 'already_yours' : 'linked_elsewhere';
        const own = await federatedIdentitiesRepo.listForUser(trx, realmId, userId);
        if (own.some((f) => f.connectionId === connection.id)) return 'connection_in_use';
        await federatedIdentitiesRepo.insert(trx, { realmId, connectionId: connection.id, subject: identity.subject, userId, email: identity.email ?? null, profile: this.#profile(identity), createdAt: now, lastLoginAt: null });
        await recordSecurityEvent(trx, { realmId, userId, type: 'account.identity_linked', detail: { connectionId: connection.id, subject: identity.subject } });
        return 'linked';
      });
    try {
      return await attempt();
    } catch (err) {
      // the same identity linked by a parallel request between the look-up and the insert: look again
      if (await federatedIdentitiesRepo.find(this.db, realmId, connection.id, identity.subject)) return attempt();
      throw err;
    }
  }

  /** Whether the user's one linked identity is also their only way in (nothing else: see `otherWayIn`). */
  async isSoleWayIn(user: UserRow): Promise<boolean> {
    return !(await otherWayIn(this.db, user, 0));
  }

  /**
   * Removes the user's link through `connectionId`. Refused (`last_way_in`) when it is the user's last
   * way in (see `otherWayIn`) unless `force` (an operator's choice); checked with the user's row locked,
   * so two unlinks in parallel cannot together remove the last one. The security event is written in the
   * same transaction.
   */
  async unlink(realmId: string, userId: string, connectionId: string, options: { force?: boolean; by: string }): Promise<UnlinkOutcome> {
    return this.db.transaction(async (trx) => {
      const user = await usersRepo.findForUpdate(trx, realmId, userId);
      if (!user) return 'not_found';
      const identities = await federatedIdentitiesRepo.listForUser(trx, realmId, userId);
      const target = identities.filter((f) => f.connectionId === connectionId);
      if (target.length === 0) return 'not_found';
      const others = identities.length - target.length;
      const lastWayIn = !(await otherWayIn(trx, user, others));
      if (lastWayIn && !options.force) return 'last_way_in';
      await federatedIdentitiesRepo.removeForUser(trx, realmId, userId, connectionId);
      await recordSecurityEvent(trx, {
        realmId,
        userId,
        type: 'account.identity_unlinked',
        detail: { connectionId, subjects: target.map((f) => f.subject), by: options.by, ...(lastWayIn ? { lastWayIn: true } : {}) },
      });
      return 'unlinked';
    });
  }

  /** The claims worth keeping: name, email, and the picture only from a safe image host. */
  #profile(identity: UpstreamIdentity): Record<string, unknown> {
    const picture = safePicture(identity.picture, this.safeImageHosts);
    return {
      ...(identity.name ? { name: identity.name } : {}),
      ...(identity.email ? { email: identity.email, email_verified: identity.emailVerified } : {}),
      ...(picture ? { picture } : {}),
    };
  }

  /** A new user and its link, together or not at all; undefined when the email or link was taken meanwhile. */
  async #createLinkedUser(connection: UsableConnection, identity: UpstreamIdentity, email: string, profile: Record<string, unknown>): Promise<UserRow | undefined> {
    const now = Date.now();
    const user: UserRow = {
      id: randomUUID(),
      realmId: connection.realmId,
      email,
      emailVerified: identity.emailVerified,
      name: identity.name ?? null,
      picture: (profile.picture as string | undefined) ?? null,
      passwordHash: null,
      disabled: false,
      passkeyOfferSnoozedUntil: null,
      createdBy: 'connection',
      passwordChangeRequired: false,
      createdAt: now,
      updatedAt: now,
    };
    try {
      await this.db.transaction(async (trx) => {
        await usersRepo.insert(trx, user);
        await federatedIdentitiesRepo.insert(trx, {
          realmId: connection.realmId,
          connectionId: connection.id,
          subject: identity.subject,
          userId: user.id,
          email,
          profile,
          createdAt: now,
          lastLoginAt: now,
        });
      });
    } catch (err) {
      const taken = (await usersRepo.findByEmail(this.db, connection.realmId, email)) || (await federatedIdentitiesRepo.find(this.db, connection.realmId, connection.id, identity.subject));
      if (taken) return undefined;
      throw err;
    }
    return user;
  }
}
