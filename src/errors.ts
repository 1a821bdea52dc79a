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

/** One bad field of a service's input, named as the service names it (`tokenEndpoint`, `claims.sub`, `scopes.0`). */
export interface FieldProblem {
  field: string;
  problem: string;
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

  /** The message with each field called by `name`. */
  describe(name: (field: string) => string): string {
    return `${this.subject}${this.fields.map((f) => `${name(f.field)}: ${f.problem}`).join('; ')}`;
  }
}

export const invalidField = (field: string, problem: string, subject?: string) => new InvalidFieldsError([{ field, problem }], subject);
