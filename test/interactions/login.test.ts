import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/load.js';
import type { LatchkeyEvent } from '../../src/events/bus.js';
import { createServices } from '../../src/server/services.js';
import { startServer, type RunningServer } from '../../src/server/start.js';
import { describeEachDatabase, freshDatabase, type DatabaseKind, type TestDatabase } from '../helpers/databases.js';
import { Browser, parseForm, testFetch } from '../helpers/http.js';
import { freePort, startTestServer, TEST_OVERRIDES, type TestServer } from '../helpers/server.js';

const REDIRECT = 'http://app.example.test/callback';
const PASSWORD = 'plum-orbit-cactus-velvet-91';
const WRONG = 'quartz-meadow-lantern-fig-37';
const USER_AGENT = 'LatchkeyLoginTest/1.0';

interface Server {
  issuer: string;
  running: RunningServer;
  close(): Promise<void>;
}

/** The real server with a pino logger writing every line (at trace level) into `lines`. */
async function startLoggedServer(kind: DatabaseKind, lines: string[]): Promise<Server> {
  const db: TestDatabase = await freshDatabase(kind);
  const port = await freePort();
  const dataDir = mkdtempSync(join(tmpdir(), 'latchkey-data-'));
  const issuer = `http://localhost:${port}`;
  const config = loadConfig({
    env: { DATABASE_URL: db.url, LATCHKEY_SECRET: 's'.repeat(43), LATCHKEY_ISSUER: issuer, PORT: String(port) },
    cwd: dataDir,
    overrides: { ...TEST_OVERRIDES, log: { level: 'trace' }, dataDir, server: { host: '127.0.0.1', port } },
  });
  const log = pino({ level: 'trace' }, { write: (line: string) => void lines.push(line) });
  const services = await createServices(config, { log });
  const running = await startServer(config, { services });
  return {
    issuer,
    running,
    async close() {
      await running.close();
      await db.drop();
    },
  };
}

/** The text of the page's alert region (where sign-in errors are shown). */
function alertText(html: string): string {
  const m = /<div id="lk-error"[^>]*>([\s\S]*?)<\/div>/.exec(html);
  return (m?.[1] ?? '').replace(/<[^>]+>/g, '').trim();
}

interface LoginPage {
  browser: Browser;
  url: URL;
  action: URL;
  fields: Record<string, string>;
  html: string;
}

function authUrl(issuer: string, clientId: string, params: Record<string, string> = {}): string {
  return `${issuer}/auth?${new URLSearchParams({ client_id: clientId, response_type: 'code', redirect_uri: REDIRECT, scope: 'openid', state: 'st', ...params })}`;
}

/** Starts an authorization request and stops on the sign-in page. */
async function openLogin(issuer: string, clientId: string, params: Record<string, string> = {}, browser = new Browser()): Promise<LoginPage> {
  const page = await browser.follow(authUrl(issuer, clientId, params), {}, REDIRECT);
  expect(page.res.status).toBe(200);
  const html = await page.res.text();
  expect(html).toContain('name="password"');
  const form = parseForm(html, '/login');
  return { browser, url: page.url, action: new URL(form.action, page.url), fields: form.fields, html };
}

/** Posts the sign-in form (with a recognisable User-Agent) and returns the immediate answer. */
async function post(page: LoginPage, fields: Record<string, string>): Promise<{ res: Response; html: string; location: string | null }> {
  const res = await page.browser.request(page.action, { form: fields, headers: { 'user-agent': USER_AGENT } });
  const html = res.status >= 300 && res.status < 400 ? '' : await res.text();
  return { res, html, location: res.headers.get('location') };
}

const attempt = (page: LoginPage, email: string, password: string) => post(page, { ...page.fields, email, password });

/** Follows a successful sign-in's redirects to the client; returns the callback URL. */
async function finishAtClient(page: LoginPage, first: { res: Response; location: string | null }): Promise<URL> {
  expect(first.res.status).toBe(303);
  let done = await page.browser.follow(new URL(first.location!, page.action), {}, REDIRECT);
  // Signing in as someone else than the session's account first ends that session: node-oidc-provider
  // answers with an auto-submitting form (its logout confirmation), which a browser would post.
  for (let i = 0; i < 3 && !done.url.href.startsWith(REDIRECT) && done.res.status === 200; i++) {
    const html = await done.res.text();
    if (!html.includes('/session/end/confirm')) break;
    const form = parseForm(html, '/session/end/confirm');
    done = await page.browser.follow(new URL(form.action, done.url), { form: form.fields }, REDIRECT);
  }
  expect(done.url.href.startsWith(REDIRECT), `ended at ${done.url.href}`).toBe(true);
  expect(done.url.searchParams.get('code')).toBeTruthy();
  return done.url;
}

const sessionCookie = (browser: Browser, issuer: string) => browser.cookies.get(new URL(issuer).host)?.get('_session');

describeEachDatabase('sign-in page', (kind) => {
  const lines: string[] = [];
  const events: LatchkeyEvent[] = [];
  let server: Server;
  let clientId: string;
  let clientSecret: string;
  let adaId: string;
  const codes: string[] = [];

  beforeAll(async () => {
    server = await startLoggedServer(kind, lines);
    const { clients, users, events: bus } = server.running.services;
    const client = await clients.create({ realmId: 'default', name: 'Login Test App', redirectUris: [REDIRECT], firstParty: true });
    clientId = client.client_id;
    clientSecret = client.client_secret!;
    adaId = (await users.create({ realmId: 'default', email: 'ada@example.test', name: 'Ada', password: PASSWORD })).id;
    for (const email of ['bob@example.test', 'cy@example.test', 'dee@example.test', 'eve@example.test', 'fay@example.test']) {
      await users.create({ realmId: 'default', email, password: PASSWORD });
    }
    await users.create({ realmId: 'default', email: 'disabled@example.test', password: PASSWORD });
    await users.setDisabled('default', 'disabled@example.test', true);
    bus.on('*', (e) => void events.push(e));
  });
  afterAll(async () => server?.close());

  it('an unknown email and a wrong password get the identical message and status', async () => {
    const page = await openLogin(server.issuer, clientId);
    const unknown = await attempt(page, 'nobody@example.test', PASSWORD);
    const wrong = await attempt(page, 'bob@example.test', WRONG);
    expect(unknown.res.status).toBe(401);
    expect(wrong.res.status).toBe(unknown.res.status);
    expect(alertText(unknown.html)).toBe('Incorrect email or password.');
    expect(alertText(wrong.html)).toBe(alertText(unknown.html));
    // the pages differ only in the echoed email
    expect(wrong.html.replaceAll('bob@example.test', 'X')).toBe(unknown.html.replaceAll('nobody@example.test', 'X'));
  });

  it('signing in issues a new session id: a session cookie held before sign-in is never reused', async () => {
    const host = new URL(server.issuer).host;
    // Before any sign-in the provider stores no session (and sets no _session cookie).
    const fresh = await openLogin(server.issuer, clientId);
    const interactionCookies = new Map(fresh.browser.cookies.get(host));
    expect(sessionCookie(fresh.browser, server.issuer)).toBeUndefined();
    const first = await finishAtClient(fresh, await attempt(fresh, 'cy@example.test', PASSWORD));
    expect(first.searchParams.get('code')).toBeTruthy();
    const s1 = sessionCookie(fresh.browser, server.issuer)!;
    expect(s1).toBeTruthy();
    for (const [name, value] of interactionCookies) expect(value, name).not.toBe(s1);
    expect(fresh.url.pathname).not.toContain(s1);

    // An attacker plants their own valid session cookies in the victim's browser...
    const victim = new Browser();
    victim.cookies.set(host, new Map([...fresh.browser.cookies.get(host)!].filter(([name]) => name.startsWith('_session'))));
    const page = await openLogin(server.issuer, clientId, { prompt: 'login' }, victim);
    expect(sessionCookie(victim, server.issuer)).toBe(s1);
    await finishAtClient(page, await attempt(page, 'dee@example.test', PASSWORD));
    // ...and the victim's sign-in (as another account: the provider ends the planted session first,
    // then resumes the same interaction) moves to a new session id.
    const s2 = sessionCookie(victim, server.issuer)!;
    expect(s2).toBeTruthy();
    expect(s2).not.toBe(s1);
    const db = server.running.services.db;
    expect(await db('oidc_payloads').where({ model: 'Session', id: s1 }).first()).toBeUndefined();
    expect(await db('oidc_payloads').where({ model: 'Session', id: s2 }).first()).toBeTruthy();

    // The attacker's browser is not signed in as the victim (its old session is gone).
    const probe = await fresh.browser.follow(authUrl(server.issuer, clientId, { prompt: 'none' }), {}, REDIRECT);
    expect(probe.url.href.startsWith(REDIRECT)).toBe(true);
    expect(probe.url.searchParams.get('error')).toBe('login_required');
  });

  describe('CSRF', () => {
    for (const [label, csrf] of [
      ['without', undefined],
      ['with a wrong', 'AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA'],
      ['with an empty', ''],
    ] as const) {
      it(`posting the sign-in form ${label} csrf field is 403 and signs nobody in`, async () => {
        const page = await openLogin(server.issuer, clientId);
        const fields: Record<string, string> = { ...page.fields, email: 'eve@example.test', password: PASSWORD };
        if (csrf === undefined) delete fields.csrf;
        else fields.csrf = csrf;
        const seen = events.length;
        const res = await post(page, fields);
        expect(res.res.status).toBe(403);
        expect(res.location).toBeNull();
        expect(res.html).toContain('csrf_failed');
        expect(sessionCookie(page.browser, server.issuer)).toBeUndefined();
        expect(events.slice(seen).filter((e) => e.type === 'signin.success')).toEqual([]);
        // the real form still works afterwards
        await finishAtClient(page, await attempt(page, 'eve@example.test', PASSWORD));
      });
    }

    it('a csrf token of another interaction is refused', async () => {
      const a = await openLogin(server.issuer, clientId);
      const b = await openLogin(server.issuer, clientId);
      expect(a.fields.csrf).not.toBe(b.fields.csrf);
      const res = await post(a, { ...a.fields, csrf: b.fields.csrf!, email: 'eve@example.test', password: PASSWORD });
      expect(res.res.status).toBe(403);
    });
  });

  it('pages carry a strict Content-Security-Policy, nosniff and a Referrer-Policy', async () => {
    const browser = new Browser();
    const login = await browser.follow(authUrl(server.issuer, clientId), {}, REDIRECT);
    const providerError = await testFetch(`${server.issuer}/auth?client_id=nope&response_type=code&redirect_uri=${encodeURIComponent(REDIRECT)}&scope=openid`, { redirect: 'manual' });
    const expired = await testFetch(`${server.issuer}/interaction/does-not-exist`, { redirect: 'manual' });
    for (const res of [login.res, providerError, expired]) {
      expect(res.headers.get('content-type')).toContain('text/html');
      const csp = res.headers.get('content-security-policy') ?? '';
      expect(csp).toContain("frame-ancestors 'none'");
      expect(csp).toContain("default-src 'self'");
      expect(csp).not.toContain('unsafe-inline');
      expect(res.headers.get('x-content-type-options')).toBe('nosniff');
      expect(res.headers.get('referrer-policy')).toBe('no-referrer');
      expect(res.headers.get('x-frame-options')).toBe('DENY');
    }
    expect(login.res.status).toBe(200);
    expect(login.res.headers.get('cache-control')).toContain('no-store');
    expect(providerError.status).toBe(400);
    expect(expired.status).toBe(400);
  });

  it('a disabled user with the right password cannot sign in', async () => {
    const seen = events.length;
    const page = await openLogin(server.issuer, clientId);
    const res = await attempt(page, 'disabled@example.test', PASSWORD);
    expect(res.res.status).toBe(401);
    expect(res.location).toBeNull();
    expect(alertText(res.html)).toMatch(/disabled/i);
    expect(sessionCookie(page.browser, server.issuer)).toBeUndefined();
    const mine = events.slice(seen);
    expect(mine.map((e) => [e.type, e.reason])).toEqual([['signin.failure', 'account_disabled']]);
    expect(mine[0]!.userId).toBeUndefined();
    // a wrong password on a disabled account says nothing about the account
    const wrong = await attempt(page, 'disabled@example.test', WRONG);
    expect(wrong.res.status).toBe(401);
    expect(alertText(wrong.html)).toBe('Incorrect email or password.');
  });

  it('emits sign-in events: success with user, method, client, realm, address and user agent; failure with a reason and no user', async () => {
    const seen = events.length;
    const page = await openLogin(server.issuer, clientId);
    await attempt(page, 'ada@example.test', WRONG);
    await attempt(page, 'ghost@example.test', WRONG);
    await post(page, { ...page.fields, email: '', password: '' });
    const callback = await finishAtClient(page, await attempt(page, 'ada@example.test', PASSWORD));
    const mine = events.slice(seen);
    expect(mine.map((e) => e.type)).toEqual(['signin.failure', 'signin.failure', 'signin.failure', 'signin.success']);
    const [wrong, unknown, empty, success] = mine as [LatchkeyEvent, LatchkeyEvent, LatchkeyEvent, LatchkeyEvent];
    expect(success).toMatchObject({ userId: adaId, method: 'password', clientId, realm: 'default', issuer: server.issuer, userAgent: USER_AGENT });
    expect(success.address).toMatch(/127\.0\.0\.1|::1/);
    expect(Number.isNaN(Date.parse(success.at))).toBe(false);
    expect(success.reason).toBeUndefined();
    for (const failure of [wrong, unknown, empty]) {
      expect(failure).toMatchObject({ method: 'password', clientId, realm: 'default', userAgent: USER_AGENT });
      expect(failure.address).toMatch(/127\.0\.0\.1|::1/);
      expect(failure.userId).toBeUndefined();
      expect('userId' in failure).toBe(false);
    }
    // an unknown email and a wrong password look the same in the events too
    expect(wrong.reason).toBe('invalid_credentials');
    expect(unknown.reason).toBe('invalid_credentials');
    expect(empty.reason).toBe('invalid_input');
    for (const e of mine) expect(JSON.stringify(e)).not.toContain(PASSWORD);
    for (const e of mine) expect(JSON.stringify(e)).not.toContain(WRONG);

    // exchange the code too, so that the log test below sees a token request
    const token = await testFetch(`${server.issuer}/token`, {
      method: 'POST',
      headers: {
        'content-type': 'application/x-www-form-urlencoded',
        authorization: `Basic ${Buffer.from(`${clientId}:${clientSecret}`).toString('base64')}`,
      },
      body: new URLSearchParams({ grant_type: 'authorization_code', code: callback.searchParams.get('code')!, redirect_uri: REDIRECT }).toString(),
    });
    expect(token.status).toBe(200);
    codes.push(callback.searchParams.get('code')!);
  });

  it('logs never contain a password, a code or a query string with one', async () => {
    // some traffic with secrets in the query string and the body
    const page = await openLogin(server.issuer, clientId);
    await attempt(page, 'fay@example.test', WRONG);
    await finishAtClient(page, await attempt(page, 'fay@example.test', PASSWORD));
    await testFetch(`${server.issuer}/interaction/x?code=leaky-code-value&password=leaky-password`);
    await new Promise((r) => setTimeout(r, 50));
    const logged = lines;
    expect(logged.length).toBeGreaterThan(5);
    expect(logged.some((l) => l.includes('"msg":"request"'))).toBe(true);
    const text = logged.join('\n');
    expect(text).not.toContain(PASSWORD);
    expect(text).not.toContain(WRONG);
    expect(text).not.toContain(clientSecret);
    expect(text).not.toMatch(/code=/);
    expect(text).not.toContain('leaky');
    for (const code of codes) expect(text).not.toContain(code);
  });
});

describeEachDatabase('sign-in throttling', (kind) => {
  let server: TestServer;
  let clientId: string;

  beforeAll(async () => {
    server = await startTestServer({
      db: kind,
      overrides: { bruteForce: { maxFailuresPerAccount: 3, waitIncrementSeconds: 60, quickLoginCheckMilliseconds: 0 } },
    });
    const { clients, users } = server.services;
    clientId = (await clients.create({ realmId: 'default', name: 'Throttle App', redirectUris: [REDIRECT], firstParty: true })).client_id;
    for (const email of ['locked@example.test', 'locked2@example.test', 'reset@example.test']) await users.create({ realmId: 'default', email, password: PASSWORD });
  });
  afterAll(async () => server?.close());

  async function lockOut(email: string) {
    const page = await openLogin(server.issuer, clientId);
    for (let i = 0; i < 3; i++) {
      const res = await attempt(page, email, WRONG);
      expect(res.res.status, `failure ${i + 1}`).toBe(401);
      expect(alertText(res.html)).toBe('Incorrect email or password.');
    }
    const fourth = await attempt(page, email, PASSWORD);
    return { page, fourth };
  }

  it('after 3 failures the 4th attempt is refused with 429, even with the right password', async () => {
    const { page, fourth } = await lockOut('locked@example.test');
    expect(fourth.res.status).toBe(429);
    expect(fourth.location).toBeNull();
    expect(alertText(fourth.html)).toMatch(/^Too many failed attempts\. Try again in 1 minute\.$/);
    const retryAfter = Number(fourth.res.headers.get('retry-after'));
    expect(retryAfter).toBeGreaterThan(0);
    expect(retryAfter).toBeLessThanOrEqual(60);
    expect(sessionCookie(page.browser, server.issuer)).toBeUndefined();
    // a new browser (new interaction) is locked out too
    const again = await openLogin(server.issuer, clientId);
    expect((await attempt(again, 'locked@example.test', PASSWORD)).res.status).toBe(429);
  });

  it('a non-existent email is throttled in exactly the same way (no enumeration)', async () => {
    const real = await lockOut('locked2@example.test');
    const ghost = await lockOut('ghost@example.test');
    expect(ghost.fourth.res.status).toBe(429);
    expect(ghost.fourth.res.status).toBe(real.fourth.res.status);
    expect(alertText(ghost.fourth.html)).toBe(alertText(real.fourth.html));
    expect(ghost.fourth.res.headers.get('retry-after')).toBeTruthy();
  });

  it('a successful sign-in before the limit resets the count', async () => {
    const page = await openLogin(server.issuer, clientId);
    for (let i = 0; i < 2; i++) expect((await attempt(page, 'reset@example.test', WRONG)).res.status).toBe(401);
    await finishAtClient(page, await attempt(page, 'reset@example.test', PASSWORD));
    const next = await openLogin(server.issuer, clientId);
    for (let i = 0; i < 2; i++) expect((await attempt(next, 'reset@example.test', WRONG)).res.status).toBe(401);
    await finishAtClient(next, await attempt(next, 'reset@example.test', PASSWORD));
  });
});
