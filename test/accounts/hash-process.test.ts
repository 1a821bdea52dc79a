import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { getPriority } from 'node:os';
import { describe, expect, it } from 'vitest';
import { Argon2Error, HashProcess } from '../../src/accounts/hash-process.js';
import { PasswordHasher } from '../../src/accounts/password-hasher.js';
import { LatchkeyError } from '../../src/errors.js';
import { startTestServer, TEST_OVERRIDES } from '../helpers/server.js';

const OPTIONS = { type: 2, memoryCost: 19456, timeCost: 2, parallelism: 1 };
const OWASP = { memoryCost: 19456, timeCost: 2, parallelism: 1 };

/** The scheduling policy (field 41) of a /proc stat file: 0 normal, 5 SCHED_IDLE. */
const policyOf = (file: string): number => {
  const stat = readFileSync(file, 'utf8');
  return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[38]);
};

const parentOf = (pid: number): number => {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
};

describe('the argon2 helper process', () => {
  it('hashes and verifies in a child process of ours at the lowest CPU priority', async () => {
    const helper = new HashProcess(2);
    try {
      const hash = (await helper.run({ op: 'hash', password: 'violet kettle harbour 42', options: OPTIONS })) as string;
      expect(hash).toMatch(/^\$argon2id\$v=19\$m=19456,p=1,t=2\$/);
      expect(await helper.run({ op: 'verify', hash, password: 'violet kettle harbour 42' })).toBe(true);
      expect(await helper.run({ op: 'verify', hash, password: 'violet kettle harbour 43' })).toBe(false);
      const pid = helper.pid!;
      expect(pid).not.toBe(process.pid);
      if (process.platform === 'linux') expect(parentOf(pid)).toBe(process.pid);
      expect(getPriority(pid)).toBe(19);
      if (existsSync('/usr/bin/chrt') || existsSync('/bin/chrt')) {
        // SCHED_IDLE (policy 5, field 41 of /proc/<pid>/stat) for the helper and every thread it started
        for (const tid of readdirSync(`/proc/${pid}/task`)) expect(policyOf(`/proc/${pid}/task/${tid}/stat`)).toBe(5);
      }
    } finally {
      await helper.close();
    }
  });

  it('with priority "normal" the helper keeps our own priority: on a host whose cores other processes keep busy, hashing still gets its share', async () => {
    const helper = new HashProcess(2, 'normal');
    try {
      const hash = (await helper.run({ op: 'hash', password: 'violet kettle harbour 42', options: OPTIONS })) as string;
      expect(await helper.run({ op: 'verify', hash, password: 'violet kettle harbour 42' })).toBe(true);
      const pid = helper.pid!;
      expect(getPriority(pid)).toBe(getPriority());
      // SCHED_OTHER (policy 0) for the helper and its threads, not SCHED_IDLE
      if (process.platform === 'linux') for (const tid of readdirSync(`/proc/${pid}/task`)) expect(policyOf(`/proc/${pid}/task/${tid}/stat`)).toBe(0);
    } finally {
      await helper.close();
    }
  });

  it('the server runs its helper at the priority passwords.hashPriority names (the test servers: normal; the default: idle)', async () => {
    const cases = [
      { overrides: {}, nice: getPriority(), policy: 0 },
      { overrides: { passwords: { ...TEST_OVERRIDES.passwords, hashPriority: 'idle' } }, nice: 19, policy: existsSync('/usr/bin/chrt') || existsSync('/bin/chrt') ? 5 : 0 },
    ];
    for (const { overrides, nice, policy } of cases) {
      const server = await startTestServer({ overrides });
      try {
        await server.services.hasher.hash('violet kettle harbour 42');
        const pid = server.services.hasher.helperPid!;
        expect(pid).toBeDefined();
        expect(getPriority(pid)).toBe(nice);
        if (process.platform === 'linux') expect(policyOf(`/proc/${pid}/stat`)).toBe(policy);
      } finally {
        await server.close();
      }
    }
  });

  it("reports argon2's own refusals as Argon2Error", async () => {
    const helper = new HashProcess(1);
    try {
      await expect(helper.run({ op: 'verify', hash: '$argon2id$v=19$m=1,t=1,p=1$AAAA$BBBB', password: 'x' })).rejects.toBeInstanceOf(Argon2Error);
    } finally {
      await helper.close();
    }
  });

  it('a request in flight when the helper dies fails with hasher_unavailable, and the next one starts a new helper', async () => {
    const helper = new HashProcess(1);
    try {
      const hash = (await helper.run({ op: 'hash', password: 'violet kettle harbour 42', options: OPTIONS })) as string;
      const first = helper.pid!;
      const inFlight = helper.run({ op: 'verify', hash, password: 'violet kettle harbour 42' });
      process.kill(first, 'SIGKILL');
      const err = await inFlight.then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(err).toBeInstanceOf(LatchkeyError);
      // killed before or after the request reached it: "stopped (SIGKILL)" or "could not reach ... (EPIPE)"
      expect(err).toMatchObject({ code: 'hasher_unavailable', status: 503, message: expect.stringMatching(/password hashing process stopped \(SIGKILL\)|could not reach the password hashing process/) });
      expect(await helper.run({ op: 'verify', hash, password: 'violet kettle harbour 42' })).toBe(true);
      expect(helper.pid).toBeDefined();
      expect(helper.pid).not.toBe(first);
    } finally {
      await helper.close();
    }
  });

  it('after close, hashing fails with a clear error', async () => {
    const hasher = new PasswordHasher(OWASP);
    await hasher.hash('violet kettle harbour 42');
    await hasher.close();
    await expect(hasher.hash('violet kettle harbour 42')).rejects.toMatchObject({ code: 'hasher_unavailable', message: 'the password hasher has been shut down' });
    // a helper that stopped is never mistaken for a wrong password
    await expect(hasher.verifyDummy('violet kettle harbour 42')).rejects.toMatchObject({ code: 'hasher_unavailable' });
  });
});
