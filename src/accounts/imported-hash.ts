import { parseArgon2Hash } from './password-hasher.js';

/**
 * Password hashes brought from another identity provider (`latchkey user import`): Keycloak (argon2
 * since 24), Logto (argon2i) and Auth0 (bcrypt, in its bulk export) keep them in one of two forms, which a
 * user's first sign-in here verifies and then replaces with an argon2id hash at this server's cost
 * (UserService.verifyPassword's rehash).
 *
 * - argon2 (argon2id, argon2i or argon2d) as a PHC string: `$argon2id$v=19$m=19456,t=2,p=1$salt$hash`;
 * - bcrypt in modular crypt form: `$2a$`, `$2b$` or `$2y$`, a two-digit cost, then 53 characters of
 *   salt and hash.
 *
 * A hash whose verification would cost more than these bounds is refused at import: every sign-in of
 * that user, and every guess at its password, would spend that much of the server.
 */
export const IMPORT_LIMITS = {
  /** argon2 memory, KiB (1 GiB). */
  argon2MaxMemoryKiB: 1_048_576,
  /** argon2 passes. */
  argon2MaxTimeCost: 16,
  /** argon2 lanes. */
  argon2MaxParallelism: 16,
  /** bcrypt cost (2^14 rounds: about 1.5 s for one verification in the hashing helper). */
  bcryptMaxCost: 14,
  bcryptMinCost: 4,
} as const;

export type ImportedHashKind = 'argon2' | 'bcrypt';

const BCRYPT = /^\$2[aby]\$(\d{2})\$[./A-Za-z0-9]{53}$/;

/** True for a bcrypt hash in modular crypt form (whatever its cost). */
export const isBcryptHash = (hash: string): boolean => BCRYPT.test(hash);

/**
 * The kind of an importable hash, or why it is not one (a sentence naming what is wrong, for the
 * operator; never the hash itself).
 */
export function classifyImportedHash(hash: string): { kind: ImportedHashKind } | { problem: string } {
  const bcrypt = BCRYPT.exec(hash);
  if (bcrypt) {
    const cost = Number(bcrypt[1]);
    if (cost < IMPORT_LIMITS.bcryptMinCost || cost > IMPORT_LIMITS.bcryptMaxCost) {
      return { problem: `is a bcrypt hash of cost ${cost}; importable costs are ${IMPORT_LIMITS.bcryptMinCost} to ${IMPORT_LIMITS.bcryptMaxCost}` };
    }
    return { kind: 'bcrypt' };
  }
  const argon2 = parseArgon2Hash(hash);
  if (argon2) {
    if (argon2.memoryCost > IMPORT_LIMITS.argon2MaxMemoryKiB) return { problem: `is an argon2 hash with m=${argon2.memoryCost} KiB; at most ${IMPORT_LIMITS.argon2MaxMemoryKiB} can be imported` };
    if (argon2.timeCost < 1 || argon2.timeCost > IMPORT_LIMITS.argon2MaxTimeCost) return { problem: `is an argon2 hash with t=${argon2.timeCost}; 1 to ${IMPORT_LIMITS.argon2MaxTimeCost} can be imported` };
    if (argon2.parallelism < 1 || argon2.parallelism > IMPORT_LIMITS.argon2MaxParallelism) return { problem: `is an argon2 hash with p=${argon2.parallelism}; 1 to ${IMPORT_LIMITS.argon2MaxParallelism} can be imported` };
    if (argon2.memoryCost < 8 * argon2.parallelism) return { problem: `is an argon2 hash with m=${argon2.memoryCost} KiB, less than argon2's minimum of 8 KiB per lane` };
    return { kind: 'argon2' };
  }
  if (/^\$(2[a-z]?|argon2[a-z]*)\$/.test(hash)) return { problem: 'looks like a bcrypt or argon2 hash but is malformed' };
  return { problem: 'is not an argon2 (PHC string, "$argon2id$v=19$m=...") or bcrypt ("$2b$10$...") hash' };
}
