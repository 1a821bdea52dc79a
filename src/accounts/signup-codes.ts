import { createHmac, randomInt } from 'node:crypto';
import type { Logger } from 'pino';
import { equalStrings } from '../account/session.js';
import type { Mailer } from '../email/mailer.js';
import { afterAnswer, brandOf, type RealmMail } from './email-link-flow.js';

/** Wrong codes one sign-up may try before it must ask for a new code. */
export const MAX_SIGNUP_CODE_ATTEMPTS = 5;

/** A code as the user may type it: six digits, spaces and dashes allowed in between. */
export const normalizeSignupCode = (input: string): string | undefined => {
  const code = input.replace(/[\s-]/g, '');
  return /^\d{6}$/.test(code) ? code : undefined;
};

/** What a sign-up waiting for its code keeps (server-side, in its progress): never the code itself. */
export interface PendingSignup {
  email: string;
  name?: string;
  /** The argon2id hash of the chosen password (the policy already passed); none for a passwordless sign-up. */
  passwordHash?: string;
  /** HMAC of the code, bound to the interaction and the email. */
  codeMac: string;
  expiresAt: number;
  attempts: number;
}

export interface SignupCodeDelivery extends RealmMail {
  email: string;
  code: string;
}

/**
 * Sign-up codes by email (when outgoing email is configured): the sign-up form's answer is the same for
 * every address, and the mail is sent after it. A new address gets a 6-digit code that lets its sign-up
 * continue (proving the mailbox); an address that already has an account gets a notice instead, with no
 * code that works. Only an HMAC of the code (under the server's key) is kept, so a copy of the database
 * gives no code, not even by trying all million of them.
 */
export class SignupCodeService {
  constructor(
    private readonly mailer: Mailer,
    private readonly log: Logger,
    private readonly key: Buffer,
    readonly ttlSeconds: number,
  ) {}

  get enabled(): boolean {
    return this.mailer.enabled;
  }

  #mac(uid: string, email: string, code: string): string {
    return createHmac('sha256', this.key).update(`signup-code:${uid}:${email.trim().toLowerCase()}:${code}`).digest('base64url');
  }

  /** A new code for the sign-up of interaction `uid`: the code (for the email only) and what is kept. */
  issue(uid: string, email: string, now = Date.now()): { code: string; codeMac: string; expiresAt: number } {
    const code = String(randomInt(0, 1_000_000)).padStart(6, '0');
    return { code, codeMac: this.#mac(uid, email, code), expiresAt: now + this.ttlSeconds * 1000 };
  }

  /** Whether `code` is the one issued for this sign-up (not whether it is still in time). */
  matches(uid: string, pending: PendingSignup, code: string): boolean {
    return equalStrings(this.#mac(uid, pending.email, code), pending.codeMac);
  }

  /**
   * Sends, after the current request, the code to a new address or the notice to one with an account.
   * `isNew` is asked then, so neither the answer nor its timing depends on whether the account exists.
   */
  deliver(input: SignupCodeDelivery, isNew: () => Promise<boolean>): void {
    if (!this.enabled) return;
    afterAnswer(this.log, { realm: input.realmId }, 'sign-up email could not be sent', () => this.#deliver(input, isNew));
  }

  async #deliver(input: SignupCodeDelivery, isNew: () => Promise<boolean>): Promise<void> {
    const minutes = Math.max(1, Math.round(this.ttlSeconds / 60));
    if (await isNew()) {
      await this.mailer.send({
        to: input.email,
        brand: brandOf(input),
        subject: `Your ${input.realmName} sign-up code`,
        text: [
          `Enter this code to finish creating your ${input.realmName} account (${input.email}):`,
          '',
          `    ${input.code}`,
          '',
          `The code works once, for ${minutes} minute${minutes === 1 ? '' : 's'}.`,
          'If you did not ask for it, ignore this email: no account is created without the code.',
        ].join('\n'),
      });
      this.log.info({ realm: input.realmId }, 'sign-up code sent');
      return;
    }
    await this.mailer.send({
      to: input.email,
      brand: brandOf(input),
      subject: `Someone tried to sign up to ${input.realmName} with your address`,
      text: [
        `Someone tried to create a ${input.realmName} account with ${input.email}.`,
        'You already have an account with this address, so no new account was created.',
        '',
        'If it was you, sign in instead, with your password or your passkey:',
        `${input.issuer}/account`,
        'Forgot your password? Choose "Forgot your password?" on the sign-in page to get a link to choose a new one.',
        '',
        'If it was not you, ignore this email: nothing has changed.',
      ].join('\n'),
    });
    this.log.info({ realm: input.realmId }, 'sign-up notice sent to an existing account');
  }
}
