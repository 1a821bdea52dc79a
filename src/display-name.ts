import { invalidField } from './errors.js';

/**
 * The one rule for every human-readable name a person or an upstream gives: client names, realm,
 * tenant and connection display names, user names, passkey names. These are shown on the sign-in,
 * consent and account pages, so a name must show as the text it holds.
 */

/** The longest display name (client, realm, tenant, connection, user); passkeys have their own, shorter limit. */
export const MAX_DISPLAY_NAME = 200;

// C0 controls (NUL, line breaks, escape), DEL, C1 controls, and the line/paragraph separators
const CONTROL = /[\p{Cc}\u2028\u2029]/u;
// bidirectional marks, embeddings, overrides and isolates: they make a name display as other text than
// it holds (a client "Bank\u202Eelgoog" shows as "Bankgoogle")
const BIDI = /[\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]/u;
// a name of only format characters (zero-width spaces, joiners) and spaces shows as nothing
const INVISIBLE = /^[\p{Cf}\p{Z}\s]*$/u;

export type NameProblem = 'missing' | 'too_long' | 'control' | 'bidi' | 'invisible';

/** What is wrong with a trimmed name, or undefined when it is fine. */
export function nameProblem(name: string, max: number = MAX_DISPLAY_NAME): NameProblem | undefined {
  if (!name) return 'missing';
  if (name.length > max) return 'too_long';
  if (CONTROL.test(name)) return 'control';
  if (BIDI.test(name)) return 'bidi';
  if (INVISIBLE.test(name)) return 'invisible';
  return undefined;
}

/** The problem as the end of a sentence after the field's name ("name: must not contain ..."). */
export function describeNameProblem(problem: NameProblem, max: number = MAX_DISPLAY_NAME): string {
  switch (problem) {
    case 'missing':
      return 'is required';
    case 'too_long':
      return `must be at most ${max} characters`;
    case 'control':
      return 'must not contain control characters (line breaks, tabs, NUL and the like)';
    case 'bidi':
      return 'must not contain text-direction control characters (U+061C, U+200E, U+200F, U+202A to U+202E, U+2066 to U+2069)';
    case 'invisible':
      return 'must contain visible characters';
  }
}

/**
 * The trimmed name, or an InvalidFieldsError naming `field` (as the service calls it; the CLI and the
 * admin API rename it to their flag or body field). Anything but text counts as missing.
 */
export function checkedName(value: unknown, field: string, options: { max?: number; subject?: string } = {}): string {
  const max = options.max ?? MAX_DISPLAY_NAME;
  const name = typeof value === 'string' ? value.trim() : '';
  const problem = nameProblem(name, max);
  if (problem) throw invalidField(field, describeNameProblem(problem, max), options.subject);
  return name;
}

/** Like `checkedName` for a name that may be left out: undefined (or null) and blank text give null. */
export function optionalName(value: unknown, field: string, options: { max?: number; subject?: string } = {}): string | null {
  if (value === undefined || value === null || (typeof value === 'string' && !value.trim())) return null;
  return checkedName(value, field, options);
}

/** A name from elsewhere (an upstream identity provider's profile): kept when fine, dropped otherwise. */
export function acceptableName(value: unknown, max: number = MAX_DISPLAY_NAME): string | undefined {
  if (typeof value !== 'string') return undefined;
  const name = value.trim();
  return nameProblem(name, max) ? undefined : name;
}
