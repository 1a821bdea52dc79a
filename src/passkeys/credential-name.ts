import { nameProblem } from '../display-name.js';

/** The longest name a passkey or security key may be given. */
export const MAX_CREDENTIAL_NAME = 64;

const SENTENCES = {
  missing: 'Give the passkey a name.',
  too_long: `A passkey name can be at most ${MAX_CREDENTIAL_NAME} characters.`,
  control: 'A passkey name cannot contain control characters.',
  bidi: 'A passkey name cannot contain text-direction control characters.',
  invisible: 'Give the passkey a name with visible characters.',
} as const;

/**
 * What is wrong with a (trimmed) name for a passkey, or undefined when it is fine. The shared name rule
 * (src/display-name.ts) with the passkey's own limit, for every place a name is given: the account page
 * (rename, add), the sign-in pages (the passkey offer, a security key set up as second factor) and the
 * passkey service.
 */
export function credentialNameProblem(name: string): string | undefined {
  const problem = nameProblem(name, MAX_CREDENTIAL_NAME);
  return problem && SENTENCES[problem];
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
