import type { FieldError } from './problem.js';

const MESSAGE = 'must not contain NUL characters (U+0000)';

/**
 * Every string of a request part (path parameters, query, JSON body; keys as well as values) that holds
 * a NUL character, by its field path. PostgreSQL's text cannot hold one at all (every such id, email,
 * name or query reached the database as a server error) and no admin API value needs one.
 */
export function nulFields(where: 'path' | 'query' | 'body', value: unknown): FieldError[] {
  const found: FieldError[] = [];
  const walk = (v: unknown, at: string) => {
    if (typeof v === 'string') {
      if (v.includes('\u0000')) found.push({ field: at, message: MESSAGE });
    } else if (Array.isArray(v)) {
      v.forEach((item, i) => walk(item, `${at}[${i}]`));
    } else if (v && typeof v === 'object') {
      for (const [key, item] of Object.entries(v)) {
        if (key.includes('\u0000')) found.push({ field: `${at}.${JSON.stringify(key)}`, message: `the key ${MESSAGE}` });
        else walk(item, `${at}.${key}`);
      }
    }
  };
  walk(value, where);
  return found;
}
