import { describe, expect, it } from 'vitest';
import { randomToken } from '../../src/crypto/random.js';

describe('randomToken (src/crypto/random.ts)', () => {
  it('gives base64url tokens of the asked length, never the same twice, across many pool refills', () => {
    const seen = new Set<string>();
    for (let i = 0; i < 5000; i++) {
      const token = randomToken(32);
      expect(token).toMatch(/^[A-Za-z0-9_-]{43}$/);
      seen.add(token);
    }
    expect(seen.size).toBe(5000);
    // odd sizes straddle the end of the pool
    for (const n of [1, 7, 24, 100, 1024]) expect(Buffer.from(randomToken(n), 'base64url')).toHaveLength(n);
  });

  it('looks uniformly random: every byte value turns up about equally often', () => {
    const counts = new Array(256).fill(0);
    for (let i = 0; i < 2000; i++) for (const b of Buffer.from(randomToken(128), 'base64url')) counts[b]++;
    const expected = (2000 * 128) / 256; // 1000 each
    // 6 standard deviations either way: a stuck or zeroed pool falls far outside
    for (const c of counts) expect(Math.abs(c - expected)).toBeLessThan(6 * Math.sqrt(expected));
  });

  it('refuses sizes it cannot serve, naming the argument', () => {
    expect(() => randomToken(0)).toThrow(/bytes must be a whole number from 1 to 1024/);
    expect(() => randomToken(2048)).toThrow(/got 2048/);
    expect(() => randomToken(1.5)).toThrow(RangeError);
  });
});
