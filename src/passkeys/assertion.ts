import { createHash, createPublicKey, verify, type KeyObject } from 'node:crypto';
import type { AuthenticationResponseJSON } from '@simplewebauthn/server';
import { decodeCredentialPublicKey, parseAuthenticatorData } from '@simplewebauthn/server/helpers';

/**
 * Verification of a WebAuthn assertion (W3C WebAuthn Level 3, §7.2 "Verifying an Authentication
 * Assertion", steps 5–21 that concern the response itself), synchronous and on node:crypto.
 *
 * Why not SimpleWebAuthn's `verifyAuthenticationResponse`: per assertion it imports the credential's key
 * into WebCrypto again, parses the ECDSA signature with a general ASN.1 library, and hashes through
 * async WebCrypto digests. That came to about 0.7 ms of event-loop time per passkey sign-in, more than
 * the rest of the verify request. Here the credential's public key becomes a node:crypto KeyObject once
 * (cached by the stored key), hashes are synchronous, and node:crypto verifies DER ECDSA signatures as
 * they come. SimpleWebAuthn still parses the authenticator data and decodes the COSE key (both cheap),
 * and it still does registration; test/passkeys/assertion.test.ts runs both verifiers side by side over
 * valid and tampered assertions and requires the same verdict.
 *
 * Deliberately stricter than the library in one place: a `crossOrigin: true` assertion (a ceremony run in
 * a cross-origin iframe) is refused, since Latchkey's pages cannot be framed (`frame-ancestors 'none'`).
 */

export type AssertionFailure =
  | 'malformed'
  | 'type'
  | 'challenge'
  | 'origin'
  | 'cross_origin'
  | 'rp_id'
  | 'user_presence'
  | 'user_verification'
  | 'counter'
  | 'algorithm'
  | 'signature';

export class AssertionError extends Error {
  constructor(
    readonly reason: AssertionFailure,
    message: string,
  ) {
    super(message);
  }
}

export interface AssertionInput {
  response: AuthenticationResponseJSON;
  expectedChallenge: string;
  expectedOrigins: readonly string[];
  expectedRpId: string;
  /** The credential's COSE public key, base64url, as stored at registration. */
  publicKey: string;
  /** The stored signature counter. */
  counter: number;
  requireUserVerification: boolean;
}

export interface AssertionResult {
  newCounter: number;
  userVerified: boolean;
  /** Backup eligibility: a passkey that may be synced to other devices. */
  deviceType: 'singleDevice' | 'multiDevice';
  backedUp: boolean;
}

const BASE64URL = /^[A-Za-z0-9_-]*={0,2}$/;

const fail = (reason: AssertionFailure, message: string): never => {
  throw new AssertionError(reason, message);
};

function base64url(value: unknown, what: string): Buffer {
  if (typeof value !== 'string' || !BASE64URL.test(value)) fail('malformed', `${what} is not a base64url string`);
  return Buffer.from(value as string, 'base64url');
}

const sha256 = (data: Uint8Array): Buffer => createHash('sha256').update(data).digest();

const rpIdHashes = new Map<string, Buffer>();
function rpIdHash(rpId: string): Buffer {
  let hash = rpIdHashes.get(rpId);
  if (!hash) {
    hash = sha256(Buffer.from(rpId, 'utf8'));
    if (rpIdHashes.size > 1000) rpIdHashes.clear();
    rpIdHashes.set(rpId, hash);
  }
  return hash;
}

interface VerificationKey {
  alg: number;
  key: KeyObject;
}

/** Parsed keys by stored COSE key; bounded, least recently used dropped first. */
const keyCache = new Map<string, VerificationKey>();
const KEY_CACHE_SIZE = 10_000;

const COSE = { kty: 1, alg: 3, crv: -1, x: -2, y: -3, n: -1, e: -2 } as const;
const b64 = (value: unknown): string => {
  if (!(value instanceof Uint8Array)) fail('algorithm', 'The credential public key is incomplete');
  return Buffer.from(value as Uint8Array).toString('base64url');
};

/** The node:crypto key for a stored COSE key: ES256 (P-256), EdDSA (Ed25519) or RS256, the algorithms registration accepts. */
function verificationKey(publicKey: string): VerificationKey {
  const cached = keyCache.get(publicKey);
  if (cached) {
    keyCache.delete(publicKey);
    keyCache.set(publicKey, cached);
    return cached;
  }
  let cose: Map<number, unknown>;
  try {
    cose = decodeCredentialPublicKey(Buffer.from(publicKey, 'base64url')) as unknown as Map<number, unknown>;
  } catch {
    return fail('algorithm', 'The credential public key cannot be read');
  }
  const kty = cose.get(COSE.kty);
  const alg = cose.get(COSE.alg);
  let jwk: Record<string, string>;
  if (alg === -7 && kty === 2 && cose.get(COSE.crv) === 1) jwk = { kty: 'EC', crv: 'P-256', x: b64(cose.get(COSE.x)), y: b64(cose.get(COSE.y)) };
  else if (alg === -8 && kty === 1 && cose.get(COSE.crv) === 6) jwk = { kty: 'OKP', crv: 'Ed25519', x: b64(cose.get(COSE.x)) };
  else if (alg === -257 && kty === 3) jwk = { kty: 'RSA', n: b64(cose.get(COSE.n)), e: b64(cose.get(COSE.e)) };
  else return fail('algorithm', `Unsupported credential public key (COSE kty ${String(kty)}, alg ${String(alg)})`);
  let key: KeyObject;
  try {
    key = createPublicKey({ key: jwk, format: 'jwk' });
  } catch {
    return fail('algorithm', 'The credential public key is not a valid key');
  }
  const entry = { alg: alg as number, key };
  if (keyCache.size >= KEY_CACHE_SIZE) keyCache.delete(keyCache.keys().next().value as string);
  keyCache.set(publicKey, entry);
  return entry;
}

function signatureValid(vk: VerificationKey, data: Buffer, signature: Buffer): boolean {
  try {
    if (vk.alg === -7) return verify('sha256', data, { key: vk.key, dsaEncoding: 'der' }, signature);
    if (vk.alg === -8) return verify(null, data, vk.key, signature);
    return verify('sha256', data, vk.key, signature); // RS256: RSASSA-PKCS1-v1_5
  } catch {
    return false; // a signature OpenSSL cannot even parse
  }
}

/** Verifies an assertion against the stored credential; throws AssertionError naming the first check that failed. */
export function verifyAssertion(input: AssertionInput): AssertionResult {
  const { response } = input;
  if (typeof response !== 'object' || response === null) return fail('malformed', 'The passkey response is missing');
  if (typeof response.id !== 'string' || !response.id) fail('malformed', 'The credential id is missing');
  if (response.id !== response.rawId) fail('malformed', 'The credential id and raw id differ');
  if (response.type !== 'public-key') fail('malformed', `Unexpected credential type "${String(response.type)}"`);
  const inner = response.response;
  if (typeof inner !== 'object' || inner === null) return fail('malformed', 'The credential response is missing');
  if (inner.userHandle !== undefined && inner.userHandle !== null && typeof inner.userHandle !== 'string') fail('malformed', 'The user handle is not a string');

  const clientDataBytes = base64url(inner.clientDataJSON, 'clientDataJSON');
  let clientData: Record<string, unknown>;
  try {
    clientData = JSON.parse(clientDataBytes.toString('utf8'));
  } catch {
    return fail('malformed', 'clientDataJSON is not JSON');
  }
  if (typeof clientData !== 'object' || clientData === null || Array.isArray(clientData)) return fail('malformed', 'clientDataJSON is not an object');
  if (clientData.type !== 'webauthn.get') fail('type', `Unexpected response type "${String(clientData.type)}", expected "webauthn.get"`);
  if (clientData.challenge !== input.expectedChallenge) fail('challenge', 'The response answers another challenge');
  if (typeof clientData.origin !== 'string' || !input.expectedOrigins.includes(clientData.origin)) {
    fail('origin', `Unexpected origin "${String(clientData.origin)}"`);
  }
  if (clientData.crossOrigin === true) fail('cross_origin', 'The ceremony ran in a cross-origin frame');
  if (clientData.topOrigin !== undefined) fail('cross_origin', 'Unexpected top origin in a same-origin response');
  const tokenBinding = clientData.tokenBinding as { status?: unknown } | undefined;
  if (tokenBinding !== undefined) {
    if (typeof tokenBinding !== 'object' || tokenBinding === null) fail('malformed', 'tokenBinding is not an object');
    else if (!['present', 'supported', 'notSupported'].includes(tokenBinding.status as string)) fail('malformed', 'Unexpected tokenBinding status');
  }

  const authData = base64url(inner.authenticatorData, 'authenticatorData');
  const signature = base64url(inner.signature, 'signature');
  let parsed: ReturnType<typeof parseAuthenticatorData>;
  try {
    parsed = parseAuthenticatorData(new Uint8Array(authData));
  } catch (err) {
    return fail('malformed', `The authenticator data cannot be read: ${(err as Error).message}`);
  }
  if (!rpIdHash(input.expectedRpId).equals(Buffer.from(parsed.rpIdHash))) fail('rp_id', `The response was made for another RP ID than "${input.expectedRpId}"`);
  const { flags, counter } = parsed;
  if (!flags.up) fail('user_presence', 'User not present during authentication');
  if (input.requireUserVerification && !flags.uv) fail('user_verification', 'User verification required, but user could not be verified');
  if (flags.bs && !flags.be) fail('malformed', 'A single-device credential reported itself backed up');
  if ((counter > 0 || input.counter > 0) && counter <= input.counter) {
    fail('counter', `Response counter value ${counter} was lower than expected ${input.counter}`);
  }

  const vk = verificationKey(input.publicKey);
  const signed = Buffer.concat([authData, sha256(clientDataBytes)]);
  if (!signatureValid(vk, signed, signature)) fail('signature', 'The signature does not match the passkey');
  return {
    newCounter: counter,
    userVerified: flags.uv,
    deviceType: flags.be ? 'multiDevice' : 'singleDevice',
    backedUp: flags.bs,
  };
}
