import { createCipheriv, createDecipheriv, createHash, hkdfSync, randomBytes, timingSafeEqual } from 'node:crypto';

/** Derives a purpose-bound 32-byte key from the master secret (HKDF-SHA256). */
export function deriveKey(secret: string, purpose: string): Buffer {
  return Buffer.from(hkdfSync('sha256', Buffer.from(secret, 'utf8'), Buffer.from('latchkey/v1'), Buffer.from(purpose), 32));
}

/** A sealed value that this secret cannot open: it was sealed under another LATCHKEY_SECRET (or altered). */
export class SecretMismatchError extends Error {
  constructor() {
    super('cannot decrypt a stored secret: LATCHKEY_SECRET differs from the one it was encrypted with');
    this.name = 'SecretMismatchError';
  }
}

/**
 * AES-256-GCM encryption for secrets at rest (signing keys, later TOTP seeds and upstream client secrets).
 * Format: `v1.<iv>.<tag>.<ciphertext>` in base64url; the associated data binds a ciphertext to its row.
 */
export class SecretBox {
  readonly #key: Buffer;

  constructor(secret: string) {
    this.#key = deriveKey(secret, 'encryption-at-rest');
  }

  seal(plaintext: string, associatedData: string): string {
    const iv = randomBytes(12);
    const cipher = createCipheriv('aes-256-gcm', this.#key, iv);
    cipher.setAAD(Buffer.from(associatedData, 'utf8'));
    const body = Buffer.concat([cipher.update(plaintext, 'utf8'), cipher.final()]);
    return ['v1', iv.toString('base64url'), cipher.getAuthTag().toString('base64url'), body.toString('base64url')].join('.');
  }

  open(sealed: string, associatedData: string): string {
    const [version, iv, tag, body] = sealed.split('.');
    if (version !== 'v1' || !iv || !tag || body === undefined) throw new Error('sealed value has an unknown format');
    const decipher = createDecipheriv('aes-256-gcm', this.#key, Buffer.from(iv, 'base64url'));
    decipher.setAAD(Buffer.from(associatedData, 'utf8'));
    decipher.setAuthTag(Buffer.from(tag, 'base64url'));
    try {
      return Buffer.concat([decipher.update(Buffer.from(body, 'base64url')), decipher.final()]).toString('utf8');
    } catch {
      throw new SecretMismatchError();
    }
  }
}

/** SHA-256 digest for high-entropy secrets (client secrets): slow hashing adds nothing for 256 random bits. */
export function hashHighEntropySecret(secret: string): string {
  return `sha256:${createHash('sha256').update(secret, 'utf8').digest('base64url')}`;
}

export function verifyHighEntropySecret(stored: string, candidate: string): boolean {
  const expected = Buffer.from(stored, 'utf8');
  const actual = Buffer.from(hashHighEntropySecret(candidate), 'utf8');
  return expected.length === actual.length && timingSafeEqual(expected, actual);
}
