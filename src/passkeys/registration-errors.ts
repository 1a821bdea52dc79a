import { decodeAttestationObject, isoBase64URL } from '@simplewebauthn/server/helpers';
import { LatchkeyError } from '../errors.js';

/** Why a passkey registration was refused: stable codes that scripts and tests rely on. */
export type RegistrationFailure =
  | 'invalid_response'
  | 'wrong_ceremony'
  | 'challenge_invalid'
  | 'origin_mismatch'
  | 'rp_id_mismatch'
  | 'user_not_present'
  | 'user_not_verified'
  | 'unsupported_algorithm'
  | 'attestation_invalid'
  | 'registration_failed';

const MESSAGES: Record<RegistrationFailure, string> = {
  invalid_response: 'the response from your browser or authenticator is incomplete or malformed. Try again.',
  wrong_ceremony: 'the response your browser sent is for signing in, not for creating a passkey. Try again.',
  challenge_invalid: 'the request has expired or was already used. Start again.',
  origin_mismatch: 'it was created on a different website than this one. Create it here, on this sign-in or account page.',
  rp_id_mismatch: 'your authenticator created it for a different domain than this one. Try again on this page.',
  user_not_present: 'your authenticator did not confirm that you were there (a touch or a tap). Try again and confirm on the authenticator when asked.',
  user_not_verified: 'your authenticator did not check that it is you (a PIN, fingerprint or face). Try again and unlock it when asked, or use one that can.',
  unsupported_algorithm: 'your authenticator uses a signing algorithm this server does not accept (it accepts EdDSA, ES256 and RS256). Use another authenticator.',
  attestation_invalid: "your authenticator's proof of what it is (its attestation) could not be verified. Try again, or use another authenticator.",
  registration_failed: "your authenticator's response could not be verified. Try again, or use another authenticator.",
};

/** A refused registration: our code, and "This passkey could not be registered: " with the reason in our words. */
export function registrationError(reason: RegistrationFailure): LatchkeyError {
  return new LatchkeyError(reason, `This passkey could not be registered: ${MESSAGES[reason]}`, 400);
}

/**
 * SimpleWebAuthn (verifyRegistrationResponse, v14) says what was wrong only in its error text, which
 * quotes the response and the expected values: it is matched here, never shown. The first pattern that
 * matches wins; test/passkeys/registration-errors.test.ts pins each of them, so a library upgrade that
 * rewords one shows there.
 */
const LIBRARY_REASONS: ReadonlyArray<readonly [RegExp, RegistrationFailure]> = [
  [/^Unexpected registration response type\b/, 'wrong_ceremony'],
  [/registration response challenge\b/, 'challenge_invalid'],
  [/^Unexpected registration response origin\b/, 'origin_mismatch'],
  [/^Unexpected RP ID hash\b/, 'rp_id_mismatch'],
  [/^User presence was required\b/, 'user_not_present'],
  [/^User verification was required\b/, 'user_not_verified'],
  [/^Unexpected public key alg\b|does not support use of\b/, 'unsupported_algorithm'],
  [
    /^(Missing credential ID|Credential ID was not base64url|Unexpected credential type|No credential ID|No public key|No AAGUID|Credential public key was missing|Authenticator data was|Leftover bytes|Unexpected value for TokenBinding|Unexpected tokenBinding)/,
    'invalid_response',
  ],
];

/** A failure in the attestation statement (its signature, its certificates, its format). */
const ATTESTATION = /attestation|certificate/i;

/**
 * Whether the response's attestation object is what WebAuthn says it is (a CBOR map with a format and
 * authenticator data): the library reads anything else with errors of JavaScript's own wording.
 */
function attestationReadable(response: { response?: { attestationObject?: unknown } }): boolean {
  try {
    const raw = response?.response?.attestationObject;
    if (typeof raw !== 'string') return false;
    const decoded: unknown = decodeAttestationObject(isoBase64URL.toBuffer(raw));
    if (!(decoded instanceof Map)) return false;
    const authData: unknown = decoded.get('authData');
    return typeof decoded.get('fmt') === 'string' && authData instanceof Uint8Array && authData.byteLength >= 37;
  } catch {
    return false;
  }
}

/** Our reason for an error SimpleWebAuthn threw while verifying `response`. */
export function registrationFailureOf(err: unknown, response: { response?: { attestationObject?: unknown } }): RegistrationFailure {
  const message = err instanceof Error ? err.message : String(err);
  for (const [pattern, reason] of LIBRARY_REASONS) if (pattern.test(message)) return reason;
  // what the library did not word itself (decoding CBOR, base64url, COSE keys) is a malformed response
  if (!attestationReadable(response)) return 'invalid_response';
  return ATTESTATION.test(message) ? 'attestation_invalid' : 'registration_failed';
}
