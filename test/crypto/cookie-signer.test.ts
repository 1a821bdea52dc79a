import { createRequire } from 'node:module';
import { describe, expect, it } from 'vitest';
import { cookieSigner } from '../../src/crypto/cookie-signer.js';

// the Keygrip the `cookies` package would otherwise build (a dependency of koa's)
const Keygrip = createRequire(import.meta.url)('keygrip') as new (keys: string[]) => { sign(d: string): string; index(d: string, s: string): number };

describe('cookie signer (Keygrip-compatible)', () => {
  const samples = ['_session=abc', '_interaction=Zx-9_Q', '_interaction_resume=' + 'x'.repeat(200), '', 'ünïcödé=1'];

  it('signs exactly as Keygrip does, so cookies signed before an upgrade stay valid', () => {
    const keys = ['k1-' + 'a'.repeat(40), 'k0-old'];
    const ours = cookieSigner(keys);
    const theirs = new Keygrip(keys);
    for (const data of samples) {
      expect(ours.sign(data)).toBe(theirs.sign(data));
      expect(ours.index(data, theirs.sign(data))).toBe(0);
      expect(ours.verify(data, theirs.sign(data))).toBe(true);
    }
  });

  it('verifies with every key (rotation) and says which one matched', () => {
    const old = cookieSigner(['old-key']);
    const rotated = cookieSigner(['new-key', 'old-key']);
    expect(rotated.index('_session=abc', old.sign('_session=abc'))).toBe(1);
    expect(rotated.index('_session=abc', rotated.sign('_session=abc'))).toBe(0);
    expect(cookieSigner(['new-key']).index('_session=abc', old.sign('_session=abc'))).toBe(-1);
  });

  it('refuses altered data, altered, shortened or missing signatures', () => {
    const signer = cookieSigner(['key']);
    const sig = signer.sign('_session=abc');
    expect(signer.verify('_session=abd', sig)).toBe(false);
    expect(signer.verify('_session=abc', sig.slice(0, -1) + (sig.endsWith('A') ? 'B' : 'A'))).toBe(false);
    expect(signer.verify('_session=abc', sig.slice(0, -1))).toBe(false);
    expect(signer.verify('_session=abc', '')).toBe(false);
    expect(signer.index('_session=abc', undefined as unknown as string)).toBe(-1);
  });

  it('needs a key', () => {
    expect(() => cookieSigner([])).toThrow(/at least one key/);
  });
});
