import { factorsRepo, type SecurityEventRow } from '../db/factors-repo.js';
import type { Db } from '../db/knex.js';

export type { SecurityEventRow } from '../db/factors-repo.js';

export interface SecurityEventInput {
  realmId: string;
  userId?: string | null;
  /** Short machine-readable name, e.g. `totp_enrolled`, `recovery_code_used` (at most 60 characters). */
  type: string;
  /** JSON-serialisable context; never secrets, codes or passwords. */
  detail: Record<string, unknown>;
  /** Epoch ms; defaults to now. */
  at?: number;
}

/** Appends an entry to the security event log (table `security_events`). */
export async function recordSecurityEvent(db: Db, event: SecurityEventInput): Promise<void> {
  if (!event.type || event.type.length > 60) throw new Error('a security event type must be 1 to 60 characters');
  await factorsRepo.insertSecurityEvent(db, event, event.at ?? Date.now());
}

/** The realm's events (only the user's when `userId` is given), newest first, at most `limit` (default 100). */
export async function listSecurityEvents(
  db: Db,
  realmId: string,
  userId?: string,
  options: { limit?: number } = {},
): Promise<SecurityEventRow[]> {
  const limit = Math.max(1, Math.min(1000, Math.floor(options.limit ?? 100)));
  return factorsRepo.listSecurityEvents(db, realmId, userId, limit);
}
