import { ProblemError } from './problem.js';

/**
 * Opaque cursors: the position after the last item of a page, base64url-encoded JSON. Clients pass
 * them back unchanged; anything else is a 400 that names the `cursor` parameter.
 */
export function encodeCursor(position: Record<string, string | number>): string {
  return Buffer.from(JSON.stringify(position), 'utf8').toString('base64url');
}

export function decodeCursor<T extends Record<string, string | number>>(cursor: string, keys: Array<keyof T & string>): T {
  const bad = () => new ProblemError('invalid_input', 'query.cursor: not a cursor returned by this API (pass next_cursor back unchanged)', 400, [{ field: 'query.cursor', message: 'not a cursor returned by this API' }]);
  let value: unknown;
  try {
    value = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8'));
  } catch {
    throw bad();
  }
  if (!value || typeof value !== 'object' || Array.isArray(value)) throw bad();
  for (const k of keys) {
    const v = (value as Record<string, unknown>)[k];
    if (typeof v !== 'string' && typeof v !== 'number') throw bad();
  }
  return value as T;
}
