import { factorsRepo } from '../db/factors-repo.js';
import { federatedIdentitiesRepo } from '../db/federated-identities-repo.js';
import type { Db } from '../db/knex.js';
import { isSqlite } from '../db/knex.js';
import { webauthnRepo, type CredentialRow } from '../db/webauthn-repo.js';
import { recordSecurityEvent } from '../mfa/security-events.js';
import { authenticatorName } from '../passkeys/aaguids.js';

/** What the account page shows of one passkey or security key (views/account.eta). */
export interface CredentialView {
  id: string;
  name: string;
  deviceLabel: string;
  backedUp: boolean;
  authenticator?: string;
  createdAt: string;
  lastUsedAt: string;
  renameAction: string;
  deleteAction: string;
  confirmNeeded: boolean;
  /** Deleting it would leave no way to sign in at all: refused until there is another (recovery codes, say). */
  locksOut: boolean;
  /** The field an error on the page is about (set by the route that rejected it). */
  invalidField?: 'name' | 'confirm';
  /** The rejected name, shown again as typed. */
  nameValue?: string;
}

const DATE = new Intl.DateTimeFormat('en-GB', { dateStyle: 'medium', timeStyle: 'short', timeZone: 'UTC' });

export const displayTime = (ms: number | null): string => (ms === null || !Number.isFinite(ms) ? 'Never' : `${DATE.format(new Date(ms))} UTC`);

/** "Security key" (a second factor), "Synced passkey" (multi-device, may be backed up) or "This device only". */
export function deviceLabel(c: Pick<CredentialRow, 'discoverable' | 'deviceType'>): string {
  if (!c.discoverable) return 'Security key';
  return c.deviceType === 'multiDevice' ? 'Synced passkey' : 'This device only';
}

/**
 * Whether deleting `target` can leave the user without a way to sign in: a user without a password
 * whose only passkey (discoverable credential) for that RP ID this is. Security keys are second
 * factors and never sign in on their own, so they do not count either way.
 */
export function isLastSignInPasskey(target: Pick<CredentialRow, 'id' | 'discoverable' | 'rpId'>, all: Array<Pick<CredentialRow, 'id' | 'discoverable' | 'rpId'>>, hasPassword: boolean): boolean {
  if (hasPassword || !target.discoverable) return false;
  return !all.some((c) => c.id !== target.id && c.discoverable && c.rpId === target.rpId);
}

/** What else a user can sign in with when their passkeys are gone. */
export interface OtherWaysIn {
  hasPassword: boolean;
  /** Unused recovery codes: a passwordless user signs in with one and is led to a new passkey. */
  recoveryCodes: number;
  /** Linked upstream identities (connections). */
  federated: number;
}

/**
 * Whether deleting `target` leaves the user no way to sign in at all: the last passkey, on any of the
 * realm's domains, of a user without a password, unused recovery codes or a linked upstream identity.
 * A confirmation cannot make that right (only an administrator could get them back in).
 */
export function locksOut(target: Pick<CredentialRow, 'id' | 'discoverable'>, all: Array<Pick<CredentialRow, 'id' | 'discoverable'>>, other: OtherWaysIn): boolean {
  if (other.hasPassword || other.recoveryCodes > 0 || other.federated > 0 || !target.discoverable) return false;
  return !all.some((c) => c.id !== target.id && c.discoverable);
}

export const credentialPath = (id: string, action: 'rename' | 'delete') => `/account/passkeys/${encodeURIComponent(id)}/${action}`;

export function credentialViews(credentials: CredentialRow[], other: OtherWaysIn): CredentialView[] {
  return credentials.map((c) => ({
    id: c.id,
    name: c.name,
    deviceLabel: deviceLabel(c),
    backedUp: c.backedUp,
    authenticator: safeAuthenticatorName(c.aaguid),
    createdAt: displayTime(c.createdAt),
    lastUsedAt: displayTime(c.lastUsedAt),
    renameAction: credentialPath(c.id, 'rename'),
    deleteAction: credentialPath(c.id, 'delete'),
    confirmNeeded: isLastSignInPasskey(c, credentials, other.hasPassword),
    locksOut: locksOut(c, credentials, other),
  }));
}

function safeAuthenticatorName(aaguid: string | null): string | undefined {
  if (!aaguid) return undefined;
  try {
    return authenticatorName(aaguid) || undefined;
  } catch {
    return undefined;
  }
}

export type DeleteOutcome = 'deleted' | 'not_found' | 'confirm_needed' | 'locks_out';

/**
 * Deletes one of the user's credentials, re-checking the last-passkey rules inside the transaction
 * (the user's row is locked on PostgreSQL; SQLite runs one writer at a time), so two deletions in
 * parallel cannot together remove the last passkey without a confirmation. A deletion that would leave
 * no way to sign in at all is refused, confirmed or not. The security event is written in the same
 * transaction.
 */
export async function deleteCredential(db: Db, input: { realmId: string; userId: string; id: string; confirmed: boolean }): Promise<DeleteOutcome> {
  return db.transaction(async (trx) => {
    const userQuery = trx('users').select('password_hash').where({ realm_id: input.realmId, id: input.userId });
    if (!isSqlite(db)) userQuery.forUpdate();
    const user = await userQuery.first();
    if (!user) return 'not_found';
    const credentials = await webauthnRepo.credentialsOf(trx, input.realmId, input.userId);
    const target = credentials.find((c) => c.id === input.id);
    if (!target) return 'not_found';
    if (isLastSignInPasskey(target, credentials, Boolean(user.password_hash)) && (await lockedOutWithout(trx, input, target, credentials))) return 'locks_out';
    if (!input.confirmed && isLastSignInPasskey(target, credentials, Boolean(user.password_hash))) return 'confirm_needed';
    if (!(await webauthnRepo.remove(trx, input.realmId, input.userId, input.id))) return 'not_found';
    await recordSecurityEvent(trx, {
      realmId: input.realmId,
      userId: input.userId,
      type: 'account.passkey_removed',
      detail: { credentialId: target.id, rpId: target.rpId, discoverable: target.discoverable, confirmed: input.confirmed },
    });
    return 'deleted';
  });
}

/** Whether deleting `target` would lock the user out (see `locksOut`); the password is known to be missing. */
async function lockedOutWithout(trx: Db, input: { realmId: string; userId: string }, target: CredentialRow, credentials: CredentialRow[]): Promise<boolean> {
  const recoveryCodes = await factorsRepo.countUnusedRecoveryCodes(trx, input.realmId, input.userId);
  const identities = recoveryCodes > 0 ? [] : await federatedIdentitiesRepo.listForUser(trx, input.realmId, input.userId);
  return locksOut(target, credentials, { hasPassword: false, recoveryCodes, federated: identities.length });
}
