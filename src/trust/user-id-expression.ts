import { LatchkeyError } from '../errors.js';

/**
 * User ID Expressions turn the claims of a trusted JWT into a realm user id.
 *
 * Syntax: literal text and `{claim.path}` placeholders, e.g. `{sub}`, `{team}|{additional_claims.other}`,
 * `{https://company.domain.com/claims.property}`. Literal text may not contain `{` or `}`. A path is
 * dot-separated, but a claim name may itself contain dots and slashes: at each object level the longest
 * key that equals the rest of the path, or is followed in it by a `.`, is taken (no backtracking).
 *
 * Only non-empty strings are accepted as values: a number, boolean, object, array, null or a missing
 * claim is an error naming the claim, so a computed id never has a hole in it.
 */

export const DEFAULT_USER_ID_EXPRESSION = '{sub}';
export const MAX_EXPRESSION_LENGTH = 500;
export const MAX_PREFIX_LENGTH = 100;
export const MAX_USER_ID_LENGTH = 1000;

export type ExpressionPart = { kind: 'text'; text: string } | { kind: 'claim'; path: string };

export interface UserIdExpression {
  source: string;
  parts: ExpressionPart[];
}

// eslint-disable-next-line no-control-regex
const CONTROL = /[\u0000-\u001f\u007f]/;

const malformed = (source: string, position: number, problem: string) =>
  new LatchkeyError('invalid_user_id_expression', `user id expression "${source}" is malformed at position ${position}: ${problem}`);

export const expressionFailed = (message: string) => new LatchkeyError('user_id_expression_failed', message, 401);

/** Parses an expression; a malformed one is an `invalid_user_id_expression` error naming the problem and position. */
export function parseUserIdExpression(source: string): UserIdExpression {
  if (typeof source !== 'string' || source.length === 0) {
    throw new LatchkeyError('invalid_user_id_expression', 'user id expression is empty: use at least one {claim}, e.g. {sub}');
  }
  if (source.length > MAX_EXPRESSION_LENGTH) {
    throw new LatchkeyError('invalid_user_id_expression', `user id expression is longer than ${MAX_EXPRESSION_LENGTH} characters`);
  }
  const parts: ExpressionPart[] = [];
  let text = '';
  let i = 0;
  while (i < source.length) {
    const ch = source[i]!;
    if (CONTROL.test(ch)) throw malformed(source, i, 'control characters are not allowed');
    if (ch === '}') throw malformed(source, i, '"}" without a matching "{"');
    if (ch !== '{') {
      text += ch;
      i++;
      continue;
    }
    const close = source.indexOf('}', i + 1);
    if (close === -1) throw malformed(source, i, '"{" is never closed with "}"');
    const nested = source.indexOf('{', i + 1);
    if (nested !== -1 && nested < close) throw malformed(source, nested, '"{" inside a placeholder');
    const path = source.slice(i + 1, close);
    checkPath(source, i + 1, path);
    if (text) parts.push({ kind: 'text', text });
    text = '';
    parts.push({ kind: 'claim', path });
    i = close + 1;
  }
  if (text) parts.push({ kind: 'text', text });
  if (!parts.some((p) => p.kind === 'claim')) {
    throw new LatchkeyError('invalid_user_id_expression', `user id expression "${source}" has no {claim} placeholder: every token would map to the same user id`);
  }
  return { source, parts };
}

function checkPath(source: string, at: number, path: string): void {
  if (!path) throw malformed(source, at - 1, 'empty placeholder "{}"');
  if (/^\s|\s$/.test(path)) throw malformed(source, at, `claim path "${path}" starts or ends with whitespace`);
  if (path.startsWith('.')) throw malformed(source, at, `claim path "${path}" starts with "."`);
  if (path.endsWith('.')) throw malformed(source, at + path.length - 1, `claim path "${path}" ends with "."`);
  const empty = path.indexOf('..');
  if (empty !== -1) throw malformed(source, at + empty + 1, `claim path "${path}" has an empty segment ("..")`);
}

/** Checks a prefix (literal text put in front of every computed id). */
export function checkPrefix(prefix: string): string {
  if (prefix.length > MAX_PREFIX_LENGTH) throw new LatchkeyError('invalid_input', `user id prefix is longer than ${MAX_PREFIX_LENGTH} characters`);
  if (CONTROL.test(prefix)) throw new LatchkeyError('invalid_input', 'user id prefix must not contain control characters');
  return prefix;
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/** Finds the value at `path`, taking at each level the longest key that is the path or a dotted prefix of it. */
export function resolveClaim(claims: unknown, path: string): { found: true; value: unknown } | { found: false; missing: string } {
  let node: unknown = claims;
  let rest = path;
  let walked = '';
  for (;;) {
    if (!isObject(node)) return { found: false, missing: walked ? `${walked} is not an object` : 'the claims are not an object' };
    let best: string | undefined;
    for (const key of Object.keys(node)) {
      if ((key === rest || rest.startsWith(`${key}.`)) && (best === undefined || key.length > best.length)) best = key;
    }
    if (best === undefined) return { found: false, missing: walked ? `${walked} has no claim "${rest}"` : `the token has no claim "${rest}"` };
    const value = node[best];
    walked = walked ? `${walked}.${best}` : best;
    if (best === rest) return { found: true, value };
    node = value;
    rest = rest.slice(best.length + 1);
  }
}

const describe = (v: unknown) => (v === null ? 'null' : Array.isArray(v) ? 'an array' : typeof v === 'object' ? 'an object' : `a ${typeof v}`);

/**
 * Computes prefix + expression over the claims. A missing claim or a value that is not a non-empty
 * string is a `user_id_expression_failed` error naming the claim.
 */
export function evaluateUserIdExpression(expression: UserIdExpression, claims: unknown, prefix = ''): string {
  let out = prefix;
  for (const part of expression.parts) {
    if (part.kind === 'text') {
      out += part.text;
      continue;
    }
    const r = resolveClaim(claims, part.path);
    if (!r.found) throw expressionFailed(`user id expression "${expression.source}": claim {${part.path}} is missing (${r.missing})`);
    if (typeof r.value !== 'string') throw expressionFailed(`user id expression "${expression.source}": claim {${part.path}} is ${describe(r.value)}, not a string`);
    if (!r.value) throw expressionFailed(`user id expression "${expression.source}": claim {${part.path}} is an empty string`);
    if (CONTROL.test(r.value)) throw expressionFailed(`user id expression "${expression.source}": claim {${part.path}} contains control characters`);
    out += r.value;
  }
  if (out.length > MAX_USER_ID_LENGTH) throw expressionFailed(`user id expression "${expression.source}": the computed user id is longer than ${MAX_USER_ID_LENGTH} characters`);
  return out;
}

/** Parses and evaluates in one step. */
export function computeUserId(source: string, claims: unknown, prefix = ''): string {
  return evaluateUserIdExpression(parseUserIdExpression(source), claims, prefix);
}
