import { writeFileSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createRemoteJWKSet, customFetch, jwtVerify } from 'jose';
import * as oidc from 'openid-client';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { afterAll, afterEach, beforeAll, expect, it, vi } from 'vitest';
import { describeWithBrowser, launchChromium, startTestApp, watchConsole } from '../helpers/browser.js';
import { testFetch } from '../helpers/http.js';
import { startTestServer, type TestServer } from '../helpers/server.js';

const PASSWORD = 'plum-orbit-cactus-velvet-91';
const EMAIL = 'ada@example.test';
const NAME = 'Ada Lovelace';
/** A second person (the keyboard test): after "Not now" the offer is snoozed for that user, so each test signs in someone new. */
const KEYBOARD = { email: 'grace@example.test', name: 'Grace Hopper' };
const SCREENSHOT = '/tmp/latchkey-login.png';

/**
 * The relying party's redirect URI: a real page on its own origin that shows what it received, so
 * the browser ends the flow on a rendered document (not on a connection error).
 */
/** Error responses other than the browser's own /favicon.ico probe (the pages declare no icon). */
function unexpectedHttpErrors(httpErrors: string[]): string[] {
  return httpErrors.filter((e) => !e.endsWith(' /favicon.ico')).map((e) => e.replace(/\/interaction\/[^/]+/, '/interaction/:uid'));
}

interface Rp {
  issuer: string;
  clientId: string;
  config: oidc.Configuration;
}

describeWithBrowser('sign-in pages in Chromium', () => {
  let server: TestServer;
  let rp: Awaited<ReturnType<typeof startTestApp>>;
  let browser: Browser;
  let defaultRp: Rp;
  let acmeRp: Rp;
  const contexts: BrowserContext[] = [];

  async function registerClient(realm: string, issuer: string): Promise<Rp> {
    const created = await server.cli(['client', 'create', '--realm', realm, '--name', `Demo App (${realm})`, '--redirect-uri', rp.redirectUri, '--first-party']);
    expect(created.code, created.stderr).toBe(0);
    for (const person of [{ email: EMAIL, name: NAME }, KEYBOARD]) {
      const user = await server.cli(['user', 'create', '--realm', realm, '--email', person.email, '--name', person.name, '--password-stdin'], `${PASSWORD}\n`);
      expect(user.code, user.stderr).toBe(0);
    }
    const config = await oidc.discovery(
      new URL(issuer),
      created.json.client_id,
      { client_secret: created.json.client_secret, id_token_signed_response_alg: 'EdDSA' },
      undefined,
      { execute: [oidc.allowInsecureRequests], [oidc.customFetch]: testFetch } as any,
    );
    return { issuer, clientId: created.json.client_id, config };
  }

  beforeAll(async () => {
    rp = await startTestApp();
    server = await startTestServer();
    defaultRp = await registerClient('default', server.issuer);
    const acmeIssuer = `http://a.localhost:${server.port}`;
    const dir = mkdtempSync(join(tmpdir(), 'latchkey-browser-'));
    writeFileSync(join(dir, 'settings.json'), JSON.stringify({ branding: { primaryColor: '#0b7a5a' } }));
    const realm = await server.cli(['realm', 'create', '--id', 'acme', '--name', 'Acme', '--issuer', acmeIssuer, '--settings', join(dir, 'settings.json')]);
    expect(realm.code, realm.stderr).toBe(0);
    acmeRp = await registerClient('acme', acmeIssuer);
    browser = await launchChromium();
  });

  afterEach(async () => {
    while (contexts.length) await contexts.pop()!.close();
  });

  afterAll(async () => {
    await browser?.close();
    await server?.close();
    await rp?.close();
  });

  /** A fresh browser profile (no cookies, so no session) with console watching. */
  async function freshPage(): Promise<{ page: Page; seen: ReturnType<typeof watchConsole> }> {
    const context = await browser.newContext({ viewport: { width: 1000, height: 760 }, locale: 'en-US', colorScheme: 'light' });
    contexts.push(context);
    const page = await context.newPage();
    page.setDefaultTimeout(15_000);
    return { page, seen: watchConsole(page) };
  }

  async function authorizationUrl(target: Rp) {
    const verifier = oidc.randomPKCECodeVerifier();
    const state = oidc.randomState();
    const nonce = oidc.randomNonce();
    const url = oidc.buildAuthorizationUrl(target.config, {
      redirect_uri: rp.redirectUri,
      scope: 'openid email profile',
      code_challenge: await oidc.calculatePKCECodeChallenge(verifier),
      code_challenge_method: 'S256',
      state,
      nonce,
    });
    return { url, verifier, state, nonce };
  }

  /** On the relying party's page: checks `code` and `iss`, redeems the code, verifies the ID token. */
  async function finishAtRelyingParty(page: Page, target: Rp, flow: Awaited<ReturnType<typeof authorizationUrl>>, who = { email: EMAIL, name: NAME }) {
    await page.waitForURL((u) => u.href.startsWith(rp.redirectUri));
    const landed = new URL(page.url());
    expect(landed.searchParams.get('error'), landed.href).toBeNull();
    const code = landed.searchParams.get('code');
    expect(code).toBeTruthy();
    expect(landed.searchParams.get('iss')).toBe(target.issuer); // RFC 9207
    expect(landed.searchParams.get('state')).toBe(flow.state);
    // the browser is on a real, rendered page that shows the code
    await expect(page.getByRole('heading', { name: 'Callback received' }).isVisible()).resolves.toBe(true);
    expect(await page.locator('dd[data-param="code"]').textContent()).toBe(code);

    const tokens = await oidc.authorizationCodeGrant(target.config, landed, {
      pkceCodeVerifier: flow.verifier,
      expectedState: flow.state,
      expectedNonce: flow.nonce,
      idTokenExpected: true,
    });
    const jwks = createRemoteJWKSet(new URL(`${target.issuer}/jwks`), { [customFetch]: testFetch } as any);
    const { payload, protectedHeader } = await jwtVerify(tokens.id_token!, jwks, { issuer: target.issuer, audience: target.clientId });
    expect(protectedHeader.alg).toBe('EdDSA');
    expect(payload.email).toBe(who.email);
    expect(payload.name).toBe(who.name);
    expect(payload.nonce).toBe(flow.nonce);
    expect(tokens.claims()?.sub).toBe(payload.sub);
    return payload;
  }

  const activeElement = (page: Page) =>
    page.evaluate(() => {
      const el = document.activeElement as HTMLElement | null;
      return { tag: el?.tagName.toLowerCase(), id: el?.id, text: el?.textContent?.trim(), type: el?.getAttribute('type') };
    });

  /** Page 1 types the email and presses "Continue"; page 2 (same URL) asks for the password. */
  async function continueWithEmail(page: Page, email: string) {
    await page.getByLabel('Email').fill(email);
    await page.getByRole('button', { name: 'Continue', exact: true }).click();
    await page.getByLabel('Password').waitFor();
    await expect(page.title()).resolves.toContain('Enter your password');
    expect((await page.locator('.lk-identity-email').textContent())?.trim()).toBe(email);
  }

  /** Page 2 types the password and presses "Sign in"; the passkey offer follows. */
  async function signInWithPassword(page: Page, password: string) {
    await page.getByLabel('Password').fill(password);
    await page.getByRole('button', { name: 'Sign in', exact: true }).click();
  }

  /** The "Create a passkey" offer: its heading shows, and the page loads without CSP violations. */
  async function expectPasskeyOffer(page: Page, seen: ReturnType<typeof watchConsole>) {
    const heading = page.getByRole('heading', { level: 1, name: 'Create a passkey for faster sign-in' });
    await heading.waitFor();
    await expect(heading.isVisible()).resolves.toBe(true);
    await page.waitForLoadState('load');
    await expect(page.getByRole('button', { name: 'Not now', exact: true }).isVisible()).resolves.toBe(true);
    await expect(page.getByRole('button', { name: "Don't ask again", exact: true }).isVisible()).resolves.toBe(true);
    expect(seen.cspViolations).toEqual([]);
    expect(seen.errors).toEqual([]);
  }

  it('signs in with the mouse: email + "Continue", password + "Sign in", "Not now" on the passkey offer, code + iss on the redirect URI, a verified ID token', async () => {
    const { page, seen } = await freshPage();
    const flow = await authorizationUrl(defaultRp);
    const res = await page.goto(flow.url.href);
    expect(res?.status()).toBe(200);
    // a navigation gets the first page in the authorization response itself (no redirect to /interaction/<uid>)
    expect(new URL(page.url()).pathname).toBe('/auth');
    expect(res?.request().redirectedFrom()).toBeNull();
    expect(res?.headers()['content-security-policy']).toContain("script-src 'self'");
    await expect(page.title()).resolves.toContain('Sign in');
    expect(await page.getByRole('heading', { level: 1 }).textContent()).toContain('Demo App (default)');

    // the stylesheet really applied (no CSP block, right path): the card has its background and radius
    const card = await page.locator('main.lk-card').evaluate((el) => {
      const s = getComputedStyle(el);
      return { bg: s.backgroundColor, radius: s.borderTopLeftRadius, width: el.getBoundingClientRect().width };
    });
    expect(card).toMatchObject({ bg: 'rgb(255, 255, 255)', radius: '12px' });
    expect(card.width).toBeGreaterThan(300);
    // the empty alert region is present for announcements but not shown
    await expect(page.getByRole('alert').isVisible()).resolves.toBe(false);

    // identifier first: the first page asks only for the email
    await expect(page.getByLabel('Password').count()).resolves.toBe(0);
    await expect(page.getByRole('button', { name: 'Continue', exact: true }).isVisible()).resolves.toBe(true);

    await page.screenshot({ path: SCREENSHOT, fullPage: true });
    expect(seen.cspViolations).toEqual([]);

    await continueWithEmail(page, EMAIL);
    expect(await page.getByRole('heading', { level: 1 }).textContent()).toContain('Demo App (default)');
    await expect(page.getByRole('alert').isVisible()).resolves.toBe(false);
    expect(seen.cspViolations).toEqual([]);
    await signInWithPassword(page, PASSWORD);

    await expectPasskeyOffer(page, seen);
    await page.screenshot({ path: '/tmp/latchkey-login-offer.png', fullPage: true });
    await page.getByRole('button', { name: 'Not now', exact: true }).click();

    const payload = await finishAtRelyingParty(page, defaultRp, flow);
    expect(payload.iss).toBe(server.issuer);
    expect(seen.cspViolations).toEqual([]);
    expect(seen.errors).toEqual([]);
    expect(unexpectedHttpErrors(seen.httpErrors)).toEqual([]);
  });

  it('signs in with the keyboard only: Enter on "Continue", a wrong password is announced in the alert region, then Tab/Enter succeed and reach "Not now"', async () => {
    const { page, seen } = await freshPage();
    const flow = await authorizationUrl(defaultRp);
    await page.goto(flow.url.href);

    // the email field is focused on arrival; Tab then reaches "Continue"
    await vi.waitFor(async () => expect(await activeElement(page)).toMatchObject({ id: 'lk-email' }));
    await page.keyboard.type(KEYBOARD.email);
    await page.keyboard.press('Tab');
    expect(await activeElement(page)).toMatchObject({ tag: 'button', text: 'Continue' });
    await Promise.all([page.waitForResponse((r) => r.request().method() === 'POST' && r.url().endsWith('/identify')), page.keyboard.press('Enter')]);

    // the password page: its field is focused on arrival
    await page.getByLabel('Password').waitFor();
    expect((await page.locator('.lk-identity-email').textContent())?.trim()).toBe(KEYBOARD.email);
    await vi.waitFor(async () => expect(await activeElement(page)).toMatchObject({ id: 'lk-password' }));
    await page.keyboard.type('definitely-not-the-password-42');
    await Promise.all([page.waitForResponse((r) => r.request().method() === 'POST' && r.url().endsWith('/login')), page.keyboard.press('Enter')]);
    await page.waitForSelector('#lk-error p');

    const alert = page.getByRole('alert');
    await expect(alert.isVisible()).resolves.toBe(true);
    expect((await alert.textContent())?.trim()).toBe('Incorrect email or password.');
    expect(await alert.getAttribute('aria-live')).toBe('assertive');
    // the field points at the message and is marked invalid; the email is kept, the password is not
    const password = page.getByLabel('Password');
    expect(await password.getAttribute('aria-describedby')).toBe('lk-error');
    expect(await password.getAttribute('aria-invalid')).toBe('true');
    expect((await page.locator('.lk-identity-email').textContent())?.trim()).toBe(KEYBOARD.email);
    expect(await page.locator('input[name="email"]').inputValue()).toBe(KEYBOARD.email);
    expect(await password.inputValue()).toBe('');
    await page.screenshot({ path: '/tmp/latchkey-login-error.png', fullPage: true });

    // focus goes straight to the password field; Tab then reaches the "Sign in" button
    await vi.waitFor(async () => expect(await activeElement(page)).toMatchObject({ id: 'lk-password' }));
    await page.keyboard.type(PASSWORD);
    await page.keyboard.press('Tab');
    expect(await activeElement(page)).toMatchObject({ tag: 'button', text: 'Sign in' });
    await page.keyboard.press('Enter');

    // the passkey offer: Tab (at most a few times) reaches "Not now", Enter presses it
    await expectPasskeyOffer(page, seen);
    for (let i = 0; i < 6 && (await activeElement(page)).text !== 'Not now'; i++) await page.keyboard.press('Tab');
    expect(await activeElement(page)).toMatchObject({ tag: 'button', text: 'Not now' });
    await page.keyboard.press('Enter');

    await finishAtRelyingParty(page, defaultRp, flow, KEYBOARD);
    expect(seen.cspViolations).toEqual([]);
    expect(seen.errors).toEqual([]);
    expect(unexpectedHttpErrors(seen.httpErrors)).toEqual(['401 POST /interaction/:uid/login']);
  });

  it('signs in on a second realm domain (a.localhost) with its own branding, issuer and keys', async () => {
    const { page, seen } = await freshPage();
    const flow = await authorizationUrl(acmeRp);
    expect(flow.url.host).toBe(`a.localhost:${server.port}`);
    const res = await page.goto(flow.url.href);
    expect(res?.status()).toBe(200);
    expect(new URL(page.url()).host).toBe(`a.localhost:${server.port}`);
    expect((await page.locator('.lk-realm').textContent())?.trim()).toBe('Acme');
    // the realm colour arrives through /assets/realm.css
    const background = (name: string) => page.getByRole('button', { name, exact: true }).evaluate((el) => getComputedStyle(el).backgroundColor);
    expect(await background('Continue')).toBe('rgb(11, 122, 90)');

    await page.screenshot({ path: '/tmp/latchkey-login-acme.png', fullPage: true });

    await continueWithEmail(page, EMAIL);
    expect(new URL(page.url()).host).toBe(`a.localhost:${server.port}`);
    expect((await page.locator('.lk-realm').textContent())?.trim()).toBe('Acme');
    expect(await background('Sign in')).toBe('rgb(11, 122, 90)');
    await signInWithPassword(page, PASSWORD);
    // the offer on this realm too (the user's "Not now" on the default realm does not carry over)
    await expectPasskeyOffer(page, seen);
    expect(new URL(page.url()).host).toBe(`a.localhost:${server.port}`);
    await page.getByRole('button', { name: 'Not now', exact: true }).click();

    const payload = await finishAtRelyingParty(page, acmeRp, flow);
    expect(payload.iss).toBe(`http://a.localhost:${server.port}`);
    expect(seen.cspViolations).toEqual([]);
    expect(seen.errors).toEqual([]);
    expect(unexpectedHttpErrors(seen.httpErrors)).toEqual([]);
  });

  it('reports CSP violations on the console, so the "no violations" checks above can fail (canary)', async () => {
    const { page, seen } = await freshPage();
    const flow = await authorizationUrl(defaultRp);
    await page.goto(flow.url.href);
    // an inline script is exactly what the pages' CSP forbids: the browser must refuse and say so
    await page.addScriptTag({ content: 'window.__latchkeyInline = true;' }).catch(() => undefined);
    await vi.waitFor(() => expect(seen.cspViolations.length).toBeGreaterThan(0));
    expect(seen.cspViolations.join('\n')).toMatch(/script-src/);
    expect(await page.evaluate(() => (window as any).__latchkeyInline)).toBeUndefined();
  });
});
