import { randomFillSync } from 'node:crypto';

/**
 * Random tokens (challenges, ids) from a pool of CSPRNG bytes: one `randomFillSync` per 4 KiB instead of
 * one per token. A single small `randomBytes` call costs 7-30 µs on the machines here (OpenSSL's DRBG
 * per call), about as much as a SQLite read; a passkey sign-in makes one per challenge. Every byte is
 * handed out once; node-oidc-provider's ids (nanoid) and Node's randomUUID pool the same way.
 */
const POOL_SIZE = 4096;
const pool = Buffer.allocUnsafe(POOL_SIZE);
let offset = POOL_SIZE;

/** `bytes` fresh random bytes (at most 1024) as base64url. */
export function randomToken(bytes = 32): string {
  if (!Number.isInteger(bytes) || bytes < 1 || bytes > 1024) throw new RangeError(`randomToken: bytes must be a whole number from 1 to 1024, got ${bytes}`);
  if (offset + bytes > POOL_SIZE) {
    randomFillSync(pool);
    offset = 0;
  }
  const token = pool.toString('base64url', offset, offset + bytes);
  // never hand the same bytes out twice, even if the pool were read again before a refill
  pool.fill(0, offset, offset + bytes);
  offset += bytes;
  return token;
}
