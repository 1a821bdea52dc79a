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
