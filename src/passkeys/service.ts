import {
  generateAuthenticationOptions,
  generateRegistrationOptions,
  verifyRegistrationResponse,
  type AuthenticationResponseJSON,
  type PublicKeyCredentialCreationOptionsJSON,
  type PublicKeyCredentialRequestOptionsJSON,
  type RegistrationResponseJSON,
} from '@simplewebauthn/server';
import { decodeAttestationObject, isoBase64URL } from '@simplewebauthn/server/helpers';
import type { Db } from '../db/knex.js';
import { webauthnRepo, type CredentialRow } from '../db/webauthn-repo.js';
import { LatchkeyError } from '../errors.js';
import type { RealmSettings } from '../realms/settings.js';
import { authenticatorName } from './aaguids.js';
import { credentialNameProblem } from './credential-name.js';
import { AssertionError, verifyAssertion } from './assertion.js';
import { chainLeadsToTrustedRoot } from './attestation-trust.js';
import type { RelyingParty } from './relying-party.js';
import { registrationError, registrationFailureOf } from './registration-errors.js';
import { randomToken } from '../crypto/random.js';

/** A passkey signs in on its own (discoverable, user verification); a security key is a second factor. */
export type CredentialKind = 'passkey' | 'security-key';
export type AssertionPurpose = 'first-factor' | 'second-factor';

export const CHALLENGE_TTL_MS = 5 * 60 * 1000;
/** How precisely a credential's last use is kept. */
const LAST_USED_RESOLUTION_MS = 60 * 1000;
const NO_AAGUID = '00000000-0000-0000-0000-000000000000';
/** EdDSA, ES256, RS256: what every current authenticator offers. */
const SUPPORTED_ALGORITHMS = [-8, -7, -257];

export interface PasskeyUser {
  id: string;
  email: string;
  name: string | null;
}

const fail = (code: string, message: string, status = 400) => new LatchkeyError(code, message, status);

/**
 * The shape of what Latchkey issues and stores: challenges (32 random bytes) and credential ids (at most
 * 1023 bytes, WebAuthn §5.1), base64url. Anything else in a response is refused before it reaches a
 * query (PostgreSQL cannot even compare text holding a NUL).
 */
const CHALLENGE_SHAPE = /^[A-Za-z0-9_-]{16,128}$/;
const CREDENTIAL_ID_SHAPE = /^[A-Za-z0-9_-]{1,1366}$/;

/** Transport names (WebAuthn's AuthenticatorTransport: "usb", "nfc", "hybrid", ... and future ones). */
const TRANSPORT_SHAPE = /^[a-z0-9-]{1,32}$/;
const MAX_TRANSPORTS = 16;

/**
 * The transports a new credential reports, checked before anything is stored: they are kept with the
 * credential and handed back to browsers in later options, where anything but a short list of names
 * makes navigator.credentials fail.
 */
function transportsOf(response: { response?: { transports?: unknown } }): string[] {
  const transports = response?.response?.transports;
  if (transports === undefined || transports === null) return [];
  if (!Array.isArray(transports) || transports.length > MAX_TRANSPORTS || !transports.every((t) => typeof t === 'string' && TRANSPORT_SHAPE.test(t))) {
    throw fail('invalid_response', `The passkey response could not be read: its transports are not a list of at most ${MAX_TRANSPORTS} transport names. Try again.`);
  }
  return transports as string[];
}

/** The challenge a response answers, read from its clientDataJSON (verified again by SimpleWebAuthn). */
function challengeOf(response: { response?: { clientDataJSON?: unknown } }): string {
  const raw = response?.response?.clientDataJSON;
  if (typeof raw !== 'string') throw fail('invalid_response', 'The passkey response is incomplete. Try again.');
  try {
    const data = JSON.parse(Buffer.from(raw, 'base64url').toString('utf8')) as { challenge?: unknown };
    if (typeof data.challenge !== 'string' || !CHALLENGE_SHAPE.test(data.challenge)) throw new Error('no challenge');
    return data.challenge;
  } catch {
    throw fail('invalid_response', 'The passkey response could not be read. Try again.');
  }
}

/** Where the library's own text about a refused registration goes (pino's debug, or nothing). */
export interface DebugLog {
  debug(obj: Record<string, unknown>, msg: string): void;
}

export interface SecurityEventSink {
  (event: { realmId: string; userId?: string; type: string; detail: Record<string, unknown> }): Promise<void>;
}

/**
 * WebAuthn ceremonies: options with server-stored, single-use challenges bound to a ceremony and to a
 * sign-in (or account session); verification against the realm's RP ID and origins.
 */
export class PasskeyService {
  constructor(
    private readonly db: Db,
    private readonly securityEvent: SecurityEventSink,
    private readonly log?: DebugLog,
  ) {}

  credentials(realmId: string, userId: string, rpId?: string): Promise<CredentialRow[]> {
    return webauthnRepo.credentialsOf(this.db, realmId, userId, rpId);
  }

  async registrationOptions(input: {
    realmId: string;
    settings: RealmSettings;
    rp: RelyingParty;
    user: PasskeyUser;
    boundTo: string;
    kind: CredentialKind;
  }): Promise<PublicKeyCredentialCreationOptionsJSON> {
    const existing = await webauthnRepo.credentialsOf(this.db, input.realmId, input.user.id, input.rp.rpId);
    const challenge = randomToken(32);
    const passkey = input.kind === 'passkey';
    const options = await generateRegistrationOptions({
      rpName: input.rp.name,
      rpID: input.rp.rpId,
      userName: input.user.email,
      userID: new TextEncoder().encode(input.user.id),
      userDisplayName: input.user.name ?? input.user.email,
      challenge,
      timeout: CHALLENGE_TTL_MS,
      attestationType: input.settings.passkeys.attestation === 'allowlist' ? 'direct' : 'none',
      excludeCredentials: existing.map((c) => ({ id: c.id, transports: c.transports })),
      authenticatorSelection: passkey
        ? { residentKey: 'required', requireResidentKey: true, userVerification: 'required' }
        : { residentKey: 'discouraged', userVerification: 'discouraged', authenticatorAttachment: 'cross-platform' },
      supportedAlgorithmIDs: SUPPORTED_ALGORITHMS,
    });
    await webauthnRepo.insertChallenge(this.db, {
      challenge: options.challenge,
      realmId: input.realmId,
      ceremony: 'registration',
      boundTo: input.boundTo,
      rpId: input.rp.rpId,
      userId: input.user.id,
      expiresAt: Date.now() + CHALLENGE_TTL_MS,
    });
    return options;
  }

  async verifyRegistration(input: {
    realmId: string;
    settings: RealmSettings;
    /** The RP (or candidate RPs) of this issuer; the stored challenge says which one the ceremony used. */
    rp: RelyingParty | RelyingParty[];
    user: PasskeyUser;
    boundTo: string;
    kind: CredentialKind;
    response: RegistrationResponseJSON;
    name?: string;
  }): Promise<CredentialRow> {
    transportsOf(input.response);
    const challenge = await webauthnRepo.consumeChallenge(this.db, input.realmId, challengeOf(input.response), 'registration', input.boundTo, Date.now());
    const rp = challenge && pickRp(input.rp, challenge.rpId);
    if (!challenge || !rp || challenge.userId !== input.user.id) throw registrationError('challenge_invalid');
    let verification;
    try {
      verification = await verifyRegistrationResponse({
        response: input.response,
        expectedChallenge: challenge.challenge,
        expectedOrigin: rp.origins,
        expectedRPID: rp.rpId,
        requireUserVerification: input.kind === 'passkey',
        supportedAlgorithmIDs: SUPPORTED_ALGORITHMS,
      });
    } catch (err) {
      // the library's text quotes the response and what was expected: for the debug log, not for the user
      const reason = registrationFailureOf(err, input.response);
      this.log?.debug({ realm: input.realmId, reason, library: (err as Error)?.message }, 'passkey registration refused');
      throw registrationError(reason);
    }
    // (the attestation statement's signature or certificate chain did not check out)
    if (!verification.verified) throw registrationError('attestation_invalid');
    const info = verification.registrationInfo;
    const aaguid = info.aaguid && info.aaguid !== NO_AAGUID ? info.aaguid : null;
    const policy = input.settings.passkeys;
    if (policy.attestation === 'allowlist') {
      const statement = decodeAttestationObject(info.attestationObject).get('attStmt');
      const x5c = statement?.get('x5c');
      const chain = Array.isArray(x5c) ? (x5c as Uint8Array[]) : [];
      // self attestation (no certificate) proves nothing about the device, and neither does a certificate
      // anyone could have made: only a chain leading to one of the realm's trusted roots passes
      const listed = Boolean(aaguid) && policy.aaguids.map((a) => a.toLowerCase()).includes(aaguid!.toLowerCase());
      const trusted = info.fmt !== 'none' && chain.length > 0 && chainLeadsToTrustedRoot(chain, policy.attestationRoots);
      if (!listed || !trusted) {
        const reason = !listed ? 'aaguid_not_listed' : chain.length === 0 ? 'no_certificate' : policy.attestationRoots.length === 0 ? 'no_trusted_roots_configured' : 'untrusted_certificate';
        await this.securityEvent({ realmId: input.realmId, userId: input.user.id, type: 'passkey.attestation_rejected', detail: { aaguid, fmt: info.fmt, reason } });
        throw fail('authenticator_not_allowed', 'This authenticator is not on the list your organisation allows. Use an approved security key.');
      }
    }
    const credentialId = info.credential.id;
    if (await webauthnRepo.credential(this.db, input.realmId, credentialId)) throw fail('already_registered', 'This authenticator is already registered.');
    const now = Date.now();
    const name = (input.name ?? '').trim().slice(0, 64) || authenticatorName(aaguid) || (input.kind === 'passkey' ? 'Passkey' : 'Security key');
    const row: CredentialRow = {
      id: credentialId,
      realmId: input.realmId,
      userId: input.user.id,
      rpId: rp.rpId,
      publicKey: isoBase64URL.fromBuffer(info.credential.publicKey),
      counter: info.credential.counter,
      transports: (info.credential.transports ?? []) as string[],
      deviceType: info.credentialDeviceType,
      backedUp: info.credentialBackedUp,
      discoverable: input.kind === 'passkey',
      aaguid,
      attestationFormat: info.fmt,
      name,
      createdAt: now,
      lastUsedAt: null,
    };
    if (!(await webauthnRepo.insertCredential(this.db, row))) throw fail('already_registered', 'This authenticator is already registered.');
    return row;
  }

  async authenticationOptions(input: {
    realmId: string;
    rp: RelyingParty;
    boundTo: string;
    purpose: AssertionPurpose;
    /** Known user (identifier-first, second factor): offer only their credentials for this RP ID. */
    userId?: string;
  }): Promise<PublicKeyCredentialRequestOptionsJSON> {
    const allow = input.userId ? await webauthnRepo.credentialsOf(this.db, input.realmId, input.userId, input.rp.rpId) : [];
    const usable = input.purpose === 'first-factor' ? allow.filter((c) => c.discoverable) : allow;
    if (input.userId && !usable.length) throw fail('no_credentials', 'There is no passkey for this account on this site.');
    const options = await generateAuthenticationOptions({
      rpID: input.rp.rpId,
      challenge: randomToken(32),
      timeout: CHALLENGE_TTL_MS,
      userVerification: input.purpose === 'first-factor' ? 'required' : 'discouraged',
      allowCredentials: usable.map((c) => ({ id: c.id, transports: c.transports })),
    });
    await webauthnRepo.insertChallenge(this.db, {
      challenge: options.challenge,
      realmId: input.realmId,
      ceremony: 'authentication',
      boundTo: input.boundTo,
      rpId: input.rp.rpId,
      userId: input.userId ?? null,
      expiresAt: Date.now() + CHALLENGE_TTL_MS,
    });
    return options;
  }

  /** Verifies an assertion; returns the credential and the user it belongs to. */
  async verifyAuthentication(input: {
    realmId: string;
    rp: RelyingParty | RelyingParty[];
    boundTo: string;
    purpose: AssertionPurpose;
    response: AuthenticationResponseJSON;
    expectedUserId?: string;
  }): Promise<{ credential: CredentialRow; userVerified: boolean }> {
    const challenge = await webauthnRepo.consumeChallenge(this.db, input.realmId, challengeOf(input.response), 'authentication', input.boundTo, Date.now());
    const rp = challenge && pickRp(input.rp, challenge.rpId);
    if (!challenge || !rp) throw fail('challenge_invalid', 'This passkey request has expired or was already used. Try again.');
    const credentialId = typeof input.response?.id === 'string' && CREDENTIAL_ID_SHAPE.test(input.response.id) ? input.response.id : '';
    const credential = credentialId ? await webauthnRepo.credential(this.db, input.realmId, credentialId) : undefined;
    if (!credential || credential.rpId !== rp.rpId) throw fail('unknown_credential', 'This passkey is not registered for this site.');
    if ((challenge.userId && challenge.userId !== credential.userId) || (input.expectedUserId && input.expectedUserId !== credential.userId)) {
      throw fail('unknown_credential', 'This passkey belongs to another account.');
    }
    if (input.purpose === 'first-factor' && !credential.discoverable) throw fail('unknown_credential', 'This security key is a second factor: sign in with your password first.');
    const userHandle: unknown = input.response.response?.userHandle;
    if (userHandle !== undefined && userHandle !== null && typeof userHandle !== 'string') throw fail('invalid_response', 'The passkey response could not be read: its user handle is not text. Try again.');
    if (userHandle && Buffer.from(userHandle, 'base64url').toString('utf8') !== credential.userId) throw fail('unknown_credential', 'This passkey belongs to another account.');
    let info;
    try {
      info = verifyAssertion({
        response: input.response,
        expectedChallenge: challenge.challenge,
        expectedOrigins: rp.origins,
        expectedRpId: rp.rpId,
        publicKey: credential.publicKey,
        counter: credential.counter,
        requireUserVerification: input.purpose === 'first-factor',
      });
    } catch (err) {
      if (!(err instanceof AssertionError)) throw err;
      if (err.reason === 'counter') {
        await this.securityEvent({ realmId: input.realmId, userId: credential.userId, type: 'passkey.counter_regression', detail: { credentialId: credential.id, storedCounter: credential.counter } });
        throw fail('counter_regression', 'This passkey reported an unexpected use count and was refused; it may have been copied. Use another sign-in method and contact your administrator.');
      }
      throw fail('assertion_failed', `The passkey could not be verified: ${err.message}`);
    }
    const now = Date.now();
    // A counter of zero that stays zero (synced passkeys) and a last use under a minute ago: nothing to
    // record (last-used times are shown to the minute). Any counter that moves is always written.
    const unchanged = info.newCounter === credential.counter && credential.lastUsedAt !== null && now - credential.lastUsedAt < LAST_USED_RESOLUTION_MS;
    const moved = unchanged || (await webauthnRepo.recordUse(this.db, input.realmId, credential.id, credential.counter, info.newCounter, now));
    if (!moved) {
      await this.securityEvent({ realmId: input.realmId, userId: credential.userId, type: 'passkey.counter_regression', detail: { credentialId: credential.id, storedCounter: credential.counter, newCounter: info.newCounter } });
      throw fail('counter_regression', 'This passkey reported an unexpected use count and was refused.');
    }
    if (info.backedUp !== credential.backedUp) await webauthnRepo.updateBackup(this.db, input.realmId, credential.id, info.backedUp);
    return { credential: { ...credential, counter: info.newCounter, backedUp: info.backedUp }, userVerified: info.userVerified };
  }

  async rename(realmId: string, userId: string, id: string, name: string): Promise<void> {
    const trimmed = name.trim();
    const problem = credentialNameProblem(trimmed);
    if (problem) throw fail('invalid_input', problem);
    if (!(await webauthnRepo.rename(this.db, realmId, userId, id, trimmed))) throw fail('not_found', 'That passkey does not exist.', 404);
  }

  async remove(realmId: string, userId: string, id: string): Promise<void> {
    if (!(await webauthnRepo.remove(this.db, realmId, userId, id))) throw fail('not_found', 'That passkey does not exist.', 404);
  }
}

/** The candidate RP whose RP ID a stored challenge was issued for. */
function pickRp(rp: RelyingParty | RelyingParty[], rpId: string): RelyingParty | undefined {
  return (Array.isArray(rp) ? rp : [rp]).find((r) => r.rpId === rpId);
}

/** RFC 8176 method for a credential: synced passkeys are software keys, device-bound ones hardware keys. */
export const amrOf = (credential: Pick<CredentialRow, 'deviceType'>): 'swk' | 'hwk' => (credential.deviceType === 'multiDevice' ? 'swk' : 'hwk');
