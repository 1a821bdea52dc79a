import { describe, expect, it } from 'vitest';
import { checkPassword, isCommonPassword, normalizePassword } from '../../src/accounts/password-policy.js';

const limits = { minLength: 15, maxLength: 64 };
const GOOD = 'violet kettle harbour 42';

describe('checkPassword', () => {
  it('accepts a long password without any composition rules', () => {
    expect(checkPassword(GOOD, limits)).toBeNull();
    expect(checkPassword('all lower case letters here', limits)).toBeNull();
  });

  it('enforces the minimum and maximum length', () => {
    expect(checkPassword('short but fine', limits)).toBe('Password must be at least 15 characters.');
    expect(checkPassword('x7'.repeat(40), limits)).toBe('Password must be at most 64 characters.');
    expect(checkPassword('h7Kq2mZ9pLw4Rt8', limits)).toBeNull(); // exactly 15
  });

  it('counts Unicode code points after NFKC normalisation', () => {
    // 15 astral characters are 30 UTF-16 code units but 15 code points.
    const emoji = '🐙🦊🐢🦉🐝🦄🐬🦀🐸🦁🐧🦜🐌🦒🐞';
    expect(emoji.length).toBe(30);
    expect(checkPassword(emoji, limits)).toBeNull();
    expect(checkPassword([...emoji].slice(0, 14).join(''), limits)).toMatch(/at least 15/);
    // "ﬁ" (one code point) becomes "fi" (two) under NFKC.
    const ligatures = 'ﬁ'.repeat(3) + 'zq7Kp2Lm9';
    expect([...ligatures]).toHaveLength(12);
    expect(checkPassword(ligatures, limits)).toBeNull();
    // Precomposed and decomposed accents count the same.
    expect(checkPassword('e\u0301'.repeat(7) + 'xk9Pq2m7', limits)).toBe(checkPassword('\u00e9'.repeat(7) + 'xk9Pq2m7', limits));
  });

  it('rejects passwords on the blocklist, whatever their case', () => {
    for (const p of ['123456789012345', 'qwertyuiopasdfghjkl', 'passwordpassword', 'iloveyouiloveyou', 'PasswordPassword', 'IloveyouIloveyou']) {
      expect(checkPassword(p, limits), p).toBe('This password is too common; choose a different one.');
    }
  });

  it('rejects common words decorated with digits, symbols, spaces or leetspeak', () => {
    expect(checkPassword('password1234567!', limits)).toMatch(/too common/);
    expect(checkPassword('P@ssw0rd12345678', limits)).toMatch(/too common/);
    expect(checkPassword('correct horse battery staple', limits)).toMatch(/too common/);
    expect(checkPassword('!!!!monkey2024!!!', limits)).toMatch(/too common/);
  });

  it('rejects a single repeated character and short repeated patterns', () => {
    expect(checkPassword('a'.repeat(20), limits)).toBe('Password must not be a single repeated character.');
    expect(checkPassword('🙂'.repeat(16), limits)).toBe('Password must not be a single repeated character.');
    expect(checkPassword('xy7'.repeat(6), limits)).toBe('Password must not be a short repeated pattern.');
  });

  it('rejects the email address, its local part, and the realm name', () => {
    const email = 'margaret.hamilton@example.org';
    expect(checkPassword(email, limits, { email })).toBe('Password must not be your email address.');
    expect(checkPassword('MARGARET.HAMILTON@EXAMPLE.ORG', limits, { email })).toBe('Password must not be your email address.');
    expect(checkPassword('margaret.hamilton', limits, { email })).toBe('Password must not be based on your email address.');
    expect(checkPassword('Margaret Hamilton 1969!', limits, { email })).toBe('Password must not be based on your email address.');
    expect(checkPassword('apollo guidance computer', limits, { email })).toBeNull();
    expect(checkPassword('Acme Identity Portal', limits, { realmName: 'acme identity portal' })).toBe(
      'Password must not be based on the name of this service.',
    );
    expect(checkPassword(GOOD, limits, { email, realmName: 'Acme' })).toBeNull();
  });
});

describe('isCommonPassword', () => {
  it('knows the bundled list', () => {
    expect(isCommonPassword('password')).toBe(true);
    expect(isCommonPassword('QWERTY')).toBe(true);
    expect(isCommonPassword('violet kettle harbour 42')).toBe(false);
  });
});

describe('normalizePassword', () => {
  it('applies NFKC', () => {
    expect(normalizePassword('e\u0301')).toBe('\u00e9');
    expect(normalizePassword('ﬁ')).toBe('fi');
    expect(normalizePassword('Ｐａｓｓ')).toBe('Pass');
  });
});
