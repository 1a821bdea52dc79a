import type { FieldError } from './problem.js';

const MESSAGE = 'must not contain NUL characters (U+0000)';
const SURROGATE_MESSAGE = 'must be well-formed Unicode: it holds an unpaired surrogate (U+D800 to U+DFFF)';
// with the u flag a surrogate pair is one code point, so this matches only a surrogate without its pair
const LONE_SURROGATE = /[\uD800-\uDFFF]/u;

/** What is wrong with a string the storage cannot hold as it is, or undefined. */
function problemOf(text: string): string | undefined {
  if (text.includes('\u0000')) return MESSAGE;
  // JSON may spell one ("\ud800"); stored as UTF-8 it becomes U+FFFD, so what is kept is not what was sent
  if (LONE_SURROGATE.test(text)) return SURROGATE_MESSAGE;
  return undefined;
}

/**
 * Every string of a request part (path parameters, query, JSON body; keys as well as values) that holds
 * a NUL character or an unpaired surrogate, by its field path. PostgreSQL's text cannot hold a NUL at all
 * (every such id, email, name or query reached the database as a server error); an unpaired surrogate
 * was stored as U+FFFD, another value than the one sent. No admin API value needs either.
 */
export function nulFields(where: 'path' | 'query' | 'body', value: unknown): FieldError[] {
  const found: FieldError[] = [];
  const walk = (v: unknown, at: string) => {
    if (typeof v === 'string') {
      const problem = problemOf(v);
      if (problem) found.push({ field: at, message: problem });
    } else if (Array.isArray(v)) {
      v.forEach((item, i) => walk(item, `${at}[${i}]`));
    } else if (v && typeof v === 'object') {
      for (const [key, item] of Object.entries(v)) {
        const problem = problemOf(key);
        if (problem) found.push({ field: `${at}.${JSON.stringify(key)}`, message: `the key ${problem}` });
        else walk(item, `${at}.${key}`);
      }
    }
  };
  walk(value, where);
  return found;
}
