import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { projectRoot } from '../../src/db/paths.js';
import { freshDatabase, type TestDatabase } from '../helpers/databases.js';

/** Fields of /proc/<pid>/stat after the command name: [1] parent, [16] nice, [38] policy (5: SCHED_IDLE). */
function statOf(pid: number): string[] | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  } catch {
    return undefined; // gone meanwhile
  }
}

interface Seen {
  nice: number;
  policy: number;
}

/**
 * Runs the real CLI and, while it runs, watches its child processes: every sighting of the argon2 helper
 * (node running the helper program; not chrt before it execs node) with its nice value and policy.
 */
function runWatched(env: Record<string, string>, cwd: string, args: string[], stdin: string): Promise<{ code: number; stderr: string; stdout: string; helper: Seen[] }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [join(projectRoot(), 'bin/latchkey.js'), ...args], { env: { ...process.env, ...env, LOG_LEVEL: 'silent' }, cwd, stdio: ['pipe', 'pipe', 'pipe'] });
    const helper: Seen[] = [];
    let stdout = '';
    let stderr = '';
    const watch = setInterval(() => {
      for (const entry of readdirSync('/proc')) {
        if (!/^\d+$/.test(entry)) continue;
        const stat = statOf(Number(entry));
        if (!stat || Number(stat[1]) !== child.pid) continue;
        let argv: string[];
        try {
          argv = readFileSync(`/proc/${entry}/cmdline`, 'utf8').split('\0');
        } catch {
          continue;
        }
        if (argv[0] !== process.execPath || !argv.includes('--input-type=module')) continue;
        helper.push({ nice: Number(stat[16]), policy: Number(stat[38]) });
      }
    }, 5);
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    child.on('error', reject);
    child.on('close', (code) => {
      clearInterval(watch);
      resolve({ code: code ?? -1, stdout, stderr, helper });
    });
    child.stdin.end(stdin);
  });
}

describe.skipIf(process.platform !== 'linux')('the CLI hashes passwords at normal CPU priority', () => {
  let database: TestDatabase;
  let cwd: string;
  const env: Record<string, string> = {};

  beforeAll(async () => {
    database = await freshDatabase('sqlite');
    cwd = mkdtempSync(join(tmpdir(), 'latchkey-cli-'));
    mkdirSync(join(cwd, 'config'));
    // The server's setting stays `idle` (the default, spelled out); the hashing is made slower than the
    // default so the helper lives long enough to be watched.
    writeFileSync(join(cwd, 'config/latchkey.yaml'), 'passwords:\n  hashPriority: idle\n  argon2: { memoryCost: 19456, timeCost: 12, parallelism: 1 }\n');
    Object.assign(env, { DATABASE_URL: database.url, LATCHKEY_SECRET: randomBytes(32).toString('base64url'), LATCHKEY_ISSUER: 'http://localhost:3999' });
  });
  afterAll(async () => {
    await database?.drop();
    if (cwd) rmSync(cwd, { recursive: true, force: true });
  });

  it('`user create --password-stdin` and `user set-password` run their argon2 helper neither at SCHED_IDLE nor at nice 19, whatever passwords.hashPriority says', async () => {
    const runs = [
      await runWatched(env, cwd, ['user', 'create', '--realm', 'default', '--email', 'ops@example.test', '--password-stdin'], 'amber-lantern-quiet-harbour-27\n'),
      await runWatched(env, cwd, ['user', 'set-password', '--realm', 'default', '--email', 'ops@example.test', '--password-stdin'], 'second-amber-lantern-quiet-88\n'),
    ];
    for (const run of runs) {
      expect(run.code, run.stderr).toBe(0);
      expect(JSON.parse(run.stdout).email).toBe('ops@example.test');
      expect(run.helper.length, 'the helper was seen while the command ran').toBeGreaterThan(0);
      for (const seen of run.helper) {
        expect(seen.policy, 'scheduling policy (5 is SCHED_IDLE)').toBe(0);
        expect(seen.nice).not.toBe(19);
      }
    }
  });
});
