import type { Context } from 'koa';
import type { z } from 'zod';
import { InvalidFieldsError, LatchkeyError } from '../errors.js';
import { statusOf } from '../server/http-errors.js';

/** One invalid field of a request, by its JSON path (`body.domains[1]`, `query.limit`). */
export interface FieldError {
  field: string;
  message: string;
}

/** An admin API error, answered as RFC 9457 problem details. */
export class ProblemError extends LatchkeyError {
  constructor(
    code: string,
    message: string,
    status: number,
    readonly fields: FieldError[] = [],
  ) {
    super(code, message, status);
  }
}

/** Turns zod issues into a 400 that names every bad field. */
export function invalidFields(where: 'body' | 'query' | 'path', error: z.ZodError): ProblemError {
  const fields = error.issues.map((issue) => {
    const path = issue.path.reduce<string>((acc, part) => (typeof part === 'number' ? `${acc}[${part}]` : `${acc}.${String(part)}`), where);
    return { field: path, message: issue.message };
  });
  const summary = fields.map((f) => `${f.field}: ${f.message}`).join('; ');
  return new ProblemError('invalid_input', `invalid request ${where}: ${summary}`, 400, fields);
}

/**
 * The body path of a service's field, from the body field of each top-level one (`names`, by default
 * the same name): `redirectUris.1` with `{ redirectUris: 'redirect_uris' }` is `redirect_uris[1]`.
 */
export const bodyPathOf =
  (names: Record<string, string>) =>
  (field: string): string => {
    const [head, ...rest] = field.split('.');
    return rest.reduce((path, part) => (/^\d+$/.test(part) ? `${path}[${part}]` : `${path}.${part}`), names[head] ?? head);
  };

/**
 * Runs `fn`; a service's complaint about fields of its input (InvalidFieldsError) becomes a 400 naming the
 * request's body fields (`bodyPath`, from the service's field name, e.g. `tokenEndpoint` to
 * `token_endpoint`), in the message and in `errors`, as a schema refusal does.
 */
export async function namingBodyFields<T>(bodyPath: (field: string) => string, fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    if (!(err instanceof InvalidFieldsError)) throw err;
    const name = (field: string) => `body.${bodyPath(field)}`;
    throw new ProblemError(err.code, err.describe(name), err.status, err.named(name).map((f) => ({ field: f.field, message: f.problem })));
  }
}

const TITLES: Record<number, string> = {
  400: 'Bad Request',
  401: 'Unauthorized',
  403: 'Forbidden',
  404: 'Not Found',
  405: 'Method Not Allowed',
  409: 'Conflict',
  413: 'Content Too Large',
  415: 'Unsupported Media Type',
  500: 'Internal Server Error',
};

/** Writes an error as application/problem+json (RFC 9457) with our stable code and the bad fields. */
export function sendProblem(ctx: Context, err: unknown): void {
  // the same mapping from errors to statuses and codes as every other answer (src/server/http-errors.ts)
  const { status, code, message: detail, expose } = statusOf(err);
  if (!expose) ctx.state.log?.error({ err }, 'unhandled admin API error');
  const fields = err instanceof ProblemError ? err.fields : [];
  ctx.status = status;
  ctx.type = 'application/problem+json';
  ctx.set('Cache-Control', 'no-store');
  if (status === 401) ctx.set('WWW-Authenticate', `Bearer realm="latchkey-admin", error="invalid_token", error_description="${detail.replace(/["\\]/g, '')}"`);
  ctx.body = {
    type: `https://latchkey.dev/problems/${code}`,
    title: TITLES[status] ?? 'Error',
    status,
    code,
    detail,
    ...(fields.length ? { errors: fields } : {}),
  };
}
