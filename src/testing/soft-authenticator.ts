/**
 * A software WebAuthn authenticator + client for tests and the benchmark (no browser).
 *
 * Lives in src/ so that `npm run build` compiles it to dist/testing/soft-authenticator.js, which the
 * plain-JS benchmark (bench/lib/passkey.js) imports; the tests use it through test/helpers/authenticator.ts.
 * Nothing in the server imports it. Dependency-free apart from node:crypto and @simplewebauthn/server/helpers.
 *
 * It produces real WebAuthn ceremonies — real key pairs, real signatures, real CBOR — and hands
 * back the exact JSON shapes `@simplewebauthn/browser` v14's `startRegistration()` /
 * `startAuthentication()` return (`RegistrationResponseJSON` / `AuthenticationResponseJSON`), so
 * they can be POSTed straight to the server's verification endpoints.
 *
 * Overrides are *tampering*: they change what is emitted (rpIdHash, clientDataJSON, counter…) but
 * not the authenticator's own idea of which RP a credential belongs to.
 */
import {
  createHash,
  generateKeyPairSync,
  randomBytes,
  sign,
  type KeyObject,
} from 'node:crypto';
import { isoCBOR } from '@simplewebauthn/server/helpers';
import type {
  AuthenticationResponseJSON,
  PublicKeyCredentialCreationOptionsJSON,
  PublicKeyCredentialRequestOptionsJSON,
  RegistrationResponseJSON,
} from '@simplewebauthn/server';

type CBORValue = Parameters<typeof isoCBOR.encode>[0];

/** base64url (no padding) of bytes. */
export function b64url(buf: Uint8Array | ArrayBuffer): string {
  const bytes = buf instanceof ArrayBuffer ? new Uint8Array(buf) : buf;
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('base64url');
}

/** Decode base64url (padding tolerated) into a Buffer. */
export function fromB64url(s: string): Buffer {
  return Buffer.from(s, 'base64url');
}

const sha256 = (data: Uint8Array): Buffer => createHash('sha256').update(data).digest();

/** COSE algorithm identifiers this authenticator can produce. */
export const ES256 = -7;
export const EdDSA = -8;

/** Authenticator data flag bits. */
export const FLAGS = { UP: 0x01, UV: 0x04, BE: 0x08, BS: 0x10, AT: 0x40, ED: 0x80 } as const;

export interface SoftAuthenticatorOptions {
  /** AAGUID as a UUID string; default all zeros (what most synced passkey providers send with attestation 'none'). */
  aaguid?: string;
  /** BE flag: the credential may be synced. Default true. */
  backupEligible?: boolean;
  /** BS flag: the credential is currently backed up. Defaults to `backupEligible`. (BS without BE is invalid and rejected by SimpleWebAuthn.) */
  backedUp?: boolean;
  /** Set the UV flag (biometric/PIN done). Default true. */
  userVerification?: boolean;
  /**
   * 'none' (default), 'packed' self-attestation (signed with the credential key, no x5c), or 'packed'
   * full attestation signed with `attestationCertificate`'s key and carrying its chain as x5c.
   */
  attestation?: 'none' | 'packed-self' | 'packed-x5c';
  /** For attestation 'packed-x5c': the ES256 (P-256) attestation key and its chain (DER, leaf first). */
  attestationCertificate?: { privateKey: KeyObject; chain: Uint8Array[] };
  /** Transports reported in the registration response. Default ['internal', 'hybrid']. */
  transports?: string[];
  /**
   * 'increment' (default): each assertion bumps the signature counter by 1 (first assertion = 1).
   * 'zero': always report 0, like iCloud Keychain / Google Password Manager synced passkeys.
   */
  signCount?: 'increment' | 'zero';
  /** authenticatorAttachment reported in responses. Default 'platform'. */
  attachment?: 'platform' | 'cross-platform';
}

export interface CreateOverrides {
  /** rpId whose SHA-256 goes into authenticatorData (default options.rp.id, else the origin's host). */
  rpId?: string;
  /** challenge placed into clientDataJSON (default options.challenge). */
  challenge?: string;
  /** clientDataJSON.type (default 'webauthn.create'). */
  type?: string;
  /** clientDataJSON.crossOrigin (default false). */
  crossOrigin?: boolean;
  /** clientDataJSON.topOrigin (omitted by default). */
  topOrigin?: string;
  /** Override the UV flag for this ceremony only. */
  userVerification?: boolean;
  /** Override the UP flag for this ceremony only (default true). */
  userPresence?: boolean;
}

export interface GetOverrides {
  /** rpId whose SHA-256 goes into authenticatorData (credential lookup still uses options.rpId / origin host). */
  rpId?: string;
  /** challenge placed into clientDataJSON (default options.challenge). */
  challenge?: string;
  /** clientDataJSON.type (default 'webauthn.get'). */
  type?: string;
  /** Use this signature counter instead of incrementing (simulate regression / cloned authenticator). Also stored. */
  counter?: number;
  /** Use this stored credential (base64url id), ignoring rpId and allowCredentials. */
  credentialId?: string;
  /** Override the UV flag for this ceremony only. */
  userVerification?: boolean;
  /** Override the UP flag for this ceremony only (default true). */
  userPresence?: boolean;
  /** clientDataJSON.crossOrigin (default false). */
  crossOrigin?: boolean;
  /** clientDataJSON.topOrigin (omitted by default). */
  topOrigin?: string;
  /** userHandle to report (default the stored user.id; pass null to omit it, as for non-discoverable credentials). */
  userHandle?: string | null;
}

export interface StoredCredentialInfo {
  /** base64url credential id. */
  id: string;
  rpId: string;
  /** base64url user handle (= options.user.id at registration). */
  userHandle: string;
  /** Last signature counter emitted. */
  counter: number;
}

interface StoredCredential extends StoredCredentialInfo {
  alg: number;
  privateKey: KeyObject;
  publicKey: KeyObject;
  /** CBOR-encoded COSE public key, as the server stores it. */
  cosePublicKey: Uint8Array;
}

/** Thrown where a browser would reject the ceremony (e.g. DOMException name in `.name`). */
export class AuthenticatorError extends Error {
  constructor(
    public readonly name: 'InvalidStateError' | 'NotAllowedError' | 'NotSupportedError',
    message: string,
  ) {
    super(message);
  }
}

function parseAaguid(uuid: string): Buffer {
  const hex = uuid.replace(/-/g, '');
  if (!/^[0-9a-fA-F]{32}$/.test(hex)) throw new Error(`invalid AAGUID ${uuid}`);
  return Buffer.from(hex, 'hex');
}

function u32be(n: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(n >>> 0);
  return b;
}

function u16be(n: number): Buffer {
  const b = Buffer.alloc(2);
  b.writeUInt16BE(n);
  return b;
}

/** Byte order of clientDataJSON keys follows the spec's serialization (type, challenge, origin, crossOrigin[, topOrigin]). */
function clientDataJSON(fields: { type: string; challenge: string; origin: string; crossOrigin: boolean; topOrigin?: string }): Buffer {
  const data: Record<string, unknown> = {
    type: fields.type,
    challenge: fields.challenge,
    origin: fields.origin,
    crossOrigin: fields.crossOrigin,
  };
  if (fields.topOrigin !== undefined) data.topOrigin = fields.topOrigin;
  return Buffer.from(JSON.stringify(data), 'utf8');
}

function hostOf(origin: string): string {
  return new URL(origin).hostname;
}

function signWith(cred: { alg: number; privateKey: KeyObject }, data: Uint8Array): Buffer {
  // ES256: node's default ECDSA encoding is ASN.1 DER, which is what WebAuthn uses. Ed25519: raw 64 bytes.
  return cred.alg === EdDSA ? sign(null, data, cred.privateKey) : sign('sha256', data, cred.privateKey);
}

function generateCredentialKey(alg: number): { privateKey: KeyObject; publicKey: KeyObject; cose: Uint8Array } {
  if (alg === ES256) {
    const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const jwk = publicKey.export({ format: 'jwk' });
    const cose = new Map<number, CBORValue>([
      [1, 2], // kty: EC2
      [3, ES256], // alg
      [-1, 1], // crv: P-256
      [-2, new Uint8Array(fromB64url(jwk.x!))],
      [-3, new Uint8Array(fromB64url(jwk.y!))],
    ]);
    return { privateKey, publicKey, cose: isoCBOR.encode(cose) };
  }
  if (alg === EdDSA) {
    const { privateKey, publicKey } = generateKeyPairSync('ed25519');
    const jwk = publicKey.export({ format: 'jwk' });
    const cose = new Map<number, CBORValue>([
      [1, 1], // kty: OKP
      [3, EdDSA], // alg
      [-1, 6], // crv: Ed25519
      [-2, new Uint8Array(fromB64url(jwk.x!))],
    ]);
    return { privateKey, publicKey, cose: isoCBOR.encode(cose) };
  }
  throw new AuthenticatorError('NotSupportedError', `unsupported COSE alg ${alg}`);
}

export class SoftAuthenticator {
  readonly aaguid: Buffer;
  readonly backupEligible: boolean;
  readonly backedUp: boolean;
  readonly userVerification: boolean;
  readonly attestation: 'none' | 'packed-self' | 'packed-x5c';
  readonly attestationCertificate: { privateKey: KeyObject; chain: Uint8Array[] } | undefined;
  readonly transports: string[];
  readonly signCount: 'increment' | 'zero';
  readonly attachment: 'platform' | 'cross-platform';

  private readonly store: StoredCredential[] = [];
  private lastAssertion: AuthenticationResponseJSON | undefined;

  constructor(opts: SoftAuthenticatorOptions = {}) {
    this.aaguid = parseAaguid(opts.aaguid ?? '00000000-0000-0000-0000-000000000000');
    this.backupEligible = opts.backupEligible ?? true;
    this.backedUp = opts.backedUp ?? this.backupEligible;
    this.userVerification = opts.userVerification ?? true;
    this.attestation = opts.attestation ?? 'none';
    this.attestationCertificate = opts.attestationCertificate;
    if (this.attestation === 'packed-x5c' && !this.attestationCertificate?.chain.length) throw new Error("attestation 'packed-x5c' needs attestationCertificate");
    this.transports = opts.transports ?? ['internal', 'hybrid'];
    this.signCount = opts.signCount ?? 'increment';
    this.attachment = opts.attachment ?? 'platform';
  }

  private flags(o: { userVerification?: boolean; userPresence?: boolean }, attested: boolean): number {
    let f = 0;
    if (o.userPresence ?? true) f |= FLAGS.UP;
    if (o.userVerification ?? this.userVerification) f |= FLAGS.UV;
    if (this.backupEligible) f |= FLAGS.BE;
    if (this.backedUp) f |= FLAGS.BS;
    if (attested) f |= FLAGS.AT;
    return f;
  }

  /** navigator.credentials.create() + PublicKeyCredential.toJSON(). */
  async createCredential(
    options: PublicKeyCredentialCreationOptionsJSON,
    origin: string,
    overrides: CreateOverrides = {},
  ): Promise<RegistrationResponseJSON> {
    const rpId = options.rp.id ?? hostOf(origin);
    const hashedRpId = overrides.rpId ?? rpId;

    // Like a real authenticator: refuse to create a second credential for an excluded one we hold.
    for (const ex of options.excludeCredentials ?? []) {
      if (this.store.some((c) => c.id === ex.id && c.rpId === rpId)) {
        throw new AuthenticatorError('InvalidStateError', 'The authenticator already holds an excluded credential');
      }
    }

    const algs = (options.pubKeyCredParams ?? []).filter((p) => p.type === 'public-key').map((p) => p.alg);
    const alg = algs.includes(ES256) ? ES256 : algs.includes(EdDSA) ? EdDSA : undefined;
    if (alg === undefined) {
      throw new AuthenticatorError('NotSupportedError', `no supported algorithm in pubKeyCredParams (${algs.join(', ')})`);
    }

    const { privateKey, publicKey, cose } = generateCredentialKey(alg);
    const credId = randomBytes(32);

    const authData = Buffer.concat([
      sha256(Buffer.from(hashedRpId, 'utf8')),
      Buffer.from([this.flags(overrides, true)]),
      u32be(0),
      this.aaguid,
      u16be(credId.length),
      credId,
      cose,
    ]);

    const cdj = clientDataJSON({
      type: overrides.type ?? 'webauthn.create',
      challenge: overrides.challenge ?? options.challenge,
      origin,
      crossOrigin: overrides.crossOrigin ?? false,
      topOrigin: overrides.topOrigin,
    });

    let attStmt: Map<string, CBORValue>;
    let fmt: string;
    if (this.attestation === 'packed-self') {
      fmt = 'packed';
      const sig = signWith({ alg, privateKey }, Buffer.concat([authData, sha256(cdj)]));
      attStmt = new Map<string, CBORValue>([
        ['alg', alg],
        ['sig', new Uint8Array(sig)],
      ]);
    } else if (this.attestation === 'packed-x5c') {
      fmt = 'packed';
      const signer = this.attestationCertificate!;
      const sig = signWith({ alg: ES256, privateKey: signer.privateKey }, Buffer.concat([authData, sha256(cdj)]));
      attStmt = new Map<string, CBORValue>([
        ['alg', ES256],
        ['sig', new Uint8Array(sig)],
        ['x5c', signer.chain.map((der) => new Uint8Array(der))],
      ]);
    } else {
      fmt = 'none';
      attStmt = new Map();
    }
    const attestationObject = isoCBOR.encode(
      new Map<string, CBORValue>([
        ['fmt', fmt],
        ['attStmt', attStmt],
        ['authData', new Uint8Array(authData)],
      ]),
    );

    const id = b64url(credId);
    this.store.push({
      id,
      rpId,
      userHandle: options.user.id,
      counter: 0,
      alg,
      privateKey,
      publicKey,
      cosePublicKey: cose,
    });

    const clientExtensionResults: Record<string, unknown> = {};
    if (options.extensions && (options.extensions as { credProps?: boolean }).credProps) {
      clientExtensionResults.credProps = { rk: true };
    }

    return {
      id,
      rawId: id,
      type: 'public-key',
      response: {
        clientDataJSON: b64url(cdj),
        attestationObject: b64url(attestationObject),
        authenticatorData: b64url(authData),
        transports: [...this.transports],
        publicKeyAlgorithm: alg,
        publicKey: b64url(publicKey.export({ format: 'der', type: 'spki' })),
      },
      clientExtensionResults,
      authenticatorAttachment: this.attachment,
    };
  }

  /** navigator.credentials.get() + PublicKeyCredential.toJSON(). */
  async getAssertion(
    options: PublicKeyCredentialRequestOptionsJSON,
    origin: string,
    overrides: GetOverrides = {},
  ): Promise<AuthenticationResponseJSON> {
    const rpId = options.rpId ?? hostOf(origin);
    const hashedRpId = overrides.rpId ?? rpId;

    let cred: StoredCredential | undefined;
    if (overrides.credentialId !== undefined) {
      cred = this.store.find((c) => c.id === overrides.credentialId);
    } else {
      const candidates = this.store.filter((c) => c.rpId === rpId);
      const allow = options.allowCredentials ?? [];
      const eligible = allow.length > 0 ? candidates.filter((c) => allow.some((a) => a.id === c.id)) : candidates;
      cred = eligible[eligible.length - 1]; // most recently created, like a one-account picker
    }
    if (!cred) {
      throw new AuthenticatorError('NotAllowedError', `no credential for rpId ${rpId}`);
    }

    if (overrides.counter !== undefined) cred.counter = overrides.counter;
    else if (this.signCount === 'increment') cred.counter += 1;
    else cred.counter = 0;

    const authData = Buffer.concat([
      sha256(Buffer.from(hashedRpId, 'utf8')),
      Buffer.from([this.flags(overrides, false)]),
      u32be(cred.counter),
    ]);
    const cdj = clientDataJSON({
      type: overrides.type ?? 'webauthn.get',
      challenge: overrides.challenge ?? options.challenge,
      origin,
      crossOrigin: overrides.crossOrigin ?? false,
      topOrigin: overrides.topOrigin,
    });
    const signature = signWith(cred, Buffer.concat([authData, sha256(cdj)]));

    const userHandle = overrides.userHandle === undefined ? cred.userHandle : overrides.userHandle;
    const result: AuthenticationResponseJSON = {
      id: cred.id,
      rawId: cred.id,
      type: 'public-key',
      response: {
        clientDataJSON: b64url(cdj),
        authenticatorData: b64url(authData),
        signature: b64url(signature),
        ...(userHandle !== null ? { userHandle } : {}),
      },
      clientExtensionResults: {},
      authenticatorAttachment: this.attachment,
    };
    this.lastAssertion = structuredClone(result);
    return result;
  }

  /** The stored credentials (no key material). */
  credentials(): StoredCredentialInfo[] {
    return this.store.map(({ id, rpId, userHandle, counter }) => ({ id, rpId, userHandle, counter }));
  }

  /** The CBOR COSE public key of a stored credential (what the server should have stored), for direct verifier tests. */
  publicKeyOf(credentialId: string): Uint8Array {
    const c = this.store.find((x) => x.id === credentialId);
    if (!c) throw new Error(`unknown credential ${credentialId}`);
    return c.cosePublicKey;
  }

  /** Forget a credential (user deleted the passkey on the device). */
  remove(credentialId: string): void {
    const i = this.store.findIndex((x) => x.id === credentialId);
    if (i >= 0) this.store.splice(i, 1);
  }

  /** The exact last assertion again, byte for byte (replay attack). */
  replayLast(): AuthenticationResponseJSON {
    if (!this.lastAssertion) throw new Error('no assertion produced yet');
    return structuredClone(this.lastAssertion);
  }
}
