import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { LatchkeyError } from '../../src/errors.js';
import { computeUserId, parseUserIdExpression, resolveClaim } from '../../src/trust/user-id-expression.js';

const claims = {
  iss: 'https://issuer.example.test',
  sub: 'user-123',
  alt_sub: 'alt-456',
  team: 'platform',
  additional_claims: { other: 'blue', deeper: { level: 'three' } },
  'https://company.domain.com/claims': { property: 'acme-42', 'dotted.key': 'dk' },
  'https://company.domain.com/claims.property': 'flat-wins',
  count: 7,
  flag: true,
  empty: '',
  nothing: null,
  list: ['a'],
};

function errorOf(fn: () => unknown): LatchkeyError {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(LatchkeyError);
    return err as LatchkeyError;
  }
  throw new Error('expected an error');
}

describe('User ID Expressions: evaluation', () => {
  it('defaults to {sub} and reads any claim', () => {
    expect(computeUserId('{sub}', claims)).toBe('user-123');
    expect(computeUserId('{alt_sub}', claims)).toBe('alt-456');
  });

  it('joins several claims with the literal text between them', () => {
    expect(computeUserId('{team}|{additional_claims.other}', claims)).toBe('platform|blue');
    expect(computeUserId('team:{team}/user:{sub}!', claims)).toBe('team:platform/user:user-123!');
  });

  it('follows nested paths', () => {
    expect(computeUserId('{additional_claims.deeper.level}', claims)).toBe('three');
  });

  it('reads claim names that are URLs, taking the longest key that matches at each level', () => {
    // the flat key "https://company.domain.com/claims.property" is longer than "https://company.domain.com/claims"
    expect(computeUserId('{https://company.domain.com/claims.property}', claims)).toBe('flat-wins');
    const { 'https://company.domain.com/claims.property': _flat, ...nestedOnly } = claims;
    expect(computeUserId('{https://company.domain.com/claims.property}', nestedOnly)).toBe('acme-42');
    expect(computeUserId('{https://company.domain.com/claims.dotted.key}', nestedOnly)).toBe('dk');
  });

  it('puts the prefix in front', () => {
    expect(computeUserId('{sub}', claims, 'google|')).toBe('google|user-123');
    expect(computeUserId('{team}|{sub}', claims, 'ci:')).toBe('ci:platform|user-123');
  });

  it('names a missing claim instead of producing a hole', () => {
    const e = errorOf(() => computeUserId('{team}|{missing_claim}', claims));
    expect(e.code).toBe('user_id_expression_failed');
    expect(e.message).toContain('{missing_claim}');
    expect(e.message).toContain('missing');
    const nested = errorOf(() => computeUserId('{additional_claims.absent}', claims));
    expect(nested.message).toContain('additional_claims has no claim "absent"');
    const throughString = errorOf(() => computeUserId('{sub.inner}', claims));
    expect(throughString.message).toContain('{sub.inner}');
  });

  it('accepts only non-empty strings, naming the claim and what it was', () => {
    expect(errorOf(() => computeUserId('{count}', claims)).message).toMatch(/\{count\} is a number, not a string/);
    expect(errorOf(() => computeUserId('{flag}', claims)).message).toMatch(/\{flag\} is a boolean/);
    expect(errorOf(() => computeUserId('{nothing}', claims)).message).toMatch(/\{nothing\} is null/);
    expect(errorOf(() => computeUserId('{list}', claims)).message).toMatch(/\{list\} is an array/);
    expect(errorOf(() => computeUserId('{additional_claims}', claims)).message).toMatch(/\{additional_claims\} is an object/);
    expect(errorOf(() => computeUserId('{empty}', claims)).message).toMatch(/\{empty\} is an empty string/);
    expect(errorOf(() => computeUserId('{sub}', { sub: 'a\nb' })).message).toMatch(/control characters/);
  });
});

describe('User ID Expressions: parsing', () => {
  it('splits literal text and placeholders', () => {
    expect(parseUserIdExpression('{team}|{additional_claims.other}').parts).toEqual([
      { kind: 'claim', path: 'team' },
      { kind: 'text', text: '|' },
      { kind: 'claim', path: 'additional_claims.other' },
    ]);
  });

  it.each([
    ['', /empty/],
    ['sub', /no \{claim\} placeholder/],
    ['{sub', /position 0: "\{" is never closed/],
    ['x}{sub}', /position 1: "\}" without a matching "\{"/],
    ['{}', /position 0: empty placeholder/],
    ['{a{b}}', /position 2: "\{" inside a placeholder/],
    ['{a..b}', /empty segment/],
    ['{.a}', /starts with "\."/],
    ['{a.}', /ends with "\."/],
    ['{ sub}', /whitespace/],
    ['{sub}\u0000', /position 5: control characters/],
    [`{${'a'.repeat(600)}}`, /longer than 500/],
  ])('rejects %j with a message naming the problem', (source, message) => {
    const e = errorOf(() => parseUserIdExpression(source));
    expect(e.code).toBe('invalid_user_id_expression');
    expect(e.message).toMatch(message);
  });

  it('resolveClaim reports where the path stopped', () => {
    expect(resolveClaim(claims, 'additional_claims.deeper.level')).toEqual({ found: true, value: 'three' });
    expect(resolveClaim('not-an-object', 'sub')).toEqual({ found: false, missing: 'the claims are not an object' });
  });
});

// ---- properties --------------------------------------------------------------------------------

// claim names without the characters that have a meaning in an expression
const claimName = fc.string({ minLength: 1, maxLength: 20 }).filter((s) => !/[{}.\u0000-\u001f\u007f]/.test(s) && s.trim() === s && s.length > 0);
const claimValue = fc.string({ minLength: 1, maxLength: 30 }).filter((s) => !/[\u0000-\u001f\u007f]/.test(s));
const literal = fc.string({ maxLength: 10 }).filter((s) => !/[{}\u0000-\u001f\u007f]/.test(s));
const randomClaims = fc.dictionary(claimName, fc.jsonValue({ maxDepth: 3 }), { maxKeys: 8 });

describe('User ID Expressions: properties', () => {
  it('{k} on any claims object returns the string value of k', () => {
    fc.assert(
      fc.property(randomClaims, claimName, claimValue, (others, k, v) => {
        expect(computeUserId(`{${k}}`, { ...others, [k]: v })).toBe(v);
      }),
    );
  });

  it('keeps literal text and the prefix around the values, in order', () => {
    fc.assert(
      fc.property(literal, claimName, claimValue, literal, claimName, claimValue, literal, literal, (a, k1, v1, b, k2, v2, c, prefix) => {
        fc.pre(k1 !== k2);
        expect(computeUserId(`${a}{${k1}}${b}{${k2}}${c}`, { [k1]: v1, [k2]: v2 }, prefix)).toBe(`${prefix}${a}${v1}${b}${v2}${c}`);
      }),
    );
  });

  it('finds values along random nested paths', () => {
    fc.assert(
      fc.property(fc.array(claimName, { minLength: 1, maxLength: 5 }), claimValue, (segments, v) => {
        const nested = segments.reduceRight<unknown>((inner, key) => ({ [key]: inner }), v);
        expect(computeUserId(`{${segments.join('.')}}`, nested)).toBe(v);
      }),
    );
  });

  it('rejects expressions with an unbalanced or misplaced brace', () => {
    const defect = fc.constantFrom('{', '}', '{}', '{a{b}}', '}{', '{x');
    fc.assert(
      fc.property(literal, claimName, literal, defect, fc.nat(), (a, k, b, bad, at) => {
        const valid = `${a}{${k}}${b}`;
        // put the defect where it cannot join a placeholder into a valid one: at the start, between parts or at the end
        const cuts = [0, a.length, a.length + k.length + 2, valid.length];
        const cut = cuts[at % cuts.length]!;
        const source = valid.slice(0, cut) + bad + valid.slice(cut);
        const e = errorOf(() => parseUserIdExpression(source));
        expect(e.code).toBe('invalid_user_id_expression');
        expect(e.message).toMatch(/position \d+/);
      }),
    );
  });

  it('never yields undefined or [object Object] for random claims: a string built from string claims, or a clear error', () => {
    const clean = fc.dictionary(
      claimName,
      fc.jsonValue({ maxDepth: 3 }).filter((v) => !JSON.stringify(v).includes('undefined') && !JSON.stringify(v).includes('[object')),
      { maxKeys: 8 },
    );
    fc.assert(
      fc.property(clean, fc.array(claimName, { minLength: 1, maxLength: 3 }), (obj, keys) => {
        const source = keys.map((k) => `{${k}}`).join('|');
        let out: string;
        try {
          out = computeUserId(source, obj);
        } catch (err) {
          expect(err).toBeInstanceOf(LatchkeyError);
          expect((err as LatchkeyError).code).toBe('user_id_expression_failed');
          return;
        }
        expect(out).not.toContain('undefined');
        expect(out).not.toContain('[object Object]');
        expect(out).toBe(keys.map((k) => obj[k]).join('|'));
        for (const k of keys) expect(typeof obj[k]).toBe('string');
      }),
    );
  });
});
