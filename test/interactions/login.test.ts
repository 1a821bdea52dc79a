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

/** A sign-in page as the browser holds it: the URL it was read from and its HTML. */
interface Page {
  browser: Browser;
  url: URL;
  html: string;
}

/** The immediate answer to a posted form: a redirect (location) or a page (html). */
interface Step {
  res: Response;
  html: string;
  location: string | null;
  /** The answer as a page, to post its forms again (e.g. retrying the password after a 401). */
  page: Page;
}

function authUrl(issuer: string, clientId: string, params: Record<string, string> = {}): string {
  return `${issuer}/auth?${new URLSearchParams({ client_id: clientId, response_type: 'code', redirect_uri: REDIRECT, scope: 'openid', state: 'st', ...params })}`;
}

const uidOf = (page: Page) => /^\/interaction\/([^/]+)/.exec(page.url.pathname)![1]!;

/** The page's form posting to `/interaction/:uid<path>` (fails if the page has no such form). */
function formOf(page: Page, path: string): { action: URL; fields: Record<string, string> } {
  const action = `/interaction/${uidOf(page)}${path}`;
  expect(page.html, `no form posting to ${action}`).toContain(`action="${action}"`);
  const form = parseForm(page.html, `${action}"`);
  return { action: new URL(form.action, page.url), fields: form.fields };
}

/** Step 1 (identifier first): an "Email" field and "Continue", and no password field. */
function expectIdentifyPage(html: string): void {
  expect(html).toContain('<label for="lk-email">Email</label>');
  expect(html).toMatch(/<button[^>]*type="submit">Continue<\/button>/);
  expect(html).not.toContain('name="password"');
}

/** Step 2: a "Password" field and "Sign in", for the email given in step 1 (sent again, hidden). */
function expectPasswordPage(html: string, email: string): void {
  expect(html).toContain('<label for="lk-password">Password</label>');
  expect(html).toMatch(/<button[^>]*type="submit">Sign in<\/button>/);
  expect(html).toContain(`<span class="lk-identity-email">${email}</span>`);
  expect(parseForm(html, '/login"').fields.email).toBe(email);
}

/** The "Create a passkey" offer shown after a password sign-in. */
function expectOfferPage(html: string): void {
  expect(html).toContain('<h1 class="lk-title">Create a passkey for faster sign-in</h1>');
  expect(html).toMatch(/action="\/interaction\/[^/"]+\/offer\/skip"[\s\S]*?>Not now<\/button>/);
  expect(html).toMatch(/action="\/interaction\/[^/"]+\/offer\/never"[\s\S]*?>Don't ask again<\/button>/);
  expect(html).not.toContain('name="password"');
}

/** GETs a sign-in page (following redirects, stopping before the client). */
async function arrive(browser: Browser, url: string | URL): Promise<Page> {
  const got = await browser.follow(url, {}, REDIRECT);
  expect(got.res.status, `at ${got.url.href}`).toBe(200);
  return { browser, url: got.url, html: await got.res.text() };
}

/** Starts an authorization request and stops on the first sign-in page (the email step). */
async function openLogin(issuer: string, clientId: string, params: Record<string, string> = {}, browser = new Browser()): Promise<Page> {
  const page = await arrive(browser, authUrl(issuer, clientId, params));
  expect(page.url.pathname).toMatch(/^\/interaction\/[^/]+$/);
  expectIdentifyPage(page.html);
  return page;
}

/** Posts the page's form for `path` (with a recognisable User-Agent) and returns the immediate answer. */
async function submit(page: Page, path: string, fields: Record<string, string> = {}, replace = false): Promise<Step> {
  const form = formOf(page, path);
  const res = await page.browser.request(form.action, { method: 'POST', form: replace ? fields : { ...form.fields, ...fields }, headers: { 'user-agent': USER_AGENT } });
  const html = res.status >= 300 && res.status < 400 ? '' : await res.text();
  return { res, html, location: res.headers.get('location'), page: { browser: page.browser, url: form.action, html } };
}

/** The email step: "Continue" answers 303 back to the interaction, which now shows the next step. */
async function identify(page: Page, email: string): Promise<Page> {
  const step = await submit(page, '/identify', { email });
  expect(step.res.status, alertText(step.html)).toBe(303);
  const next = new URL(step.location!, step.page.url);
  expect(next.pathname).toBe(`/interaction/${uidOf(page)}`);
  return arrive(page.browser, next);
}

/** One sign-in attempt through the pages: the email step, then the password step. */
async function attempt(page: Page, email: string, password: string): Promise<Step> {
  const passwordPage = await identify(page, email);
  expectPasswordPage(passwordPage.html, email);
  return submit(passwordPage, '/login', { password });
}

/** After a failed password: types it again on the page that reported the failure. */
function retry(failed: Step, password: string): Promise<Step> {
  return submit(failed.page, '/login', { password });
}

/**
 * Follows a successful sign-in's redirects to the client, answering "Not now" on the passkey offer
 * when it appears; returns the callback URL and whether the offer was shown.
 */
async function finishAtClient(first: Step, browser = first.page.browser): Promise<{ callback: URL; offered: boolean }> {
  expect(first.res.status, alertText(first.html)).toBe(303);
  let offered = false;
  let done = await browser.follow(new URL(first.location!, first.page.url), {}, REDIRECT);
  for (let i = 0; i < 4 && !done.url.href.startsWith(REDIRECT) && done.res.status === 200; i++) {
    const html = await done.res.text();
    if (html.includes('/offer/skip"')) {
      // the passkey offer: "Not now"
      expect(offered, 'the offer is shown once').toBe(false);
      offered = true;
      expectOfferPage(html);
      const step = await submit({ browser, url: done.url, html }, '/offer/skip');
      expect(step.res.status).toBe(303);
      done = await browser.follow(new URL(step.location!, step.page.url), {}, REDIRECT);
    } else if (html.includes('/session/end/confirm')) {
      // Signing in as someone else than the session's account first ends that session: node-oidc-provider
      // answers with an auto-submitting form (its logout confirmation), which a browser would post.
      const form = parseForm(html, '/session/end/confirm');
      done = await browser.follow(new URL(form.action, done.url), { form: form.fields }, REDIRECT);
    } else {
      break;
    }
  }
  expect(done.url.href.startsWith(REDIRECT), `ended at ${done.url.href}`).toBe(true);
  expect(done.url.searchParams.get('code')).toBeTruthy();
  return { callback: done.url, offered };
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
    for (const email of ['bob@example.test', 'cy@example.test', 'dee@example.test', 'eve@example.test', 'fay@example.test', 'gil@example.test', 'hal@example.test', 'ivy@example.test', 'jo@example.test']) {
      await users.create({ realmId: 'default', email, password: PASSWORD });
    }
    await users.create({ realmId: 'default', email: 'disabled@example.test', password: PASSWORD });
    await users.setDisabled('default', 'disabled@example.test', true);
    bus.on('*', (e) => void events.push(e));
  });
  afterAll(async () => server?.close());

  it('the first page asks only for the email; "Continue" leads to the password page for that email', async () => {
    const page = await openLogin(server.issuer, clientId);
    const form = formOf(page, '/identify');
    expect(Object.keys(form.fields).sort()).toEqual(['csrf', 'email']);
    expect(form.fields.csrf).toBeTruthy();
    expect(page.html).toContain('Sign in with a passkey');
    const passwordPage = await identify(page, 'bob@example.test');
    expectPasswordPage(passwordPage.html, 'bob@example.test');
    const login = formOf(passwordPage, '/login');
    expect(Object.keys(login.fields).sort()).toEqual(['csrf', 'email', 'password']);
    expect(login.fields.csrf).toBe(form.fields.csrf);
    // a reload stays on the password step
    expectPasswordPage((await arrive(page.browser, page.url)).html, 'bob@example.test');
    // "Not you?" goes back to the email step
    const back = await submit(passwordPage, '/restart');
    expect(back.res.status).toBe(303);
    expectIdentifyPage((await arrive(page.browser, new URL(back.location!, back.page.url))).html);
  });

  it('an unknown email and a known email both get the password page, identical apart from the echoed email', async () => {
    const page = await openLogin(server.issuer, clientId);
    const unknown = await identify(page, 'nobody@example.test');
    const known = await identify(page, 'bob@example.test');
    expectPasswordPage(unknown.html, 'nobody@example.test');
    expectPasswordPage(known.html, 'bob@example.test');
    expect(known.html.replaceAll('bob@example.test', 'X')).toBe(unknown.html.replaceAll('nobody@example.test', 'X'));
    // a disabled account does not stand out either
    const disabled = await identify(page, 'disabled@example.test');
    expect(disabled.html.replaceAll('disabled@example.test', 'X')).toBe(unknown.html.replaceAll('nobody@example.test', 'X'));
  });

  it('a malformed email on the email step is 400 with a clear message, and the sign-in stays on the email step', async () => {
    const page = await openLogin(server.issuer, clientId);
    const seen = events.length;
    for (const email of ['not-an-email', 'ada@', '@example.test', 'ada@example', 'ada example@example.test', 'ada@@example.test', '', '   ']) {
      const res = await submit(page, '/identify', { email });
      expect(res.res.status, JSON.stringify(email)).toBe(400);
      expect(res.location).toBeNull();
      expect(alertText(res.html)).toBe('Enter a valid email address, like name@example.com.');
      expectIdentifyPage(res.html);
      // the field keeps what was typed (trimmed), points at the message and is marked invalid
      const field = /<input id="lk-email"[^>]*>/.exec(res.html)![0];
      expect(field).toContain(`value="${email.trim()}"`);
      expect(field).toContain('aria-describedby="lk-error"');
      expect(field).toContain('aria-invalid="true"');
      // the page is still the email step after a reload
      expectIdentifyPage((await arrive(page.browser, page.url)).html);
    }
    // what was typed is echoed escaped, never as markup
    const hostile = await submit(page, '/identify', { email: '"><script>alert(1)</script>' });
    expect(hostile.res.status).toBe(400);
    expect(hostile.html).not.toContain('<script>alert(1)</script>');
    expect(hostile.html).toContain('&lt;script&gt;');
    expect(events.slice(seen).filter((e) => e.type === 'signin.success')).toEqual([]);
    // the form still works afterwards
    await finishAtClient(await attempt(page, 'bob@example.test', PASSWORD));
  });

  it('the right password typed on several devices at once signs in on every one (no lock from attempts in flight)', async () => {
    // one person (or a family sharing an account) on four devices within the same second: none of them is a
    // failure, so the quick-failure lock (two failures closer than a second) must not trip
    const pages = await Promise.all([0, 1, 2, 3].map(async () => identify(await openLogin(server.issuer, clientId), 'hal@example.test')));
    const steps = await Promise.all(pages.map((page) => submit(page, '/login', { password: PASSWORD })));
    expect(steps.map((s) => s.res.status)).toEqual([303, 303, 303, 303]);
  });

  it('eight sign-ins of one account from one address at once, round after round, all reach the client (as npm run bench)', async () => {
    // bench/run.js's password sign-in: concurrent workers, each a new browser, one account, one address,
    // complete flows one after another; with the default limits none of them may be refused
    for (let round = 0; round < 3; round++) {
      const pages = await Promise.all(Array.from({ length: 8 }, async () => identify(await openLogin(server.issuer, clientId), 'jo@example.test')));
      const steps = await Promise.all(pages.map((page) => submit(page, '/login', { password: PASSWORD })));
      expect(steps.map((s) => s.res.status), `round ${round + 1}: ${steps.map((s) => alertText(s.html)).join(' | ')}`).toEqual(Array(8).fill(303));
      await Promise.all(steps.map((step) => finishAtClient(step)));
    }
  });

  it('an unknown email and a wrong password get the identical message and status', async () => {
    const page = await openLogin(server.issuer, clientId);
    const unknown = await attempt(page, 'nobody@example.test', PASSWORD);
    const wrong = await attempt(page, 'bob@example.test', WRONG);
    expect(unknown.res.status).toBe(401);
    expect(wrong.res.status).toBe(unknown.res.status);
    expect(alertText(unknown.html)).toBe('Incorrect email or password.');
    expect(alertText(wrong.html)).toBe(alertText(unknown.html));
    // both stay on the password step for the same email, ready for another try
    expectPasswordPage(unknown.html, 'nobody@example.test');
    expectPasswordPage(wrong.html, 'bob@example.test');
    // the pages differ only in the echoed email
    expect(wrong.html.replaceAll('bob@example.test', 'X')).toBe(unknown.html.replaceAll('nobody@example.test', 'X'));
  });

  it('signing in issues a new session id: a session cookie held before sign-in is never reused', async () => {
    const host = new URL(server.issuer).host;
    // Before any sign-in the provider stores no session (and sets no _session cookie), not even after the email step.
    const fresh = await openLogin(server.issuer, clientId);
    const interactionCookies = new Map(fresh.browser.cookies.get(host));
    expect(sessionCookie(fresh.browser, server.issuer)).toBeUndefined();
    const passwordPage = await identify(fresh, 'cy@example.test');
    expect(sessionCookie(fresh.browser, server.issuer)).toBeUndefined();
    const { callback: first } = await finishAtClient(await submit(passwordPage, '/login', { password: PASSWORD }));
    expect(first.searchParams.get('code')).toBeTruthy();
    const s1 = sessionCookie(fresh.browser, server.issuer)!;
    expect(s1).toBeTruthy();
    for (const [name, value] of interactionCookies) expect(value, name).not.toBe(s1);
    expect(fresh.url.pathname).not.toContain(s1);

    // An attacker plants their own valid session cookies in the victim's browser...
    const victim = new Browser();
    victim.cookies.set(host, new Map([...fresh.browser.cookies.get(host)!].filter(([name]) => name.startsWith('_session'))));
    // ...so prompt=login asks straight for the planted account's password; the victim answers "Not you?"
    const reauth = await arrive(victim, authUrl(server.issuer, clientId, { prompt: 'login' }));
    expect(sessionCookie(victim, server.issuer)).toBe(s1);
    expectPasswordPage(reauth.html, 'cy@example.test');
    const restarted = await submit(reauth, '/restart');
    expect(restarted.res.status).toBe(303);
    const page = await arrive(victim, new URL(restarted.location!, restarted.page.url));
    expectIdentifyPage(page.html);
    await finishAtClient(await attempt(page, 'dee@example.test', PASSWORD));
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
    const badTokens = [
      ['without', undefined],
      ['with a wrong', 'AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA'],
      ['with an empty', ''],
    ] as const;
    const withCsrf = (fields: Record<string, string>, csrf: string | undefined) => {
      const out = { ...fields };
      if (csrf === undefined) delete out.csrf;
      else out.csrf = csrf;
      return out;
    };

    for (const [label, csrf] of badTokens) {
      it(`posting the email form ${label} csrf field is 403 and does not move on to the password step`, async () => {
        const page = await openLogin(server.issuer, clientId);
        const res = await submit(page, '/identify', withCsrf({ ...formOf(page, '/identify').fields, email: 'eve@example.test' }, csrf), true);
        expect(res.res.status).toBe(403);
        expect(res.location).toBeNull();
        expect(res.html).toContain('csrf_failed');
        expect(res.html).not.toContain('eve@example.test');
        expectIdentifyPage((await arrive(page.browser, page.url)).html);
        // the real form still works afterwards
        await finishAtClient(await attempt(page, 'eve@example.test', PASSWORD));
      });

      it(`posting the password form ${label} csrf field is 403 and signs nobody in`, async () => {
        const page = await openLogin(server.issuer, clientId);
        const passwordPage = await identify(page, 'eve@example.test');
        const seen = events.length;
        const res = await submit(passwordPage, '/login', withCsrf({ ...formOf(passwordPage, '/login').fields, password: PASSWORD }, csrf), true);
        expect(res.res.status).toBe(403);
        expect(res.location).toBeNull();
        expect(res.html).toContain('csrf_failed');
        expect(sessionCookie(page.browser, server.issuer)).toBeUndefined();
        expect(events.slice(seen).filter((e) => e.type === 'signin.success')).toEqual([]);
        // the real form still works afterwards
        await finishAtClient(await submit(passwordPage, '/login', { password: PASSWORD }));
      });
    }

    it('a csrf token of another interaction is refused on the email and on the password step', async () => {
      const a = await openLogin(server.issuer, clientId);
      const b = await openLogin(server.issuer, clientId);
      const tokenB = formOf(b, '/identify').fields.csrf!;
      expect(formOf(a, '/identify').fields.csrf).not.toBe(tokenB);
      const identifyRes = await submit(a, '/identify', { csrf: tokenB, email: 'eve@example.test' });
      expect(identifyRes.res.status).toBe(403);
      const passwordPage = await identify(a, 'eve@example.test');
      const res = await submit(passwordPage, '/login', { csrf: tokenB, password: PASSWORD });
      expect(res.res.status).toBe(403);
      expect(sessionCookie(a.browser, server.issuer)).toBeUndefined();
    });
  });

  it('pages carry a strict Content-Security-Policy, nosniff and a Referrer-Policy', async () => {
    const browser = new Browser();
    const login = await browser.follow(authUrl(server.issuer, clientId), {}, REDIRECT);
    const first: Page = { browser, url: login.url, html: await login.res.clone().text() };
    const badEmail = (await submit(first, '/identify', { email: 'nope' })).res;
    const identified = await submit(first, '/identify', { email: 'ivy@example.test' });
    const passwordPage = await browser.request(new URL(identified.location!, identified.page.url));
    const second: Page = { browser, url: new URL(identified.location!, identified.page.url), html: await passwordPage.clone().text() };
    const wrong = await submit(second, '/login', { password: WRONG });
    const right = await retry(wrong, PASSWORD);
    expect(right.res.status).toBe(303);
    const offer = await browser.request(new URL(right.location!, right.page.url));
    const providerError = await testFetch(`${server.issuer}/auth?client_id=nope&response_type=code&redirect_uri=${encodeURIComponent(REDIRECT)}&scope=openid`, { redirect: 'manual' });
    const expired = await testFetch(`${server.issuer}/interaction/does-not-exist`, { redirect: 'manual' });
    const pages = { login: login.res, passwordPage, badEmail, wrong: wrong.res, offer, providerError, expired };
    for (const [name, res] of Object.entries(pages)) {
      expect(res.headers.get('content-type'), name).toContain('text/html');
      const csp = res.headers.get('content-security-policy') ?? '';
      expect(csp, name).toContain("frame-ancestors 'none'");
      expect(csp, name).toContain("default-src 'self'");
      expect(csp, name).not.toContain('unsafe-inline');
      expect(res.headers.get('x-content-type-options'), name).toBe('nosniff');
      expect(res.headers.get('referrer-policy'), name).toBe('no-referrer');
      expect(res.headers.get('x-frame-options'), name).toBe('DENY');
    }
    for (const [name, res] of Object.entries({ login: login.res, passwordPage, badEmail, wrong: wrong.res, offer })) {
      expect(res.headers.get('cache-control'), name).toContain('no-store');
    }
    expect(login.res.status).toBe(200);
    expect(passwordPage.status).toBe(200);
    expect(badEmail.status).toBe(400);
    expect(wrong.res.status).toBe(401);
    expect(offer.status).toBe(200);
    expectOfferPage(await offer.text());
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
    const wrong = await retry(res, WRONG);
    expect(wrong.res.status).toBe(401);
    expect(alertText(wrong.html)).toBe('Incorrect email or password.');
  });

  it('emits sign-in events: success with user, method, client, realm, address and user agent; failure with a reason and no user', async () => {
    const seen = events.length;
    const page = await openLogin(server.issuer, clientId);
    await attempt(page, 'ada@example.test', WRONG);
    await attempt(page, 'ghost@example.test', WRONG);
    const empty = await attempt(page, 'ada@example.test', '');
    expect(empty.res.status).toBe(400);
    expect(alertText(empty.html)).toBe('Enter your email and your password.');
    expectPasswordPage(empty.html, 'ada@example.test');
    const { callback } = await finishAtClient(await retry(empty, PASSWORD));
    const mine = events.slice(seen);
    expect(mine.map((e) => e.type)).toEqual(['signin.failure', 'signin.failure', 'signin.failure', 'signin.success']);
    const [wrong, unknown, emptyEvent, success] = mine as [LatchkeyEvent, LatchkeyEvent, LatchkeyEvent, LatchkeyEvent];
    expect(success).toMatchObject({ userId: adaId, method: 'password', clientId, realm: 'default', issuer: server.issuer, userAgent: USER_AGENT });
    expect(success.address).toMatch(/127\.0\.0\.1|::1/);
    expect(Number.isNaN(Date.parse(success.at))).toBe(false);
    expect(success.reason).toBeUndefined();
    for (const failure of [wrong, unknown, emptyEvent]) {
      expect(failure).toMatchObject({ method: 'password', clientId, realm: 'default', userAgent: USER_AGENT });
      expect(failure.address).toMatch(/127\.0\.0\.1|::1/);
      expect(failure.userId).toBeUndefined();
      expect('userId' in failure).toBe(false);
    }
    // an unknown email and a wrong password look the same in the events too
    expect(wrong.reason).toBe('invalid_credentials');
    expect(unknown.reason).toBe('invalid_credentials');
    expect(emptyEvent.reason).toBe('invalid_input');
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

  describe('the passkey offer after a password sign-in', () => {
    const snoozedUntil = async (email: string) => (await server.running.services.users.findByEmail('default', email))!.passkeyOfferSnoozedUntil;

    /** Signs in with the password through the pages; returns where the successful password step leads. */
    async function passwordSignIn(email: string): Promise<Page | URL> {
      const page = await openLogin(server.issuer, clientId);
      const signedIn = await attempt(page, email, PASSWORD);
      expect(signedIn.res.status, alertText(signedIn.html)).toBe(303);
      const next = await page.browser.follow(new URL(signedIn.location!, signedIn.page.url), {}, REDIRECT);
      if (next.url.href.startsWith(REDIRECT)) return next.url;
      expect(next.res.status).toBe(200);
      expect(next.url.pathname).toBe(`/interaction/${uidOf(page)}`);
      return { browser: page.browser, url: next.url, html: await next.res.text() };
    }

    it('is shown to a user without a passkey, before the client gets a code; "Not now" continues to the client', async () => {
      const seen = events.length;
      const offer = await passwordSignIn('gil@example.test');
      expect(offer).not.toBeInstanceOf(URL);
      const page = offer as Page;
      expectOfferPage(page.html);
      // the offer's forms need the interaction's csrf token too
      const forged = await submit(page, '/offer/skip', {}, true);
      expect(forged.res.status).toBe(403);
      expect(forged.html).toContain('csrf_failed');
      expect(await snoozedUntil('gil@example.test')).toBeNull();

      const skipped = await submit(page, '/offer/skip');
      expect(skipped.res.status).toBe(303);
      const done = await page.browser.follow(new URL(skipped.location!, skipped.page.url), {}, REDIRECT);
      expect(done.url.href.startsWith(REDIRECT), `ended at ${done.url.href}`).toBe(true);
      expect(done.url.searchParams.get('code')).toBeTruthy();
      expect(sessionCookie(page.browser, server.issuer)).toBeTruthy();
      expect(events.slice(seen).map((e) => [e.type, e.method, e.userId])).toEqual([['signin.success', 'password', expect.any(String)]]);

      // "Not now" snoozes the offer (30 days by default): the next sign-in goes straight to the client
      const until = (await snoozedUntil('gil@example.test'))!;
      expect(until).toBeGreaterThan(Date.now() + 29 * 86_400_000);
      expect(until).toBeLessThan(Date.now() + 31 * 86_400_000);
      expect(await passwordSignIn('gil@example.test')).toBeInstanceOf(URL);
      // ...and only snoozes it: once the snooze is over, the offer is back
      await server.running.services.db('users').where({ email: 'gil@example.test' }).update({ passkey_offer_snoozed_until: Date.now() - 1000 });
      const again = await passwordSignIn('gil@example.test');
      expect(again).not.toBeInstanceOf(URL);
      expectOfferPage((again as Page).html);
    });

    it('"Don\'t ask again" continues to the client, and the next sign-in of that user shows no offer', async () => {
      const offer = await passwordSignIn('hal@example.test');
      expect(offer).not.toBeInstanceOf(URL);
      const page = offer as Page;
      expectOfferPage(page.html);
      const never = await submit(page, '/offer/never');
      expect(never.res.status).toBe(303);
      const done = await page.browser.follow(new URL(never.location!, never.page.url), {}, REDIRECT);
      expect(done.url.href.startsWith(REDIRECT), `ended at ${done.url.href}`).toBe(true);
      expect(done.url.searchParams.get('code')).toBeTruthy();
      expect(await snoozedUntil('hal@example.test')).toBeGreaterThan(Date.now() + 100 * 365 * 86_400_000);

      const next = await passwordSignIn('hal@example.test');
      expect(next).toBeInstanceOf(URL);
      expect((next as URL).searchParams.get('code')).toBeTruthy();
    });

    it('cannot be used to skip the password: answering it before signing in is refused', async () => {
      const page = await openLogin(server.issuer, clientId);
      const passwordPage = await identify(page, 'ivy@example.test');
      const uid = uidOf(page);
      const csrf = formOf(passwordPage, '/login').fields.csrf!;
      for (const path of ['/offer/skip', '/offer/never']) {
        const res = await page.browser.request(`${server.issuer}/interaction/${uid}${path}`, { form: { csrf } });
        expect(res.status, path).toBe(400);
        expect(res.headers.get('location'), path).toBeNull();
        expect(alertText(await res.text()), path).toBe('Start by entering your email.');
      }
      expect(sessionCookie(page.browser, server.issuer)).toBeUndefined();
    });
  });

  it('logs never contain a password, a code or a query string with one', async () => {
    // some traffic with secrets in the query string and the body
    const page = await openLogin(server.issuer, clientId);
    const failed = await attempt(page, 'fay@example.test', WRONG);
    await finishAtClient(await retry(failed, PASSWORD));
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
    for (const email of ['locked@example.test', 'locked2@example.test', 'reset@example.test', 'burst@example.test']) await users.create({ realmId: 'default', email, password: PASSWORD });
  });
  afterAll(async () => server?.close());

  /** Three wrong passwords typed one after the other on the password page, then the right one. */
  async function lockOut(email: string) {
    const page = await openLogin(server.issuer, clientId);
    let last = await attempt(page, email, WRONG);
    for (let i = 0; i < 3; i++) {
      if (i > 0) last = await retry(last, WRONG);
      expect(last.res.status, `failure ${i + 1}`).toBe(401);
      expect(alertText(last.html)).toBe('Incorrect email or password.');
      expectPasswordPage(last.html, email);
    }
    const fourth = await retry(last, PASSWORD);
    return { page, fourth };
  }

  it('after 3 failures the 4th attempt is refused with 429, even with the right password', async () => {
    const { page, fourth } = await lockOut('locked@example.test');
    expect(fourth.res.status).toBe(429);
    expect(fourth.location).toBeNull();
    expect(alertText(fourth.html)).toMatch(/^Too many failed attempts\. Try again in 1 minute\.$/);
    expectPasswordPage(fourth.html, 'locked@example.test');
    const retryAfter = Number(fourth.res.headers.get('retry-after'));
    expect(retryAfter).toBeGreaterThan(0);
    expect(retryAfter).toBeLessThanOrEqual(60);
    expect(sessionCookie(page.browser, server.issuer)).toBeUndefined();
    // a new browser (new interaction) is locked out too
    const again = await openLogin(server.issuer, clientId);
    expect((await attempt(again, 'locked@example.test', PASSWORD)).res.status).toBe(429);
  });

  // The lock used to be read before the password was checked and the failure counted after it: wrong
  // passwords sent at once all passed the check before any was counted (12 of 12 checked). Each attempt
  // now reserves one of the failures left before its password is checked.
  it('wrong passwords sent at once: only 3 are checked, the rest refused with 429; then the right one is refused too', async () => {
    for (const email of ['burst@example.test', 'ghost-burst@example.test']) {
      const passwordPage = await identify(await openLogin(server.issuer, clientId), email);
      const answers = await Promise.all(Array.from({ length: 12 }, () => submit(passwordPage, '/login', { password: WRONG })));
      const statuses = answers.map((a) => a.res.status);
      expect(statuses.filter((s) => s === 401).length, `${email}: ${statuses.join(' ')}`).toBe(3);
      expect(statuses.filter((s) => s === 429).length, `${email}: ${statuses.join(' ')}`).toBe(9);
      for (const refused of answers.filter((a) => a.res.status === 429)) {
        // the answer of a locked account, as after three failures one after the other
        expect(alertText(refused.html)).toBe('Too many failed attempts. Try again in 1 minute.');
        const retryAfter = Number(refused.res.headers.get('retry-after'));
        expect(retryAfter).toBeGreaterThan(0);
        expect(retryAfter).toBeLessThanOrEqual(60);
      }
      const right = await submit(passwordPage, '/login', { password: PASSWORD });
      expect(right.res.status).toBe(429);
      expect(alertText(right.html)).toBe('Too many failed attempts. Try again in 1 minute.');
    }
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
    let last = await attempt(page, 'reset@example.test', WRONG);
    expect(last.res.status).toBe(401);
    last = await retry(last, WRONG);
    expect(last.res.status).toBe(401);
    await finishAtClient(await retry(last, PASSWORD));
    const next = await openLogin(server.issuer, clientId);
    for (let i = 0; i < 2; i++) expect((await attempt(next, 'reset@example.test', WRONG)).res.status).toBe(401);
    await finishAtClient(await attempt(next, 'reset@example.test', PASSWORD));
  });
});
