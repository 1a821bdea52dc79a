import { generateURI } from 'otplib';
import QRCode from 'qrcode';
import type { SecretBox } from '../crypto/secret-box.js';
import { factorsRepo } from '../db/factors-repo.js';
import type { Db } from '../db/knex.js';
import type { TotpEnrolment } from '../mfa/totp.js';

/**
 * The user's pending (unconfirmed) TOTP enrolment shown again, so that a mistyped code does not
 * replace the secret the user has just scanned. Same URI parameters and sealing context as
 * TotpService.startEnrolment (src/mfa/totp.ts: RFC 6238 SHA-1, 6 digits, 30 s; `totp:<userId>`).
 * Undefined when nothing is pending or the stored secret cannot be opened.
 */
export async function pendingEnrolment(db: Db, box: SecretBox, input: { realmId: string; userId: string; label: string; issuer: string }): Promise<TotpEnrolment | undefined> {
  const factor = await factorsRepo.findTotp(db, input.realmId, input.userId);
  if (!factor || factor.confirmedAt !== null) return undefined;
  let secret: string;
  try {
    secret = box.open(factor.sealedSecret, `totp:${input.userId}`);
  } catch {
    return undefined;
  }
  const uri = generateURI({ issuer: input.issuer || 'Latchkey', label: input.label, secret, algorithm: 'sha1', digits: 6, period: 30 });
  const qrSvg = await QRCode.toString(uri, { type: 'svg', margin: 1 });
  return { secret, uri, qrSvg };
}
