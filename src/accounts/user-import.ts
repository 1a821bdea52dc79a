import { EMAIL_ADDRESS as EMAIL } from './email-address.js';
import { describeNameProblem, nameProblem } from '../display-name.js';
import { normalizeEmail } from '../db/users-repo.js';
import { LatchkeyError } from '../errors.js';
import { classifyImportedHash, type ImportedHashKind } from './imported-hash.js';

/**
 * Bulk user import (`latchkey user import`): users moved from another identity provider, with the
 * password hashes it kept (src/accounts/imported-hash.ts), so nobody has to choose a new password.
 *
 * The file is JSON Lines (one user object a line; blank lines are skipped), one JSON array of user
 * objects, or what `latchkey user export` prints (a document whose `users` is that array). Each user:
 *   `email` (required), `name`, `email_verified` (default false: the address was not confirmed here),
 *   `disabled` (default false), `password_hash` (argon2 PHC string or bcrypt; without it the user signs
 *   in with a reset link, a passkey enrolled after an emailed link, or an upstream connection).
 *
 * The whole file is checked before anything is written: one bad entry refuses the import, naming every
 * problem with its line (or entry) number, so a fixed file can be imported again from the start. Users
 * whose address already has an account in the realm are skipped and listed, never changed.
 */
export interface ImportUser {
  /** Where it was in the file: "line 3" (JSON Lines) or "entry 3" (a JSON array). */
  where: string;
  email: string;
  name: string | null;
  emailVerified: boolean;
  disabled: boolean;
  passwordHash: string | null;
  hashKind: ImportedHashKind | null;
}

export const IMPORT_FIELDS = ['email', 'name', 'email_verified', 'disabled', 'password_hash'] as const;

/** At most this many problems are listed in the refusal (the count says how many there were). */
const MAX_LISTED_PROBLEMS = 20;

/** Users in one import at most (a bigger migration is split into several files). */
export const MAX_IMPORT_USERS = 100_000;

interface Entry {
  where: string;
  value?: unknown;
  syntax?: string;
}

function entriesOf(text: string): Entry[] {
  const body = text.replace(/^\uFEFF/, '');
  // what `latchkey user export` prints: one document whose `users` are the entries
  if (/^\s*\{/.test(body)) {
    let doc: unknown;
    try {
      doc = JSON.parse(body);
    } catch {
      doc = undefined; // JSON Lines: read line by line below
    }
    const users = (doc as { users?: unknown } | undefined)?.users;
    if (Array.isArray(users)) return users.map((value, i) => ({ where: `users[${i}]`, value }));
  }
  if (/^\s*\[/.test(body)) {
    let parsed: unknown;
    try {
      parsed = JSON.parse(body);
    } catch (err) {
      return [{ where: 'the file', syntax: `is not valid JSON (${(err as Error).message})` }];
    }
    if (!Array.isArray(parsed)) return [{ where: 'the file', syntax: 'is not a JSON array' }];
    return parsed.map((value, i) => ({ where: `entry ${i + 1}`, value }));
  }
  const entries: Entry[] = [];
  body.split(/\r?\n/).forEach((line, i) => {
    if (!line.trim()) return;
    try {
      entries.push({ where: `line ${i + 1}`, value: JSON.parse(line) });
    } catch (err) {
      entries.push({ where: `line ${i + 1}`, syntax: `is not valid JSON (${(err as Error).message})` });
    }
  });
  return entries;
}

/** Reads and checks an import file; throws `invalid_import` naming every problem when anything is wrong. */
export function parseUserImport(text: string): ImportUser[] {
  const problems: string[] = [];
  const users: ImportUser[] = [];
  const seen = new Map<string, string>();
  const entries = entriesOf(text);
  if (entries.length > MAX_IMPORT_USERS) throw new LatchkeyError('invalid_import', `the file holds ${entries.length} users; at most ${MAX_IMPORT_USERS} can be imported at once: split it`, 400);
  for (const entry of entries) {
    const { where } = entry;
    if (entry.syntax) {
      problems.push(`${where} ${entry.syntax}`);
      continue;
    }
    const value = entry.value;
    if (typeof value !== 'object' || value === null || Array.isArray(value)) {
      problems.push(`${where}: a user must be a JSON object`);
      continue;
    }
    const record = value as Record<string, unknown>;
    const before = problems.length;
    const unknown = Object.keys(record).filter((k) => !(IMPORT_FIELDS as readonly string[]).includes(k));
    if (unknown.length) problems.push(`${where}: unknown field${unknown.length > 1 ? 's' : ''} ${unknown.map((k) => JSON.stringify(k)).join(', ')} (the fields are ${IMPORT_FIELDS.join(', ')})`);

    const email = typeof record.email === 'string' ? record.email.trim() : '';
    if (record.email === undefined) problems.push(`${where}: email is required`);
    else if (!email || !EMAIL.test(email) || email.length > 320) problems.push(`${where}: email ${JSON.stringify(record.email)} is not a valid email address`);
    else {
      const first = seen.get(normalizeEmail(email));
      if (first) problems.push(`${where}: email ${email} is already in the file (${first})`);
      else seen.set(normalizeEmail(email), where);
    }

    let name: string | null = null;
    if (record.name !== undefined && record.name !== null) {
      if (typeof record.name !== 'string') problems.push(`${where}: name must be a string`);
      else if (record.name.trim()) {
        const problem = nameProblem(record.name.trim());
        if (problem) problems.push(`${where}: name ${describeNameProblem(problem)}`);
        else name = record.name.trim();
      }
    }
    for (const flag of ['email_verified', 'disabled'] as const) {
      if (record[flag] !== undefined && typeof record[flag] !== 'boolean') problems.push(`${where}: ${flag} must be true or false`);
    }

    let passwordHash: string | null = null;
    let hashKind: ImportedHashKind | null = null;
    if (record.password_hash !== undefined && record.password_hash !== null) {
      if (typeof record.password_hash !== 'string') problems.push(`${where}: password_hash must be a string`);
      else {
        const found = classifyImportedHash(record.password_hash.trim());
        if ('problem' in found) problems.push(`${where}: password_hash ${found.problem}`);
        else {
          passwordHash = record.password_hash.trim();
          hashKind = found.kind;
        }
      }
    }
    if (problems.length > before) continue;
    users.push({ where, email, name, emailVerified: record.email_verified === true, disabled: record.disabled === true, passwordHash, hashKind });
  }
  if (problems.length) {
    const listed = problems.slice(0, MAX_LISTED_PROBLEMS).map((p) => `  ${p}`);
    const more = problems.length > MAX_LISTED_PROBLEMS ? [`  ... and ${problems.length - MAX_LISTED_PROBLEMS} more`] : [];
    throw new LatchkeyError('invalid_import', [`nothing was imported: ${problems.length} problem${problems.length > 1 ? 's' : ''} in the file`, ...listed, ...more].join('\n'), 400);
  }
  if (users.length === 0) throw new LatchkeyError('invalid_import', 'nothing was imported: the file holds no users', 400);
  return users;
}
