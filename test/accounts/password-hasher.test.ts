import { describe, expect, it } from 'vitest';
import { parseArgon2Hash, PasswordHasher } from '../../src/accounts/password-hasher.js';
import { Semaphore } from '../../src/accounts/semaphore.js';

const OWASP = { memoryCost: 19456, timeCost: 2, parallelism: 1 };

describe('PasswordHasher', () => {
  const hasher = new PasswordHasher(OWASP);

  it('hashes with argon2id and the configured parameters', async () => {
    const hash = await hasher.hash('violet kettle harbour 42');
    expect(hash).toMatch(/^\$argon2id\$v=19\$[a-z0-9=,]+\$[A-Za-z0-9+/]+\$[A-Za-z0-9+/]+$/);
    expect(parseArgon2Hash(hash)).toEqual({ type: 'argon2id', version: 0x13, memoryCost: 19456, timeCost: 2, parallelism: 1 });
    expect(await hasher.hash('violet kettle harbour 42')).not.toBe(hash); // salted
  });

  it('verifies the right password and rejects a wrong one', async () => {
    const hash = await hasher.hash('violet kettle harbour 42');
    expect(await hasher.verify(hash, 'violet kettle harbour 42')).toBe(true);
    expect(await hasher.verify(hash, 'violet kettle harbour 43')).toBe(false);
  });

  it('normalises with NFKC, so equivalent spellings verify', async () => {
    const hash = await hasher.hash('caf\u00e9 au lait, s\u2019il vous pla\u00eet');
    expect(await hasher.verify(hash, 'cafe\u0301 au lait, s\u2019il vous pla\u00eet')).toBe(true);
  });

  it('returns false, without throwing, for malformed or missing hashes', async () => {
    for (const bad of ['', 'not a hash', '$argon2id$v=19$m=19456,t=2,p=1$!!!$???', '$2b$10$abcdefghijklmnopqrstuu5y0aZ0ZqzmC4Q0tW1tO9xJkz3p0K8u', null, undefined]) {
      await expect(hasher.verify(bad, 'anything at all'), String(bad)).resolves.toBe(false);
    }
  });

  it('verifyDummy always fails', async () => {
    await expect(hasher.verifyDummy('violet kettle harbour 42')).resolves.toBe(false);
  });

  it('needsRehash flags weaker parameters, other variants and malformed hashes', async () => {
    const current = await hasher.hash('violet kettle harbour 42');
    expect(hasher.needsRehash(current)).toBe(false);
    const stronger = new PasswordHasher({ ...OWASP, memoryCost: 47104, timeCost: 1 });
    expect(stronger.needsRehash(current)).toBe(true); // memory below the new setting
    const salt = 'c29tZXNhbHRzb21lc2FsdA';
    const digest = 'aGFzaGhhc2hoYXNoaGFzaGhhc2hoYXNoaGFzaGhhc2g';
    expect(hasher.needsRehash(`$argon2id$v=19$m=65536,t=3,p=4$${salt}$${digest}`)).toBe(false); // stronger is fine
    expect(hasher.needsRehash(`$argon2id$v=19$m=19456,t=1,p=1$${salt}$${digest}`)).toBe(true);
    expect(hasher.needsRehash(`$argon2i$v=19$m=19456,t=2,p=1$${salt}$${digest}`)).toBe(true);
    expect(hasher.needsRehash(`$argon2id$v=16$m=19456,t=2,p=1$${salt}$${digest}`)).toBe(true);
    expect(hasher.needsRehash(`$argon2id$v=19$p=1,t=2,m=19456$${salt}$${digest}`)).toBe(false); // any order
    expect(hasher.needsRehash('garbage')).toBe(true);
  });

  it('queues operations beyond maxConcurrent', async () => {
    const single = new PasswordHasher({ ...OWASP, maxConcurrent: 1 });
    const hash = await single.hash('violet kettle harbour 42');
    expect(single.stats()).toEqual({ running: 0, queued: 0 });
    const pending = [
      single.verify(hash, 'violet kettle harbour 42'),
      single.verify(hash, 'wrong password here'),
      single.hash('another long password'),
      single.verifyDummy('nobody@example.org'),
    ];
    expect(single.stats()).toEqual({ running: 1, queued: 3 });
    let maxRunning = 0;
    const watcher = setInterval(() => (maxRunning = Math.max(maxRunning, single.stats().running)), 1);
    const [ok, wrong, another, dummy] = await Promise.all(pending);
    clearInterval(watcher);
    expect(maxRunning).toBeLessThanOrEqual(1);
    expect([ok, wrong, dummy]).toEqual([true, false, false]);
    expect(another).toMatch(/^\$argon2id\$/);
    expect(single.stats()).toEqual({ running: 0, queued: 0 });
  });

  it('runs a real argon2 verification for an unknown account (it occupies a hashing slot like any verify)', async () => {
    const single = new PasswordHasher({ ...OWASP, maxConcurrent: 1 });
    const dummy = single.verifyDummy('wrong password here');
    expect(single.stats()).toEqual({ running: 1, queued: 0 });
    await expect(dummy).resolves.toBe(false);
    expect(single.stats()).toEqual({ running: 0, queued: 0 });
  });
});

describe('Semaphore', () => {
  it('runs waiters in FIFO order and never exceeds its size', async () => {
    const sem = new Semaphore(2);
    const order: number[] = [];
    let active = 0;
    let peak = 0;
    const task = (n: number) =>
      sem.run(async () => {
        active++;
        peak = Math.max(peak, active);
        await new Promise((r) => setTimeout(r, 5));
        order.push(n);
        active--;
        return n;
      });
    const results = await Promise.all([0, 1, 2, 3, 4, 5].map(task));
    expect(results).toEqual([0, 1, 2, 3, 4, 5]);
    expect(peak).toBe(2);
    expect(order.slice(2)).toEqual([2, 3, 4, 5]);
    expect({ running: sem.running, queued: sem.queued }).toEqual({ running: 0, queued: 0 });
  });

  it('frees the slot when a task fails', async () => {
    const sem = new Semaphore(1);
    await expect(sem.run(async () => Promise.reject(new Error('boom')))).rejects.toThrow('boom');
    await expect(sem.run(async () => 'ok')).resolves.toBe('ok');
    expect(sem.running).toBe(0);
  });

  it('refuses a non-positive size', () => {
    expect(() => new Semaphore(0)).toThrow(RangeError);
  });
});
