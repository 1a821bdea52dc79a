import { generateKeyPairSync, randomBytes } from 'node:crypto';
import type { JsonWebKey } from 'node:crypto';

/** Key families every realm holds; RSA serves both RS256 and PS256. */
export const KEY_FAMILIES = ['EdDSA', 'RSA', 'ES256'] as const;
export type KeyFamily = (typeof KEY_FAMILIES)[number];

export interface GeneratedKey {
  kid: string;
  family: KeyFamily;
  publicJwk: JsonWebKey & { kid: string };
  privateJwk: JsonWebKey & { kid: string };
}

function newKid(family: KeyFamily): string {
  // 18 random bytes: collisions are out of reach; the prefix tells operators what a key is.
  return `${family.toLowerCase()}-${randomBytes(18).toString('base64url')}`;
}

export function generateKey(family: KeyFamily): GeneratedKey {
  const kid = newKid(family);
  let pair;
  let alg: string | undefined;
  switch (family) {
    case 'EdDSA':
      pair = generateKeyPairSync('ed25519');
      alg = 'EdDSA';
      break;
    case 'ES256':
      pair = generateKeyPairSync('ec', { namedCurve: 'P-256' });
      alg = 'ES256';
      break;
    case 'RSA':
      pair = generateKeyPairSync('rsa', { modulusLength: 2048 });
      alg = undefined; // one RSA key signs RS256 and PS256
      break;
  }
  const extra = { kid, use: 'sig', ...(alg ? { alg } : {}) };
  return {
    kid,
    family,
    publicJwk: { ...pair.publicKey.export({ format: 'jwk' }), ...extra },
    privateJwk: { ...pair.privateKey.export({ format: 'jwk' }), ...extra },
  };
}
