import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { projectRoot } from '../db/paths.js';

/**
 * Password rules after NIST SP 800-63B-4 (section 3.1.1.2): a minimum and maximum length counted in
 * Unicode code points, no composition rules, and a blocklist of commonly used, expected or
 * context-specific values.
 */

export interface PasswordLengthLimits {
  minLength: number;
  maxLength: number;
}

export interface PasswordContext {
  email?: string;
  realmName?: string;
}

/** NFKC-normalises a password; apply before hashing and before verifying so equivalent spellings match. */
export function normalizePassword(password: string): string {
  return password.normalize('NFKC');
}

let blocklist: Set<string> | undefined;

/** The bundled list of common passwords (lower-cased, NFKC), read on first use. */
function commonPasswords(): Set<string> {
  if (!blocklist) {
    const file = join(projectRoot(), 'resources', 'common-passwords.txt');
    const text = readFileSync(file, 'utf8');
    blocklist = new Set(
      text
        .split(/\r?\n/)
        .map((line) => line.trim().normalize('NFKC').toLowerCase())
        .filter((line) => line.length > 0),
    );
  }
  return blocklist;
}

const LEET: Record<string, string> = { '@': 'a', '4': 'a', '8': 'b', '3': 'e', '6': 'g', '0': 'o', '$': 's', '5': 's', '7': 't', '!': 'i', '|': 'l' };

/** Spellings of a candidate a guesser would also try: without spaces, without digits/symbols around a word, un-leeted. */
function guessForms(lowered: string): string[] {
  const forms = new Set<string>();
  const compact = lowered.replace(/\s+/gu, '');
  forms.add(lowered);
  forms.add(compact);
  // "monkey!!2024" -> "monkey": a common word with digits or symbols stuck on either end.
  const core = compact.replace(/^[^\p{L}]+|[^\p{L}]+$/gu, '');
  if (core.length > 0) forms.add(core);
  for (const form of [...forms]) {
    for (const one of ['i', 'l']) {
      forms.add([...form].map((c) => (c === '1' ? one : (LEET[c] ?? c))).join(''));
    }
  }
  return [...forms];
}

/** True when the password, or an obvious decoration of it, is on the bundled blocklist. */
export function isCommonPassword(password: string): boolean {
  const list = commonPasswords();
  return guessForms(normalizePassword(password).toLowerCase()).some((form) => list.has(form));
}

/** Strips everything but letters and digits, for comparing against context words. */
const letters = (s: string): string => s.normalize('NFKC').toLowerCase().replace(/[^\p{L}\p{N}]+/gu, '');

/** True when the password is `word`, or `word` with only digits and symbols added around it. */
function derivedFrom(lowered: string, word: string | undefined): boolean {
  const w = word ? letters(word) : '';
  if (w.length < 3) return false;
  const compact = letters(lowered);
  const core = lowered.replace(/^[^\p{L}]+|[^\p{L}]+$/gu, '');
  return compact === w || letters(core) === w;
}

/** The password is one short unit (1 to 4 code points) repeated, such as "aaaaaaaa" or "abcabcabc". */
function repeatedUnit(codePoints: string[]): number | null {
  for (let unit = 1; unit <= 4 && unit * 2 <= codePoints.length; unit++) {
    if (codePoints.length % unit !== 0) continue;
    if (codePoints.every((c, i) => c === codePoints[i % unit])) return unit;
  }
  return null;
}

/**
 * Checks a new password; returns null when acceptable, otherwise a message saying what is wrong.
 * Length is counted in Unicode code points after NFKC normalisation.
 */
export function checkPassword(password: string, opts: PasswordLengthLimits, context: PasswordContext = {}): string | null {
  const normalized = normalizePassword(password);
  const codePoints = [...normalized];
  if (codePoints.length < opts.minLength) return `Password must be at least ${opts.minLength} characters.`;
  if (codePoints.length > opts.maxLength) return `Password must be at most ${opts.maxLength} characters.`;

  const unit = repeatedUnit(codePoints);
  if (unit === 1) return 'Password must not be a single repeated character.';
  if (unit !== null) return 'Password must not be a short repeated pattern.';

  const lowered = normalized.toLowerCase();
  const email = context.email?.trim();
  if (email) {
    if (letters(lowered) === letters(email)) return 'Password must not be your email address.';
    const at = email.lastIndexOf('@');
    const local = at > 0 ? email.slice(0, at) : email;
    if (derivedFrom(lowered, local)) return 'Password must not be based on your email address.';
  }
  if (derivedFrom(lowered, context.realmName)) return 'Password must not be based on the name of this service.';

  if (isCommonPassword(normalized)) return 'This password is too common; choose a different one.';
  return null;
}
