import { createPrivateKey, createPublicKey, sign, type KeyObject } from 'node:crypto';
import { ExternalSigningKey } from 'oidc-provider';

/**
 * A realm's Ed25519 or P-256 signing key handed to node-oidc-provider as an `ExternalSigningKey`
 * (its `features.externalSigningSupport`), so that ID tokens and JWT access tokens are signed with
 * node:crypto on the spot.
 *
 * Why: given a private JWK, node-oidc-provider signs through jose, which on Node uses WebCrypto: every
 * signature is a job on libuv's thread pool (a thread woken, the result handed back as a promise). An
 * Ed25519 signature costs about 75–80 µs of CPU that way against 30–40 µs with `crypto.sign`, and the
 * pool is not involved at all (bench/README.md). Signatures are the same bytes either way: Ed25519 is
 * deterministic, and ES256 is the IEEE P1363 form (r || s) JWS requires.
 *
 * RSA keys stay private JWKs: one RSA key serves RS256 and PS256, and `sign(data)` is not told which.
 */
export class NodeSigningKey extends ExternalSigningKey {
  readonly #private: KeyObject;
  readonly #public: KeyObject;
  readonly #ec: boolean;

  private constructor(jwk: Record<string, unknown>, privateKey: KeyObject) {
    super();
    this.#private = privateKey;
    this.#public = createPublicKey(privateKey);
    this.#ec = jwk.kty === 'EC';
    if (typeof jwk.kid === 'string') (this as { kid?: string }).kid = jwk.kid;
    if (typeof jwk.alg === 'string') (this as { alg?: string }).alg = jwk.alg;
  }

  /** The key node-oidc-provider gets for a private JWK: a NodeSigningKey where it can be one, else the JWK. */
  static forProvider(jwk: Record<string, unknown>): NodeSigningKey | Record<string, unknown> {
    const ed25519 = jwk.kty === 'OKP' && jwk.crv === 'Ed25519' && (jwk.alg === undefined || jwk.alg === 'EdDSA');
    const p256 = jwk.kty === 'EC' && jwk.crv === 'P-256' && (jwk.alg === undefined || jwk.alg === 'ES256');
    if (!ed25519 && !p256) return jwk;
    return new NodeSigningKey(jwk, createPrivateKey({ key: jwk as any, format: 'jwk' }));
  }

  override keyObject(): KeyObject {
    return this.#public;
  }

  override sign(data: Uint8Array): Uint8Array {
    return this.#ec ? sign('sha256', data, { key: this.#private, dsaEncoding: 'ieee-p1363' }) : sign(null, data, this.#private);
  }
}
