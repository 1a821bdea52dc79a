/** The longest name a passkey or security key may be given. */
export const MAX_CREDENTIAL_NAME = 64;
const CONTROL = /[\u0000-\u001f\u007f-\u009f\u2028\u2029]/;
// bidirectional overrides and isolates: they make a name display as other text than it holds ("Phone" shown for "enohP")
const BIDI = /[\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]/u;
// a name of only format characters (zero-width spaces, joiners) and spaces shows as nothing
const INVISIBLE = /^[\p{Cf}\p{Z}\s]*$/u;

/**
 * What is wrong with a (trimmed) name for a passkey, or undefined when it is fine. The one rule for
 * every place a name is given: the account page (rename, add) and the sign-in pages (the passkey offer,
 * a security key set up as second factor).
 */
export function credentialNameProblem(name: string): string | undefined {
  if (!name) return 'Give the passkey a name.';
  if (name.length > MAX_CREDENTIAL_NAME) return `A passkey name can be at most ${MAX_CREDENTIAL_NAME} characters.`;
  if (CONTROL.test(name)) return 'A passkey name cannot contain control characters.';
  if (BIDI.test(name)) return 'A passkey name cannot contain text-direction control characters.';
  if (INVISIBLE.test(name)) return 'Give the passkey a name with visible characters.';
  return undefined;
}

/**
 * The optional name posted with a new credential (JSON `name`): undefined when none was given (the
 * authenticator's name is used), the trimmed name when it is fine, or the problem to report.
 */
export function postedCredentialName(value: unknown): { name?: string; problem?: string } {
  if (value === undefined || value === null) return {};
  if (typeof value !== 'string') return { problem: 'The passkey name must be text.' };
  const name = value.trim();
  if (!name) return {};
  const problem = credentialNameProblem(name);
  return problem ? { problem } : { name };
}
