/** An error meant for the person who caused it: a stable code, a message naming what was wrong. */
export class LatchkeyError extends Error {
  constructor(
    readonly code: string,
    message: string,
    readonly status = 400,
  ) {
    super(message);
    this.name = 'LatchkeyError';
  }
}

export const notFound = (what: string) => new LatchkeyError('not_found', `${what} does not exist`, 404);
export const invalid = (message: string) => new LatchkeyError('invalid_input', message, 400);
export const conflict = (message: string) => new LatchkeyError('conflict', message, 409);

/** How a front end names a field of a service's input: `redirectUris.1` is `--redirect-uri` to the CLI, `redirect_uris[1]` to the admin API. */
export type FieldNaming = (field: string) => string;

/**
 * One bad field of a service's input, named as the service names it (`tokenEndpoint`, `claims.sub`,
 * `scopes.0`). A problem that mentions another field is a function of the naming, so that it too reads
 * as the caller typed it (`(name) => \`needs ${name('grants')}\``).
 */
export interface FieldProblem {
  field: string;
  problem: string | ((name: FieldNaming) => string);
}

/**
 * Invalid input whose problems belong to fields of a service's input. Its message names them as the
 * service does; the CLI names them by its flags and the admin API by its body fields (`describe`), so an
 * operator reads the name they typed.
 */
export class InvalidFieldsError extends LatchkeyError {
  constructor(
    readonly fields: FieldProblem[],
    /** What the fields belong to, before them in the message (e.g. `connection "okta": `). */
    readonly subject = '',
  ) {
    super('invalid_input', '', 400);
    this.message = this.describe((field) => field);
  }

  /** Each problem with its field, and the fields it mentions, called by `name`. */
  named(name: FieldNaming): Array<{ field: string; problem: string }> {
    return this.fields.map((f) => ({ field: name(f.field), problem: typeof f.problem === 'function' ? f.problem(name) : f.problem }));
  }

  /** The message with each field called by `name`. */
  describe(name: FieldNaming): string {
    return `${this.subject}${this.named(name).map((f) => `${f.field}: ${f.problem}`).join('; ')}`;
  }
}

export const invalidField = (field: string, problem: FieldProblem['problem'], subject?: string) => new InvalidFieldsError([{ field, problem }], subject);
