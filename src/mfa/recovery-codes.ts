import { createHmac, randomBytes } from 'node:crypto';
import { factorsRepo } from '../db/factors-repo.js';
import type { Db } from '../db/knex.js';

/** 32 lower-case symbols without the look-alikes 0, 1, l and o: five random bits per character. */
export const RECOVERY_CODE_ALPHABET = 'abcdefghijkmnpqrstuvwxyz23456789';
/** Codes per generation. */
export const RECOVERY_CODE_COUNT = 10;
/** Three groups of four characters: 12 × 5 = 60 random bits. */
const GROUPS = 3;
const GROUP_LENGTH = 4;
const CODE_LENGTH = GROUPS * GROUP_LENGTH;
const VALID = new RegExp(`^[${RECOVERY_CODE_ALPHABET}]{${CODE_LENGTH}}$`);

/** The canonical form of a typed code: lower case, without spaces or dashes. */
export function normaliseRecoveryCode(code: string): string {
  return String(code ?? '')
    .toLowerCase()
    .replace(/[\s\-\u2010-\u2015]+/g, '');
}

function randomCode(): string {
  // 256 is a multiple of 32, so masking a random byte picks each symbol with equal probability.
  const bytes = randomBytes(CODE_LENGTH);
  let raw = '';
  for (const b of bytes) raw += RECOVERY_CODE_ALPHABET[b & 31];
  const groups: string[] = [];
  for (let i = 0; i < CODE_LENGTH; i += GROUP_LENGTH) groups.push(raw.slice(i, i + GROUP_LENGTH));
  return groups.join('-');
}

/**
 * Single-use recovery codes. Only HMAC-SHA256(key, normalised code) is stored, so a copy of the
 * database reveals no usable code; consuming one is an atomic conditional update.
 */
export class RecoveryCodeService {
  readonly #db: Db;
  readonly #key: Buffer;

  constructor(db: Db, hmacKey: Buffer) {
    if (!Buffer.isBuffer(hmacKey) || hmacKey.length < 16) throw new Error('the recovery code HMAC key must be at least 16 bytes');
    this.#db = db;
    this.#key = hmacKey;
  }

  /** Issues fresh codes (shown to the user once) and invalidates all earlier ones, in one transaction. */
  async generate(realmId: string, userId: string, now: number = Date.now()): Promise<string[]> {
    const codes = new Set<string>();
    while (codes.size < RECOVERY_CODE_COUNT) codes.add(randomCode());
    const list = [...codes];
    await factorsRepo.replaceRecoveryCodes(this.#db, realmId, userId, list.map((c) => this.#hash(normaliseRecoveryCode(c))), now);
    return list;
  }

  /** Uses up a code; true only if it was one of the user's unused codes and this call used it. */
  async consume(realmId: string, userId: string, code: string, now: number = Date.now()): Promise<boolean> {
    const normalised = normaliseRecoveryCode(code);
    if (!VALID.test(normalised)) return false;
    return factorsRepo.consumeRecoveryCode(this.#db, realmId, userId, this.#hash(normalised), now);
  }

  /** How many unused codes the user has left. */
  async remaining(realmId: string, userId: string): Promise<number> {
    return factorsRepo.countUnusedRecoveryCodes(this.#db, realmId, userId);
  }

  /** Deletes all of the user's codes (for when second factors are reset); returns how many. */
  async removeAll(realmId: string, userId: string): Promise<number> {
    return factorsRepo.deleteRecoveryCodes(this.#db, realmId, userId);
  }

  #hash(normalised: string): string {
    return createHmac('sha256', this.#key).update(normalised, 'utf8').digest('hex');
  }
}
