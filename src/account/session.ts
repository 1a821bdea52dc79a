import { createHash, createHmac, timingSafeEqual } from 'node:crypto';
import { randomToken } from '../crypto/random.js';
import type { Context } from 'koa';
import { clearCookie, openCookie, readCookie, sealCookie, setCookie } from './cookies.js';

/** The account page's own OIDC client, present in every realm (see ClientService.providerMetadata). */
export { ACCOUNT_CLIENT_ID } from '../clients/service.js';

export const SESSION_COOKIE = 'lk_account';
export const FLOW_COOKIE = 'lk_account_flow';
/** Which authenticator app key this browser is setting up (a MAC of it, never the key itself). */
export const TOTP_ENROLMENT_COOKIE = 'lk_account_totp';
/** An account session lasts at most this long; then the page signs in again (silently while the OP session lives). */
export const SESSION_TTL_SECONDS = 3600;
/** Time to finish a sign-in started from the account page. */
export const FLOW_TTL_SECONDS = 15 * 60;

/** What the signed session cookie holds. */
export interface AccountSession {
  v: 1;
  /** Random id: binds CSRF tokens and WebAuthn challenges (`account:<sid>`) to this session. */
  sid: string;
  /** The issuer (origin) and realm it was made for. */
  iss: string;
  realm: string;
  /** The account (user id) the authorization code was issued for. */
  sub: string;
  /** When the user last authenticated (epoch seconds, the code's auth_time). */
  authTime: number;
  amr: string[];
  /** uid of node-oidc-provider's session behind the code: when it ends (sign-out), this session ends too. */
  opSession?: string;
  /** Expiry, epoch ms. */
  exp: number;
}

/** The authenticator app key this browser is setting up, for one account. */
interface TotpEnrolmentMark {
  v: 1;
  iss: string;
  sub: string;
  mark: string;
  exp: number;
}

/** A sign-in started by the account page: PKCE verifier, state, and where to go afterwards. */
export interface AccountFlow {
  v: 1;
  iss: string;
  state: string;
  verifier: string;
  returnTo: string;
  exp: number;
}

const secureFor = (issuer: string) => issuer.startsWith('https:');

export const randomId = (bytes = 32) => randomToken(bytes);

export const pkceChallenge = (verifier: string) => createHash('sha256').update(verifier, 'ascii').digest('base64url');

export function equalStrings(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}

/** Return paths are ours only: /account or a page under it, with a plain query. */
export function safeReturnPath(path: unknown): string {
  return typeof path === 'string' && /^\/account(\/[A-Za-z0-9\-_/]*)?(\?[A-Za-z0-9\-_=&]*)?$/.test(path) && !path.includes('//') ? path : '/account';
}

export class AccountSessions {
  constructor(
    /** HMAC key of the account cookies: deriveKey(secret, 'account-session'). */
    private readonly key: Buffer,
    /** Key of the CSRF tokens (services.csrfKey). */
    private readonly csrfKey: Buffer,
  ) {}

  read(ctx: Context, issuer: string, realmId: string): AccountSession | undefined {
    const s = openCookie<AccountSession>(this.key, SESSION_COOKIE, readCookie(ctx, SESSION_COOKIE));
    if (!s || s.v !== 1 || s.iss !== issuer || s.realm !== realmId) return undefined;
    if (typeof s.sid !== 'string' || typeof s.sub !== 'string' || typeof s.authTime !== 'number' || !Array.isArray(s.amr)) return undefined;
    return s;
  }

  create(ctx: Context, input: Omit<AccountSession, 'v' | 'sid' | 'exp'>): AccountSession {
    const session: AccountSession = { v: 1, sid: randomId(), ...input, exp: Date.now() + SESSION_TTL_SECONDS * 1000 };
    setCookie(ctx, SESSION_COOKIE, sealCookie(this.key, SESSION_COOKIE, session as unknown as Record<string, unknown>), {
      maxAgeSeconds: SESSION_TTL_SECONDS,
      secure: secureFor(input.iss),
    });
    return session;
  }

  clear(ctx: Context, issuer: string): void {
    clearCookie(ctx, SESSION_COOKIE, secureFor(issuer));
  }

  readFlow(ctx: Context, issuer: string): AccountFlow | undefined {
    const f = openCookie<AccountFlow>(this.key, FLOW_COOKIE, readCookie(ctx, FLOW_COOKIE));
    if (!f || f.v !== 1 || f.iss !== issuer || typeof f.state !== 'string' || typeof f.verifier !== 'string') return undefined;
    return f;
  }

  startFlow(ctx: Context, issuer: string, returnTo: string): AccountFlow {
    const flow: AccountFlow = { v: 1, iss: issuer, state: randomId(24), verifier: randomId(32), returnTo: safeReturnPath(returnTo), exp: Date.now() + FLOW_TTL_SECONDS * 1000 };
    setCookie(ctx, FLOW_COOKIE, sealCookie(this.key, FLOW_COOKIE, flow as unknown as Record<string, unknown>), { maxAgeSeconds: FLOW_TTL_SECONDS, secure: secureFor(issuer) });
    return flow;
  }

  clearFlow(ctx: Context, issuer: string): void {
    clearCookie(ctx, FLOW_COOKIE, secureFor(issuer));
  }

  /**
   * Remembers that this browser is setting up `secret` for `sub`, so that a reload or the new sign-in a
   * stale session needs shows the key the user has scanned instead of a new one. Kept apart from the
   * session cookie, which a new sign-in replaces.
   */
  markEnrolment(ctx: Context, issuer: string, sub: string, secret: string): void {
    const mark: TotpEnrolmentMark = { v: 1, iss: issuer, sub, mark: this.#enrolmentMac(sub, secret), exp: Date.now() + SESSION_TTL_SECONDS * 1000 };
    setCookie(ctx, TOTP_ENROLMENT_COOKIE, sealCookie(this.key, TOTP_ENROLMENT_COOKIE, mark as unknown as Record<string, unknown>), {
      maxAgeSeconds: SESSION_TTL_SECONDS,
      secure: secureFor(issuer),
    });
  }

  /** Whether this browser started the set-up of `secret` for `sub` (see `markEnrolment`): only then is a pending key shown again. */
  enrolmentMarked(ctx: Context, issuer: string, sub: string, secret: string): boolean {
    const m = openCookie<TotpEnrolmentMark>(this.key, TOTP_ENROLMENT_COOKIE, readCookie(ctx, TOTP_ENROLMENT_COOKIE));
    return Boolean(m && m.v === 1 && m.iss === issuer && m.sub === sub && typeof m.mark === 'string' && equalStrings(m.mark, this.#enrolmentMac(sub, secret)));
  }

  #enrolmentMac(sub: string, secret: string): string {
    return createHmac('sha256', this.key).update(`totp-enrolment:${sub}:${secret}`).digest('base64url');
  }

  /** CSRF token of an account session: HMAC of its id (a different input than the sign-in pages' tokens). */
  csrf(session: AccountSession): string {
    return createHmac('sha256', this.csrfKey).update(`account-csrf:${session.sid}`).digest('base64url');
  }

  csrfValid(session: AccountSession, candidate: unknown): boolean {
    return typeof candidate === 'string' && candidate.length > 0 && equalStrings(this.csrf(session), candidate);
  }
}

/** The WebAuthn challenge binding of an account session. */
export const challengeBinding = (session: AccountSession) => `account:${session.sid}`;
