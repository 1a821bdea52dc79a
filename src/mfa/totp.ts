import { generateSecret, generateURI, verify as verifyOtp } from 'otplib';
import QRCode from 'qrcode';
import type { SecretBox } from '../crypto/secret-box.js';
import { conflict, notFound } from '../errors.js';
import { factorsRepo, type TotpFactorRow } from '../db/factors-repo.js';
import type { Db } from '../db/knex.js';
import { throttleRepo } from '../db/throttle-repo.js';
import { recordSecurityEvent } from './security-events.js';

/** RFC 6238 parameters every mainstream authenticator app supports; otplib's defaults, stated explicitly. */
const PERIOD_SECONDS = 30;
const DIGITS = 6 as const;
const ALGORITHM = 'sha1' as const;
/** 20 random bytes (160 bits, RFC 4226's recommendation): 32 base32 characters. */
const SECRET_BYTES = 20;

export interface TotpServiceOptions {
  /** Issuer shown by authenticator apps when `startEnrolment` is given an empty one (default "Latchkey"). */
  issuerName?: string;
  /** Attempts (failed or not yet known to succeed) allowed per user before verification is refused (default 5). */
  maxFailures?: number;
  /** Failures are forgotten after this long without one (default 300 s). */
  failureWindowSeconds?: number;
  /** How long verification is refused once `maxFailures` is reached (default 300 s). */
  lockSeconds?: number;
}

export interface TotpEnrolment {
  /** Base32 secret, for typing into an app by hand; shown once, never retrievable afterwards. */
  secret: string;
  /** `otpauth://totp/...` provisioning URI. */
  uri: string;
  /** The URI as a QR code, an SVG document rendered on the server. */
  qrSvg: string;
}

export type TotpVerifyResult =
  | { ok: true }
  | { ok: false; reason: 'invalid' | 'reused' | 'not_enrolled' | 'rate_limited'; retryAfterSeconds?: number };

/** Throttling key of a user's TOTP attempts in `login_throttle`. */
export const totpThrottleKey = (userId: string): string => `totp:${userId}`;

/** Associated data binding a sealed TOTP secret to its user. */
const sealingContext = (userId: string): string => `totp:${userId}`;

/** Codes are six digits; spaces (as apps display "123 456") are ignored. */
const normaliseCode = (code: string): string => String(code ?? '').replace(/\s+/g, '');

/**
 * TOTP (RFC 6238: SHA-1, 6 digits, 30 s) second factor. Secrets are stored sealed with SecretBox; a
 * code is accepted for the current time step or one step either side, and each step only once
 * (`last_used_step`, advanced by a conditional update so concurrent instances cannot both accept a
 * code). Attempts are limited per user through the `login_throttle` table under `totp:<userId>`.
 */
export class TotpService {
  readonly #db: Db;
  readonly #box: SecretBox;
  readonly #issuerName: string;
  readonly #maxFailures: number;
  readonly #windowMs: number;
  readonly #lockMs: number;

  constructor(db: Db, box: SecretBox, opts: TotpServiceOptions = {}) {
    this.#db = db;
    this.#box = box;
    this.#issuerName = opts.issuerName || 'Latchkey';
    this.#maxFailures = opts.maxFailures ?? 5;
    this.#windowMs = (opts.failureWindowSeconds ?? 300) * 1000;
    this.#lockMs = (opts.lockSeconds ?? 300) * 1000;
  }

  /**
   * Creates a new secret and stores it unconfirmed, replacing a pending enrolment. A confirmed factor
   * is only replaced with `replace: true` (it then stays unusable until the new one is confirmed);
   * otherwise a `conflict` LatchkeyError is thrown.
   */
  async startEnrolment(
    realmId: string,
    userId: string,
    label: string,
    issuer: string,
    options: { replace?: boolean; now?: number } = {},
  ): Promise<TotpEnrolment> {
    const secret = generateSecret({ length: SECRET_BYTES });
    const written = await factorsRepo.putPendingTotp(
      this.#db,
      { realmId, userId, sealedSecret: this.#box.seal(secret, sealingContext(userId)) },
      options.now ?? Date.now(),
      options.replace === true,
    );
    if (!written) throw conflict('an authenticator app is already set up for this account');
    const uri = generateURI({
      issuer: issuer || this.#issuerName,
      label,
      secret,
      algorithm: ALGORITHM,
      digits: DIGITS,
      period: PERIOD_SECONDS,
    });
    const qrSvg = await QRCode.toString(uri, { type: 'svg', margin: 1 });
    return { secret, uri, qrSvg };
  }

  /**
   * The enrolment in progress (its secret, URI and QR code), or undefined when nothing is pending or the
   * stored secret cannot be opened. Callers show it again only to whoever started it (a mistyped code, a
   * reload): a pending key is as good as the factor once confirmed.
   */
  async pendingEnrolment(realmId: string, userId: string, label: string, issuer: string): Promise<TotpEnrolment | undefined> {
    const row = await factorsRepo.findTotp(this.#db, realmId, userId);
    if (!row || row.confirmedAt !== null) return undefined;
    let secret: string;
    try {
      secret = this.#box.open(row.sealedSecret, sealingContext(userId));
    } catch {
      return undefined;
    }
    const uri = generateURI({ issuer: issuer || this.#issuerName, label, secret, algorithm: ALGORITHM, digits: DIGITS, period: PERIOD_SECONDS });
    return { secret, uri, qrSvg: await QRCode.toString(uri, { type: 'svg', margin: 1 }) };
  }

  /** Confirms a pending enrolment with a code from the app; the code's step counts as used. */
  async confirmEnrolment(realmId: string, userId: string, code: string, now: number = Date.now()): Promise<boolean> {
    return (await this.tryConfirmEnrolment(realmId, userId, code, now)).ok;
  }

  /** `confirmEnrolment`, saying why a confirmation failed (so a page can tell a wrong code from a wait). */
  async tryConfirmEnrolment(realmId: string, userId: string, code: string, now: number = Date.now()): Promise<TotpVerifyResult> {
    const factor = await factorsRepo.findTotp(this.#db, realmId, userId);
    if (!factor || factor.confirmedAt !== null) return { ok: false, reason: 'not_enrolled' };
    const admitted = await this.#admitAttempt(realmId, userId, now);
    if (!admitted.allowed) return { ok: false, reason: 'rate_limited', retryAfterSeconds: admitted.retryAfterSeconds };
    const step = await this.#matchStep(factor.sealedSecret, userId, code, factor.lastUsedStep, now);
    if (step.kind !== 'fresh') return { ok: false, reason: step.kind === 'used' ? 'reused' : 'invalid' };
    if (!(await factorsRepo.confirmTotp(this.#db, realmId, userId, factor.sealedSecret, step.step, now))) return { ok: false, reason: 'reused' };
    await throttleRepo.remove(this.#db, realmId, totpThrottleKey(userId));
    return { ok: true };
  }

  /** Checks a code against the user's confirmed factor and, when it is good, uses up its time step. */
  async verify(realmId: string, userId: string, code: string, now: number = Date.now()): Promise<TotpVerifyResult> {
    const factor = await factorsRepo.findTotp(this.#db, realmId, userId);
    if (!factor || factor.confirmedAt === null) return { ok: false, reason: 'not_enrolled' };
    const admitted = await this.#admitAttempt(realmId, userId, now);
    if (!admitted.allowed) return { ok: false, reason: 'rate_limited', retryAfterSeconds: admitted.retryAfterSeconds };
    const step = await this.#matchStep(factor.sealedSecret, userId, code, factor.lastUsedStep, now);
    if (step.kind === 'none') return { ok: false, reason: 'invalid' };
    if (step.kind === 'used') return { ok: false, reason: 'reused' };
    // Another instance may have accepted this step (or a later one) since the row was read.
    if (!(await factorsRepo.claimTotpStep(this.#db, realmId, userId, factor.sealedSecret, step.step))) return { ok: false, reason: 'reused' };
    await throttleRepo.remove(this.#db, realmId, totpThrottleKey(userId));
    return { ok: true };
  }

  /** Whether the user has a confirmed TOTP factor. */
  async isEnrolled(realmId: string, userId: string): Promise<boolean> {
    const factor = await factorsRepo.findTotp(this.#db, realmId, userId);
    return factor !== undefined && factor.confirmedAt !== null;
  }

  /** Whether this LATCHKEY_SECRET opens the factor's sealed secret (false: sealed with another secret, or altered). */
  opens(factor: TotpFactorRow): boolean {
    try {
      this.#box.open(factor.sealedSecret, sealingContext(factor.userId));
      return true;
    } catch {
      return false;
    }
  }

  /**
   * The TOTP factors (of one realm, or of every realm) whose secret this LATCHKEY_SECRET cannot open,
   * and how many there are in all; read `pageSize` at a time, calling `progress` after each page.
   */
  async unreadableFactors(
    realmId: string | undefined,
    progress?: (checked: number, total: number) => void,
    pageSize = 500,
  ): Promise<{ total: number; unreadable: TotpFactorRow[] }> {
    const total = await factorsRepo.countTotp(this.#db, realmId);
    const unreadable: TotpFactorRow[] = [];
    let checked = 0;
    for (let after: TotpFactorRow | undefined; ; ) {
      const page = await factorsRepo.listTotpPage(this.#db, realmId, after, pageSize);
      if (!page.length) break;
      unreadable.push(...page.filter((f) => !this.opens(f)));
      checked += page.length;
      progress?.(checked, Math.max(total, checked));
      after = page[page.length - 1];
    }
    return { total: Math.max(total, checked), unreadable };
  }

  /**
   * Deletes a factor this LATCHKEY_SECRET cannot open (sealed with another secret: no code can match it),
   * so the user can set up their authenticator app again, and records a `totp_reset_unreadable` security
   * event. A factor that opens is refused: it works, and deleting it would take a second factor away from
   * an account unasked (the user removes it on their account page).
   */
  async resetUnreadable(realmId: string, userId: string, via: string): Promise<{ confirmed: boolean }> {
    const factor = await factorsRepo.findTotp(this.#db, realmId, userId);
    if (!factor) throw notFound(`a TOTP factor of user "${userId}" in realm "${realmId}"`);
    if (this.opens(factor)) {
      throw conflict(`the TOTP factor of user "${userId}" opens with this LATCHKEY_SECRET: it works and is not reset (the user can remove or replace it on their account page)`);
    }
    await this.#db.transaction(async (trx) => {
      if (!(await factorsRepo.deleteTotpSealedAs(trx, realmId, userId, factor.sealedSecret))) {
        throw conflict(`the TOTP factor of user "${userId}" changed while it was being reset (the user set up a new one?): run the check again`);
      }
      await recordSecurityEvent(trx, { realmId, userId, type: 'totp_reset_unreadable', detail: { via, confirmed: factor.confirmedAt !== null, reason: 'sealed with another LATCHKEY_SECRET' } });
    });
    return { confirmed: factor.confirmedAt !== null };
  }

  /** Deletes the user's factor, confirmed or pending; returns whether there was one. */
  async remove(realmId: string, userId: string): Promise<boolean> {
    return factorsRepo.deleteTotp(this.#db, realmId, userId);
  }

  /**
   * Counts an attempt before the code is checked, atomically (the throttle row is locked while it is
   * updated), so parallel guesses cannot slip past the limit; a success forgets the count.
   */
  async #admitAttempt(realmId: string, userId: string, now: number): Promise<{ allowed: boolean; retryAfterSeconds: number }> {
    let verdict = { allowed: true, retryAfterSeconds: 0 };
    await throttleRepo.update(this.#db, realmId, [totpThrottleKey(userId)], (current) => {
      if (current.lockedUntil > now) {
        verdict = { allowed: false, retryAfterSeconds: Math.ceil((current.lockedUntil - now) / 1000) };
        return { failures: current.failures, lastFailureAt: current.lastFailureAt, lockedUntil: current.lockedUntil };
      }
      const forgotten = current.failures === 0 || now - current.lastFailureAt >= this.#windowMs;
      const failures = forgotten ? 1 : current.failures + 1;
      const lockedUntil = failures >= this.#maxFailures ? now + this.#lockMs : current.lockedUntil;
      verdict = { allowed: true, retryAfterSeconds: 0 };
      return { failures, lastFailureAt: Math.max(now, current.lastFailureAt), lockedUntil };
    });
    return verdict;
  }

  /**
   * The time step a code belongs to, within one step of `now`: `fresh` when after `lastUsedStep`,
   * `used` when it only matches steps already used, `none` when it matches nothing.
   */
  async #matchStep(
    sealedSecret: string,
    userId: string,
    code: string,
    lastUsedStep: number,
    now: number,
  ): Promise<{ kind: 'fresh'; step: number } | { kind: 'used' } | { kind: 'none' }> {
    const token = normaliseCode(code);
    // otplib throws on tokens of the wrong length or with non-digits: treat those as plain failures.
    if (!/^\d{6}$/.test(token)) return { kind: 'none' };
    const secret = this.#box.open(sealedSecret, sealingContext(userId));
    const epoch = Math.floor(now / 1000); // otplib wants Unix seconds, not milliseconds
    const base = {
      secret,
      token,
      epoch,
      algorithm: ALGORITHM,
      digits: DIGITS,
      period: PERIOD_SECONDS,
      // A tolerance of one period in seconds spans exactly the steps before and after the current one.
      epochTolerance: PERIOD_SECONDS,
    };
    const maxStep = Math.floor((epoch + PERIOD_SECONDS) / PERIOD_SECONDS);
    // otplib rejects an `afterTimeStep` below 0 or beyond the window, so pass it only when in range.
    if (lastUsedStep < maxStep) {
      const fresh = await verifyOtp(lastUsedStep >= 0 ? { ...base, afterTimeStep: lastUsedStep } : base);
      if (fresh.valid && 'timeStep' in fresh) return { kind: 'fresh', step: fresh.timeStep };
    }
    if (lastUsedStep < 0) return { kind: 'none' };
    const any = await verifyOtp(base);
    return any.valid ? { kind: 'used' } : { kind: 'none' };
  }
}
