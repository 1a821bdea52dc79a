import { emailLinksRepo } from '../db/email-links-repo.js';
import { payloadsRepo } from '../db/payloads-repo.js';
import { progressRepo } from '../db/progress-repo.js';
import { realmsRepo } from '../db/realms-repo.js';
import { tenantsRepo } from '../db/tenants-repo.js';
import { webauthnRepo } from '../db/webauthn-repo.js';
import type { Services } from './services.js';

export interface PurgeResult {
  oidcArtefacts: number;
  signInProgress: number;
  webauthnChallenges: number;
  grantTenants: number;
  emailLinks: number;
  loginThrottle: number;
  keys: number;
}

/**
 * Removes what can no longer be used: expired provider artefacts, sign-in progress and pending
 * upstream flows, used or expired WebAuthn challenges (an hour after they expire), the tenant of
 * grants that are gone (after an hour's grace, so a grant being saved keeps its row), retired keys, expired links sent by email,
 * brute-force counters whose failures are forgotten (`bruteForce.failureResetSeconds`) and abandoned password-check reservations.
 */
export async function purgeExpired(services: Pick<Services, 'db' | 'keys' | 'throttle'>, now = Date.now()): Promise<PurgeResult> {
  const { db } = services;
  const result: PurgeResult = {
    oidcArtefacts: await payloadsRepo.purgeExpired(db, now),
    signInProgress: await progressRepo.purge(db, now),
    webauthnChallenges: await webauthnRepo.purgeChallenges(db, now),
    grantTenants: await tenantsRepo.purgeOrphanGrantTenants(db, now - 3600_000),
    emailLinks: await emailLinksRepo.purge(db, now),
    loginThrottle: await services.throttle.purge(now),
    keys: 0,
  };
  for (const realm of await realmsRepo.list(db)) result.keys += await services.keys.purgeExpired(realm.id);
  return result;
}
