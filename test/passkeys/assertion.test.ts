// Latchkey's own assertion verifier (src/passkeys/assertion.ts) against SimpleWebAuthn's
// verifyAuthenticationResponse, side by side: the same assertions, valid and tampered, for each key type
// registration accepts (ES256, EdDSA, RS256), must get the same verdict, and the same counter and flags
// when accepted. Assertions are built here from scratch with node:crypto (not with the server's code).
import { createHash, generateKeyPairSync, sign, type KeyObject } from 'node:crypto';
import { verifyAuthenticationResponse, type AuthenticationResponseJSON } from '@simplewebauthn/server';
import { isoCBOR } from '@simplewebauthn/server/helpers';
import { describe, expect, it } from 'vitest';
import { AssertionError, verifyAssertion } from '../../src/passkeys/assertion.js';

const RP_ID = 'login.example.test';
const ORIGIN = 'https://login.example.test';
const CHALLENGE = Buffer.from('a challenge of thirty-two bytes!').toString('base64url');
const b64u = (b: Uint8Array | string) => Buffer.from(b).toString('base64url');
const sha256 = (b: Uint8Array | string) => createHash('sha256').update(b).digest();

interface TestKey {
  name: string;
  alg: number;
  privateKey: KeyObject;
  cose: Uint8Array;
}

function makeKey(alg: -7 | -8 | -257): TestKey {
  if (alg === -7) {
    const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const jwk = publicKey.export({ format: 'jwk' });
    const cose = isoCBOR.encode(new Map<number, any>([[1, 2], [3, -7], [-1, 1], [-2, new Uint8Array(Buffer.from(jwk.x!, 'base64url'))], [-3, new Uint8Array(Buffer.from(jwk.y!, 'base64url'))]]));
    return { name: 'ES256', alg, privateKey, cose };
  }
  if (alg === -8) {
    const { privateKey, publicKey } = generateKeyPairSync('ed25519');
    const jwk = publicKey.export({ format: 'jwk' });
    const cose = isoCBOR.encode(new Map<number, any>([[1, 1], [3, -8], [-1, 6], [-2, new Uint8Array(Buffer.from(jwk.x!, 'base64url'))]]));
    return { name: 'EdDSA', alg, privateKey, cose };
  }
  const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const jwk = publicKey.export({ format: 'jwk' });
  const cose = isoCBOR.encode(new Map<number, any>([[1, 3], [3, -257], [-1, new Uint8Array(Buffer.from(jwk.n!, 'base64url'))], [-2, new Uint8Array(Buffer.from(jwk.e!, 'base64url'))]]));
  return { name: 'RS256', alg, privateKey, cose };
}

interface Build {
  rpId?: string;
  flags?: number;
  counter?: number;
  clientData?: Record<string, unknown>;
  clientDataRaw?: string;
  extraAuthData?: Uint8Array;
  tamper?: (parts: { authData: Buffer; clientDataJSON: Buffer; signature: Buffer }) => void;
  signWith?: KeyObject;
  id?: string;
  rawId?: string;
  type?: string;
  userHandle?: unknown;
}

const UP = 0x01;
const UV = 0x04;
const BE = 0x08;
const BS = 0x10;
const ED = 0x80;

function assertion(key: TestKey, b: Build = {}): AuthenticationResponseJSON {
  const counter = Buffer.alloc(4);
  counter.writeUInt32BE(b.counter ?? 0);
  const authData = Buffer.concat([sha256(b.rpId ?? RP_ID), Buffer.from([b.flags ?? UP | UV | BE | BS]), counter, b.extraAuthData ?? Buffer.alloc(0)]);
  const clientDataJSON = Buffer.from(
    b.clientDataRaw ?? JSON.stringify({ type: 'webauthn.get', challenge: CHALLENGE, origin: ORIGIN, crossOrigin: false, ...b.clientData }),
  );
  const data = Buffer.concat([authData, sha256(clientDataJSON)]);
  const signer = b.signWith ?? key.privateKey;
  const signature = key.alg === -8 ? sign(null, data, signer) : sign('sha256', data, signer);
  b.tamper?.({ authData, clientDataJSON, signature });
  return {
    id: b.id ?? 'Y3JlZGVudGlhbA',
    rawId: b.rawId ?? b.id ?? 'Y3JlZGVudGlhbA',
    type: (b.type ?? 'public-key') as 'public-key',
    clientExtensionResults: {},
    response: {
      clientDataJSON: b64u(clientDataJSON),
      authenticatorData: b64u(authData),
      signature: b64u(signature),
      ...(b.userHandle !== undefined ? { userHandle: b.userHandle as string } : {}),
    },
  };
}

type Verdict = { ok: true; counter: number; uv: boolean; backedUp: boolean; multiDevice: boolean } | { ok: false };

async function theirs(key: TestKey, response: AuthenticationResponseJSON, stored: number, requireUV: boolean): Promise<Verdict> {
  try {
    const r = await verifyAuthenticationResponse({
      response,
      expectedChallenge: CHALLENGE,
      expectedOrigin: [ORIGIN],
      expectedRPID: RP_ID,
      credential: { id: response.id, publicKey: key.cose as Uint8Array<ArrayBuffer>, counter: stored },
      requireUserVerification: requireUV,
    });
    if (!r.verified) return { ok: false };
    const i = r.authenticationInfo;
    return { ok: true, counter: i.newCounter, uv: i.userVerified, backedUp: i.credentialBackedUp, multiDevice: i.credentialDeviceType === 'multiDevice' };
  } catch {
    return { ok: false };
  }
}

function ours(key: TestKey, response: AuthenticationResponseJSON, stored: number, requireUV: boolean): Verdict & { reason?: string } {
  try {
    const r = verifyAssertion({
      response,
      expectedChallenge: CHALLENGE,
      expectedOrigins: [ORIGIN],
      expectedRpId: RP_ID,
      publicKey: b64u(key.cose),
      counter: stored,
      requireUserVerification: requireUV,
    });
    return { ok: true, counter: r.newCounter, uv: r.userVerified, backedUp: r.backedUp, multiDevice: r.deviceType === 'multiDevice' };
  } catch (err) {
    if (!(err instanceof AssertionError)) throw err;
    return { ok: false, reason: err.reason };
  }
}

const keys = [makeKey(-7), makeKey(-8), makeKey(-257)];
const other = { '-7': makeKey(-7), '-8': makeKey(-8), '-257': makeKey(-257) } as Record<string, TestKey>;

interface Case {
  name: string;
  build: (key: TestKey) => Build;
  stored?: number;
  requireUV?: boolean;
  /** expected verdict of both verifiers, and our failure reason */
  expect: { ok: true } | { ok: false; reason: string };
}

const flip = (buf: Buffer, index: number) => {
  buf[index < 0 ? buf.length + index : index] ^= 0x01;
};

const cases: Case[] = [
  { name: 'valid, zero counters', build: () => ({}), expect: { ok: true } },
  { name: 'valid, counter moves forward', build: () => ({ counter: 8 }), stored: 7, expect: { ok: true } },
  { name: 'valid, not backed up, single device', build: () => ({ flags: UP | UV }), expect: { ok: true } },
  { name: 'valid without UV when UV is not required', build: () => ({ flags: UP }), requireUV: false, expect: { ok: true } },
  { name: 'valid with an extra clientData member', build: () => ({ clientData: { other_keys_can_be_added_here: 'x' } }), expect: { ok: true } },
  { name: 'valid with extension data', build: () => ({ flags: UP | UV | ED, extraAuthData: isoCBOR.encode(new Map<string, any>([['credProtect', 1]])) }), expect: { ok: true } },
  { name: 'counter equal to the stored one', build: () => ({ counter: 7 }), stored: 7, expect: { ok: false, reason: 'counter' } },
  { name: 'counter went backwards', build: () => ({ counter: 3 }), stored: 7, expect: { ok: false, reason: 'counter' } },
  { name: 'counter zero after a non-zero one', build: () => ({ counter: 0 }), stored: 7, expect: { ok: false, reason: 'counter' } },
  { name: 'another challenge', build: () => ({ clientData: { challenge: b64u('another challenge') } }), expect: { ok: false, reason: 'challenge' } },
  { name: 'another origin', build: () => ({ clientData: { origin: 'https://evil.example.test' } }), expect: { ok: false, reason: 'origin' } },
  { name: 'origin differing in case', build: () => ({ clientData: { origin: 'https://LOGIN.example.test' } }), expect: { ok: false, reason: 'origin' } },
  { name: 'registration type (webauthn.create)', build: () => ({ clientData: { type: 'webauthn.create' } }), expect: { ok: false, reason: 'type' } },
  { name: 'another RP ID', build: () => ({ rpId: 'example.test' }), expect: { ok: false, reason: 'rp_id' } },
  { name: 'user not present', build: () => ({ flags: UV }), expect: { ok: false, reason: 'user_presence' } },
  { name: 'user not verified when required', build: () => ({ flags: UP }), expect: { ok: false, reason: 'user_verification' } },
  { name: 'backed up but not backup eligible', build: () => ({ flags: UP | UV | BS }), expect: { ok: false, reason: 'malformed' } },
  { name: 'top origin in a same-origin response', build: () => ({ clientData: { topOrigin: 'https://evil.example.test' } }), expect: { ok: false, reason: 'cross_origin' } },
  { name: 'cross-origin frame with a top origin', build: () => ({ clientData: { crossOrigin: true, topOrigin: 'https://evil.example.test' } }), expect: { ok: false, reason: 'cross_origin' } },
  { name: 'signature by another key', build: (k) => ({ signWith: other[String(k.alg)].privateKey }), expect: { ok: false, reason: 'signature' } },
  { name: 'signature bit flipped', build: () => ({ tamper: (p) => flip(p.signature, -1) }), expect: { ok: false, reason: 'signature' } },
  { name: 'authenticator data changed after signing (counter)', build: () => ({ tamper: (p) => flip(p.authData, 36) }), expect: { ok: false, reason: 'signature' } },
  { name: 'authenticator data changed after signing (flags)', build: () => ({ flags: UP | BE | BS, tamper: (p) => (p.authData[32] |= UV) }), expect: { ok: false, reason: 'signature' } },
  { name: 'client data changed after signing', build: () => ({ clientDataRaw: JSON.stringify({ type: 'webauthn.get', challenge: CHALLENGE, origin: ORIGIN, crossOrigin: false, x: 'a' }), tamper: (p) => (p.clientDataJSON[p.clientDataJSON.length - 3] = 0x62) }), expect: { ok: false, reason: 'signature' } },
  { name: 'empty signature', build: () => ({ tamper: (p) => p.signature.fill(0) }), expect: { ok: false, reason: 'signature' } },
  { name: 'leftover bytes after the authenticator data', build: () => ({ extraAuthData: Buffer.from([1, 2, 3]) }), expect: { ok: false, reason: 'malformed' } },
  { name: 'id and rawId differ', build: () => ({ rawId: 'b3RoZXI' }), expect: { ok: false, reason: 'malformed' } },
  { name: 'type other than public-key', build: () => ({ type: 'password' }), expect: { ok: false, reason: 'malformed' } },
  { name: 'empty id', build: () => ({ id: '' }), expect: { ok: false, reason: 'malformed' } },
  { name: 'clientDataJSON not JSON', build: () => ({ clientDataRaw: 'not json' }), expect: { ok: false, reason: 'malformed' } },
  { name: 'userHandle not a string', build: () => ({ userHandle: 42 }), expect: { ok: false, reason: 'malformed' } },
];

describe('passkey assertion verification: ours agrees with SimpleWebAuthn', () => {
  for (const key of keys) {
    for (const c of cases) {
      it(`${key.name}: ${c.name}`, async () => {
        const response = assertion(key, c.build(key));
        const stored = c.stored ?? 0;
        const requireUV = c.requireUV ?? true;
        const a = ours(key, response, stored, requireUV);
        const b = await theirs(key, response, stored, requireUV);
        expect(a.ok).toBe(c.expect.ok);
        if (!c.expect.ok) expect(a.reason).toBe(c.expect.reason);
        const { reason: _reason, ...verdict } = a;
        expect(verdict).toEqual(b);
      });
    }
  }

  it('refuses a cross-origin frame even without a top origin (SimpleWebAuthn lets it through)', async () => {
    const key = keys[0];
    const response = assertion(key, { clientData: { crossOrigin: true } });
    expect(ours(key, response, 0, true)).toEqual({ ok: false, reason: 'cross_origin' });
    expect((await theirs(key, response, 0, true)).ok).toBe(true);
  });

  it('reports counter and flags of an accepted assertion', () => {
    const key = keys[1];
    const single = ours(key, assertion(key, { flags: UP | UV, counter: 5 }), 4, true);
    expect(single).toEqual({ ok: true, counter: 5, uv: true, backedUp: false, multiDevice: false });
    const synced = ours(key, assertion(key, { flags: UP | BE | BS }), 0, false);
    expect(synced).toEqual({ ok: true, counter: 0, uv: false, backedUp: true, multiDevice: true });
  });

  it('names an unsupported key algorithm instead of failing obscurely', () => {
    const es384 = isoCBOR.encode(new Map<number, any>([[1, 2], [3, -35], [-1, 2], [-2, new Uint8Array(48)], [-3, new Uint8Array(48)]]));
    const key = { ...keys[0], cose: es384 };
    const result = ours(key, assertion(keys[0]), 0, true);
    expect(result).toEqual({ ok: false, reason: 'algorithm' });
  });

  it('keeps working when the same stored key is verified many times (cached key)', () => {
    const key = keys[0];
    for (let i = 1; i <= 20; i++) expect(ours(key, assertion(key, { counter: i }), i - 1, true).ok).toBe(true);
    expect(ours(key, assertion(key, { counter: 20, tamper: (p) => flip(p.signature, -1) }), 19, true).ok).toBe(false);
  });
});
