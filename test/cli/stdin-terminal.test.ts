import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { projectRoot } from '../../src/db/paths.js';
import { runCli } from '../helpers/server.js';

const SCRIPT = ['/usr/bin/script', '/bin/script'].find((p) => existsSync(p));
const quote = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;

/** Runs the real CLI with a terminal (a pseudo-terminal from util-linux `script`) as its standard input. */
function runOnTerminal(env: Record<string, string>, cwd: string, args: string[]): Promise<{ code: number; output: string }> {
  const command = [process.execPath, join(projectRoot(), 'bin/latchkey.js'), ...args].map(quote).join(' ');
  return new Promise((resolve, reject) => {
    const child = spawn(SCRIPT!, ['-qec', command, '/dev/null'], { env: { ...process.env, ...env, LOG_LEVEL: 'silent' }, cwd, stdio: ['pipe', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (d) => (output += d));
    child.stderr.on('data', (d) => (output += d));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code: code ?? -1, output }));
    setTimeout(() => child.kill('SIGKILL'), 30_000).unref();
  });
}

describe.skipIf(!SCRIPT)('--...-stdin options with a terminal as standard input', () => {
  let dir: string;
  let env: Record<string, string>;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'latchkey-cli-tty-'));
    env = { DATABASE_URL: `sqlite:${join(dir, 'db.sqlite')}`, LATCHKEY_SECRET: randomBytes(32).toString('base64url'), LATCHKEY_ISSUER: 'http://tty.localhost:4300' };
    const migrated = await runCli(env, ['migrate'], undefined, dir);
    expect(migrated.code, migrated.stderr).toBe(0);
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('say that standard input is a terminal and how to pipe the value, instead of "standard input was empty"; nothing is written', async () => {
    const cases: Array<[string[], string]> = [
      [['user', 'create', '--realm', 'default', '--email', 'tty@example.test', '--password-stdin'], '--password-stdin reads the password from standard input, which is a terminal here'],
      [['user', 'set-password', '--realm', 'default', '--email', 'tty@example.test', '--password-stdin'], '--password-stdin reads the password from standard input, which is a terminal here'],
      [['connection', 'create', '--realm', 'default', '--id', 'google', '--preset', 'google', '--client-id', 'c', '--client-secret-stdin'], '--client-secret-stdin reads the client secret from standard input, which is a terminal here'],
      [['trust', 'add', '--realm', 'default', '--sample-token-stdin'], '--sample-token-stdin reads a sample token from standard input, which is a terminal here'],
    ];
    for (const [args, message] of cases) {
      const res = await runOnTerminal(env, dir, args);
      expect(res.code, res.output).toBe(2);
      expect(res.output).toContain(message);
      expect(res.output).toContain('pipe it in');
      expect(res.output).not.toContain('was empty');
    }
    const users = await runCli(env, ['user', 'list', '--realm', 'default'], undefined, dir);
    expect(users.json.users).toEqual([]);
    const connections = await runCli(env, ['connection', 'list', '--realm', 'default'], undefined, dir);
    expect(connections.json.connections).toEqual([]);
  });
});
