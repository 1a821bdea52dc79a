import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as oidc from 'openid-client';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { projectRoot } from '../../src/db/paths.js';
import { describeEachDatabase, freshDatabase, type TestDatabase } from '../helpers/databases.js';
import { authorizationRequest, discover, exchangeCode, PASSWORD, signIn, until } from '../helpers/flows.js';
import { Browser, testFetch } from '../helpers/http.js';
import { freePort, runCli } from '../helpers/server.js';

const REDIRECT = 'http://app.example.test/callback';
const EMAIL = 'linus@example.test';

/** `latchkey serve` as its own process, as an operator runs it. */
class ServerProcess {
  child: ChildProcess | undefined;
  output = '';

  constructor(
    private readonly env: Record<string, string>,
    private readonly cwd: string,
  ) {}

  async start(): Promise<void> {
    const child = spawn(process.execPath, [join(projectRoot(), 'bin/latchkey.js'), 'serve'], {
      env: { ...process.env, ...this.env, LOG_LEVEL: 'warn' },
      cwd: this.cwd,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    this.child = child;
    child.stdout!.on('data', (d) => (this.output += d));
    child.stderr!.on('data', (d) => (this.output += d));
    await until(
      async () => {
        if (child.exitCode !== null) throw new Error(`latchkey serve exited with ${child.exitCode}:\n${this.output}`);
        const res = await testFetch(`${this.env.LATCHKEY_ISSUER}/readyz`).catch(() => undefined);
        return res?.status === 200 ? true : undefined;
      },
      'latchkey serve to be ready',
      20_000,
    );
  }

  /** SIGTERM, then wait for the process to exit; returns its exit code. */
  async stop(): Promise<number | null> {
    const child = this.child;
    if (!child || child.exitCode !== null || child.signalCode !== null) return child?.exitCode ?? null;
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
    const code = await exited;
    clearTimeout(timer);
    return code;
  }
}

describeEachDatabase('a restart of the server process', (kind) => {
  let db: TestDatabase;
  let cwd: string;
  let env: Record<string, string>;
  let server: ServerProcess;

  beforeAll(async () => {
    db = await freshDatabase(kind);
    cwd = mkdtempSync(join(tmpdir(), 'latchkey-restart-'));
    const port = await freePort();
    env = {
      DATABASE_URL: db.url,
      LATCHKEY_SECRET: randomBytes(32).toString('base64url'),
      LATCHKEY_ISSUER: `http://localhost:${port}`,
      PORT: String(port),
    };
    server = new ServerProcess(env, cwd);
    await server.start();
  });
  afterAll(async () => {
    await server?.stop();
    await db?.drop();
    if (cwd) rmSync(cwd, { recursive: true, force: true });
  });

  it('keeps sessions and refresh tokens: the browser is still signed in and the refresh token still works', async () => {
    const cli = (args: string[], stdin?: string) => runCli(env, args, stdin, cwd);
    const client = await cli(['client', 'create', '--realm', 'default', '--name', 'Restart App', '--redirect-uri', REDIRECT, '--first-party']);
    expect(client.code, client.stderr).toBe(0);
    const user = await cli(['user', 'create', '--realm', 'default', '--email', EMAIL, '--password-stdin'], `${PASSWORD}\n`);
    expect(user.code, user.stderr).toBe(0);

    const issuer = env.LATCHKEY_ISSUER!;
    const config = await discover(issuer, client.json.client_id, { client_secret: client.json.client_secret });
    const browser = new Browser();
    const first = await signIn(browser, config, REDIRECT, EMAIL, { scope: 'openid email offline_access' });
    expect(first.refresh_token).toBeTruthy();
    const sub = first.claims()!.sub;

    expect(await server.stop()).toBe(0);
    await expect(testFetch(`${issuer}/healthz`)).rejects.toThrow(); // really gone
    await server.start();

    // same browser, same cookies: the redirects lead straight back to the application, no login form
    const auth = await authorizationRequest(config, REDIRECT, { scope: 'openid email' });
    const again = await browser.follow(auth.url, {}, REDIRECT);
    expect(again.url.href.startsWith(REDIRECT), `ended at ${again.url.href} (${again.res.status})`).toBe(true);
    expect(again.url.searchParams.get('code')).toBeTruthy();
    const second = await exchangeCode(config, auth, again.url);
    expect(second.claims()!.sub).toBe(sub);

    const refreshed = await oidc.refreshTokenGrant(config, first.refresh_token!);
    expect(refreshed.access_token).toBeTruthy();
    expect(refreshed.refresh_token).not.toBe(first.refresh_token);
    const info = await oidc.fetchUserInfo(config, refreshed.access_token, sub);
    expect(info.email).toBe(EMAIL);
  });
});
