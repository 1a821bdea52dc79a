import { CompactSign, compactVerify, importJWK } from 'jose';
import { describe, expect, it } from 'vitest';
import { generateKey } from '../../src/keys/generate.js';
import { NodeSigningKey } from '../../src/keys/node-signing-key.js';

const data = new TextEncoder().encode('eyJhbGciOiJFZERTQSJ9.eyJzdWIiOiJ1c2VyIn0');
const b64 = (bytes: Uint8Array) => Buffer.from(bytes).toString('base64url');

describe('NodeSigningKey (src/keys/node-signing-key.ts)', () => {
  for (const [family, alg] of [['EdDSA', 'EdDSA'], ['ES256', 'ES256']] as const) {
    it(`${family}: signs what jose verifies with the public JWK, and publishes only public parts`, async () => {
      const generated = generateKey(family);
      const key = NodeSigningKey.forProvider(generated.privateJwk as Record<string, unknown>);
      expect(key).toBeInstanceOf(NodeSigningKey);
      const signer = key as NodeSigningKey;
      expect(signer.kid).toBe(generated.kid);
      expect(signer.alg).toBe(alg);
      expect(signer.use).toBe('sig');
      expect({ kty: signer.kty, crv: signer.crv, x: signer.x, y: signer.y }).toEqual({
        kty: generated.publicJwk.kty,
        crv: generated.publicJwk.crv,
        x: generated.publicJwk.x,
        y: (generated.publicJwk as { y?: string }).y,
      });
      expect(signer.keyObject().type).toBe('public');
      expect(JSON.stringify(signer.keyObject().export({ format: 'jwk' }))).not.toContain('"d"');

      // a compact JWS assembled from sign(), verified by jose against the published public key
      const header = b64(new TextEncoder().encode(JSON.stringify({ alg, kid: generated.kid })));
      const payload = b64(new TextEncoder().encode(JSON.stringify({ sub: 'user-1' })));
      const signature = signer.sign(new TextEncoder().encode(`${header}.${payload}`));
      expect(signature.length).toBe(64); // Ed25519, and ES256 as r || s (not DER)
      const publicKey = await importJWK(generated.publicJwk as any, alg);
      const verified = await compactVerify(`${header}.${payload}.${b64(signature)}`, publicKey);
      expect(JSON.parse(new TextDecoder().decode(verified.payload))).toEqual({ sub: 'user-1' });

      // a signature over other bytes does not verify
      const other = signer.sign(data);
      await expect(compactVerify(`${header}.${payload}.${b64(other)}`, publicKey)).rejects.toThrow(/signature verification failed/);
    });
  }

  it('Ed25519 gives the same signature as jose with the private JWK (the bytes tokens had before)', async () => {
    const generated = generateKey('EdDSA');
    const signer = NodeSigningKey.forProvider(generated.privateJwk as Record<string, unknown>) as NodeSigningKey;
    const viaJose = await new CompactSign(data).setProtectedHeader({ alg: 'EdDSA' }).sign(await importJWK(generated.privateJwk as any, 'EdDSA'));
    const [h, p, s] = viaJose.split('.');
    expect(b64(signer.sign(new TextEncoder().encode(`${h}.${p}`)))).toBe(s);
  });

  it('leaves RSA keys as JWKs: one RSA key signs RS256 and PS256, and sign() is not told which', () => {
    const generated = generateKey('RSA');
    expect(NodeSigningKey.forProvider(generated.privateJwk as Record<string, unknown>)).toBe(generated.privateJwk);
  });
});
