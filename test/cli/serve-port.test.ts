import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { request } from 'undici';
import { afterAll, afterEach, beforeAll, expect, it } from 'vitest';
import { projectRoot } from '../../src/db/paths.js';
import { describeEachDatabase, freshDatabase, type TestDatabase } from '../helpers/databases.js';
import { until } from '../helpers/flows.js';
import { testFetch } from '../helpers/http.js';
import { freePort } from '../helpers/server.js';

/** `latchkey serve` without LATCHKEY_ISSUER or an issuer in a config file, as on a laptop. */
function serve(args: string[], env: Record<string, string>, cwd: string): ChildProcess {
  const inherited = { ...process.env };
  delete inherited.LATCHKEY_ISSUER;
  delete inherited.PORT;
  delete inherited.LATCHKEY_CONFIG;
  return spawn(process.execPath, [join(projectRoot(), 'bin/latchkey.js'), 'serve', ...args], {
    env: { ...inherited, ...env, LOG_LEVEL: 'warn' },
    cwd,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
}

/** Discovery from the server on `port`, asked for as `host` (undici's request sends the Host header as given). */
async function issuerAt(port: number, host = `localhost:${port}`): Promise<{ status: number; issuer?: string }> {
  const res = await request(`http://127.0.0.1:${port}/.well-known/openid-configuration`, { headers: { host } });
  const body = (await res.body.json()) as { issuer?: string };
  return { status: res.statusCode, issuer: body.issuer };
}

async function ready(child: ChildProcess, port: number): Promise<void> {
  let output = '';
  child.stdout!.on('data', (d) => (output += d));
  child.stderr!.on('data', (d) => (output += d));
  await until(
    async () => {
      if (child.exitCode !== null) throw new Error(`latchkey serve exited with ${child.exitCode}:\n${output}`);
      const res = await testFetch(`http://127.0.0.1:${port}/readyz`).catch(() => undefined);
      return res?.status === 200 ? true : undefined;
    },
    'latchkey serve to be ready',
    20_000,
  );
}

async function stop(child: ChildProcess | undefined): Promise<void> {
  if (!child || child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((resolve) => child.once('exit', resolve));
  child.kill('SIGTERM');
  await exited;
}

describeEachDatabase('the default issuer follows the port when none is configured', (kind) => {
  let db: TestDatabase;
  let cwd: string;
  let env: Record<string, string>;
  let child: ChildProcess | undefined;

  beforeAll(async () => {
    db = await freshDatabase(kind);
    cwd = mkdtempSync(join(tmpdir(), 'latchkey-serve-port-'));
    env = { DATABASE_URL: db.url, LATCHKEY_SECRET: randomBytes(32).toString('base64url') };
  });
  afterEach(async () => stop(child));
  afterAll(async () => db?.drop());

  it('`latchkey serve --port N` serves http://localhost:N; a later start with PORT=M adds http://localhost:M and keeps N', async () => {
    const first = await freePort();
    child = serve(['--port', String(first)], env, cwd);
    await ready(child, first);
    expect(await issuerAt(first)).toEqual({ status: 200, issuer: `http://localhost:${first}` });
    // a host that is no issuer of any realm is still refused
    expect((await issuerAt(first, 'localhost:3000')).status).toBe(404);
    await stop(child);

    const second = await freePort();
    child = serve([], { ...env, PORT: String(second) }, cwd);
    await ready(child, second);
    expect(await issuerAt(second)).toEqual({ status: 200, issuer: `http://localhost:${second}` });
    // the earlier issuer stays one of the default realm's issuers
    expect(await issuerAt(second, `localhost:${first}`)).toEqual({ status: 200, issuer: `http://localhost:${first}` });
  });
});
