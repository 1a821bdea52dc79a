/**
 * /assets/passkeys.js in headless Chromium with a virtual authenticator (Chrome DevTools Protocol),
 * against a small stand-in server: the real rendered pages and static assets, the same CSP as the
 * application, and JSON endpoints that record what the script sends and answer what a test wants.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { generateAuthenticationOptions, generateRegistrationOptions } from '@simplewebauthn/server';
import type { Browser, BrowserContext, CDPSession, Page } from 'playwright-core';
import { afterAll, afterEach, beforeAll, beforeEach, expect, it } from 'vitest';
import { describeWithBrowser, launchChromium, watchConsole } from '../helpers/browser.js';
import { renderPage } from '../../src/views/render.js';
import { loadStaticAssets } from '../../src/views/static-assets.js';

const HOST = 'passkeys.localhost'; // mapped to 127.0.0.1 by CHROMIUM_ARGS; a secure context and a valid RP ID
const CSP = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' https: data:; connect-src 'self'; base-uri 'none'; object-src 'none'; frame-ancestors 'none'";
const CSRF = 'csrf-tok-1';

interface Recorded {
  path: string;
  headers: IncomingMessage['headers'];
  body: any;
}

type Answer = { status: number; body: unknown };

describeWithBrowser('passkeys.js in Chromium', () => {
  let server: Server;
  let origin: string;
  let browser: Browser;
  let context: BrowserContext;
  let page: Page;
  let cdp: CDPSession;
  let authenticatorId: string;
  let seen: ReturnType<typeof watchConsole>;
  const assets = loadStaticAssets();
  let posts: Recorded[] = [];
  let formPosts: string[] = [];
  /** What the verify endpoints answer next (default: a redirect to /done). */
  let verifyAnswer: Answer;
  /** Credential ids the registration options exclude. */
  let exclude: string[] = [];
  let pageLoads = 0;

  const layout = { realmName: 'Acme', title: 'Test' };
  const pages: Record<string, () => string> = {
    '/login': () =>
      renderPage('login', {
        layout,
        action: '/form/identify',
        csrf: CSRF,
        passkey: { optionsUrl: '/api/signin/options', verifyUrl: '/api/signin/verify' },
      }),
    '/password': () =>
      renderPage('password', {
        layout,
        action: '/form/login',
        csrf: CSRF,
        email: 'ada@example.com',
        changeEmailAction: '/form/restart',
        passkey: { optionsUrl: '/api/signin/options', verifyUrl: '/api/signin/verify' },
      }),
    '/account': () =>
      renderPage('account', {
        layout,
        csrf: CSRF,
        user: { email: 'ada@example.com' },
        credentials: [],
        register: { optionsUrl: '/api/register/options', verifyUrl: '/api/register/verify' },
      }),
    // the scripts on a page without any data attributes: nothing may happen
    '/bare': () => renderPage('mfa', { layout, csrf: CSRF, totpAction: '/form/totp' }).replace('</head>', '<script src="/assets/simplewebauthn-browser.js" defer></script><script src="/assets/passkeys.js" defer></script></head>'),
    '/done': () => renderPage('device-done', { layout }),
  };

  function send(res: ServerResponse, status: number, type: string, body: string | Buffer): void {
    res.writeHead(status, { 'content-type': type, 'content-security-policy': CSP, 'cache-control': 'no-store' });
    res.end(body);
  }

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', origin);
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    const raw = Buffer.concat(chunks).toString('utf8');
    const asset = assets.get(url.pathname);
    if (req.method === 'GET' && asset) return send(res, 200, asset.type, asset.body);
    if (req.method === 'GET' && pages[url.pathname]) {
      pageLoads += 1;
      return send(res, 200, 'text/html; charset=utf-8', pages[url.pathname]!());
    }
    if (req.method === 'POST' && url.pathname.startsWith('/form/')) {
      formPosts.push(`${url.pathname} ${raw}`);
      return send(res, 200, 'text/html; charset=utf-8', renderPage('device-done', { layout }));
    }
    if (req.method === 'POST' && url.pathname.startsWith('/api/')) {
      let body: any;
      try {
        body = JSON.parse(raw);
      } catch {
        body = { unparsable: raw };
      }
      posts.push({ path: url.pathname, headers: req.headers, body });
      const json = (status: number, value: unknown) => send(res, status, 'application/json', JSON.stringify(value));
      if (url.pathname === '/api/signin/options') {
        return json(200, await generateAuthenticationOptions({ rpID: HOST, userVerification: 'preferred', timeout: 60_000 }));
      }
      if (url.pathname === '/api/register/options') {
        return json(
          200,
          await generateRegistrationOptions({
            rpName: 'Acme',
            rpID: HOST,
            userName: 'ada@example.com',
            userID: new TextEncoder().encode('user-1'),
            attestationType: 'none',
            authenticatorSelection: { residentKey: 'required', userVerification: 'preferred' },
            excludeCredentials: exclude.map((id) => ({ id })),
          }),
        );
      }
      if (url.pathname.endsWith('/verify')) return json(verifyAnswer.status, verifyAnswer.body);
    }
    send(res, 404, 'text/plain', 'not found');
  }

  const postsTo = (path: string) => posts.filter((p) => p.path === path);

  beforeAll(async () => {
    server = createServer((req, res) => {
      handle(req, res).catch((err) => {
        res.writeHead(500).end(String(err));
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    origin = `http://${HOST}:${(server.address() as AddressInfo).port}`;
    browser = await launchChromium();
    context = await browser.newContext();
  });

  afterAll(async () => {
    await browser?.close();
    await new Promise<void>((resolve) => (server ? server.close(() => resolve()) : resolve()));
  });

  beforeEach(async () => {
    posts = [];
    formPosts = [];
    exclude = [];
    pageLoads = 0;
    verifyAnswer = { status: 200, body: { redirect: '/done' } };
    page = await context.newPage();
    seen = watchConsole(page);
    cdp = await context.newCDPSession(page);
    await cdp.send('WebAuthn.enable', { enableUI: false });
    const added = await cdp.send('WebAuthn.addVirtualAuthenticator', {
      options: { protocol: 'ctap2', transport: 'internal', hasResidentKey: true, hasUserVerification: true, isUserVerified: true, automaticPresenceSimulation: true },
    });
    authenticatorId = added.authenticatorId;
  });

  afterEach(async () => {
    await cdp.send('WebAuthn.removeVirtualAuthenticator', { authenticatorId }).catch(() => undefined);
    await page.close();
    expect(seen.cspViolations).toEqual([]);
  });

  async function registerPasskey(name: string): Promise<string> {
    await page.goto(`${origin}/account`);
    await page.getByLabel('Passkey name').fill(name);
    verifyAnswer = { status: 200, body: { reload: true } };
    const reloaded = page.waitForEvent('load');
    await page.getByRole('button', { name: 'Add a passkey' }).click();
    await reloaded; // { reload: true } reloaded the page
    expect(pageLoads).toBe(2);
    const verify = postsTo('/api/register/verify')[0]!;
    return verify.body.response.id as string;
  }

  it('registers a passkey: CSRF header, JSON bodies, the name, then reloads', async () => {
    await page.goto(`${origin}/account`);
    const create = page.locator('#lk-passkey-create');
    await expect.poll(() => create.isVisible()).toBe(true);
    await expect.poll(() => page.getByLabel('Passkey name').isVisible()).toBe(true);
    expect(await page.locator('[data-lk-passkey-unsupported]').isVisible()).toBe(false);
    await page.goto('about:blank');
    pageLoads = 0;

    const id = await registerPasskey('  Work laptop ');
    const [options] = postsTo('/api/register/options');
    // the browser's Related Origin Requests support travels with every options request (Chromium has it)
    expect(options!.body).toEqual({ relatedOrigins: true });
    expect(options!.headers['x-csrf-token']).toBe(CSRF);
    expect(options!.headers['content-type']).toBe('application/json');
    const [verify] = postsTo('/api/register/verify');
    expect(verify!.headers['x-csrf-token']).toBe(CSRF);
    expect(verify!.body.name).toBe('Work laptop');
    expect(verify!.body.response).toMatchObject({ id, rawId: id, type: 'public-key' });
    expect(typeof verify!.body.response.response.attestationObject).toBe('string');
    expect(seen.errors).toEqual([]);
  });

  it('says so when the authenticator already holds a credential for the account', async () => {
    const id = await registerPasskey('Laptop');
    exclude = [id];
    await page.getByRole('button', { name: 'Add a passkey' }).click();
    await expect.poll(() => page.locator('#lk-error').textContent()).toBe('This authenticator is already registered.');
    expect(await page.locator('#lk-error').isVisible()).toBe(true);
    expect(await page.locator('#lk-passkey-create').isDisabled()).toBe(false);
    expect(postsTo('/api/register/verify')).toHaveLength(1); // only the first registration got that far
  });

  it('signs in from the autofill (conditional mediation) when the user picks a passkey', async () => {
    await registerPasskey('Laptop');
    posts = [];
    verifyAnswer = { status: 200, body: { redirect: '/done' } };
    // the virtual authenticator answers a conditional request at once, like a user picking the passkey
    await page.goto(`${origin}/login`);
    await page.waitForURL(`${origin}/done`);
    expect(postsTo('/api/signin/options').map((p) => p.body)).toEqual([{ mode: 'conditional', relatedOrigins: true }]);
    const [verify] = postsTo('/api/signin/verify');
    expect(verify!.headers['x-csrf-token']).toBe(CSRF);
    expect(verify!.headers['content-type']).toBe('application/json');
    expect(verify!.body.response.type).toBe('public-key');
    expect(typeof verify!.body.response.response.signature).toBe('string');
    expect(seen.errors).toEqual([]);
  });

  it('the button aborts the pending autofill request quietly, signs in and follows the redirect', async () => {
    await registerPasskey('Laptop');
    posts = [];
    verifyAnswer = { status: 200, body: { redirect: '/done' } };
    // without simulated presence the conditional request stays pending, as it does for a real user
    await cdp.send('WebAuthn.setAutomaticPresenceSimulation', { authenticatorId, enabled: false });
    await page.goto(`${origin}/login`);
    const button = page.getByRole('button', { name: 'Sign in with a passkey' });
    await expect.poll(() => button.isVisible()).toBe(true);
    expect(await page.locator('.lk-divider').isVisible()).toBe(true);
    await expect.poll(() => postsTo('/api/signin/options').map((p) => p.body)).toEqual([{ mode: 'conditional', relatedOrigins: true }]);
    await page.waitForTimeout(300);
    expect(page.url()).toBe(`${origin}/login`);
    await cdp.send('WebAuthn.setAutomaticPresenceSimulation', { authenticatorId, enabled: true });
    await button.click();
    await page.waitForURL(`${origin}/done`);
    expect(postsTo('/api/signin/options').map((p) => p.body)).toEqual([{ mode: 'conditional', relatedOrigins: true }, { mode: 'button', relatedOrigins: true }]);
    expect(postsTo('/api/signin/verify')).toHaveLength(1);
    expect(seen.errors).toEqual([]);
  });

  it('sends data-lk-passkey-mode and shows the server error, then lets the user try again', async () => {
    await registerPasskey('Laptop');
    posts = [];
    verifyAnswer = { status: 400, body: { error: 'unknown_credential', error_description: 'That passkey is not registered here.' } };
    await page.goto(`${origin}/password`);
    const button = page.getByRole('button', { name: 'Use a passkey instead' });
    await button.click();
    await expect.poll(() => page.locator('#lk-error').textContent()).toBe('That passkey is not registered here.');
    expect(await button.isDisabled()).toBe(false);
    expect(postsTo('/api/signin/options').map((p) => p.body)).toEqual([{ mode: 'identified', relatedOrigins: true }]); // no autofill on this page
    verifyAnswer = { status: 200, body: { redirect: '/done' } };
    await button.click();
    await page.waitForURL(`${origin}/done`);
    expect(seen.errors).toEqual([]);
  });

  it('explains a cancelled or failed user verification', async () => {
    await registerPasskey('Laptop');
    await cdp.send('WebAuthn.setUserVerified', { authenticatorId, isUserVerified: false });
    await page.goto(`${origin}/password`);
    await page.route('**/api/signin/options', async (route) => {
      const options = await generateAuthenticationOptions({ rpID: HOST, userVerification: 'required', timeout: 60_000 });
      await route.fulfill({ status: 200, contentType: 'application/json', body: JSON.stringify(options) });
    });
    await page.getByRole('button', { name: 'Use a passkey instead' }).click();
    await expect.poll(() => page.locator('#lk-error').textContent()).toBe('The passkey request was cancelled or timed out. Try again.');
    expect(postsTo('/api/signin/verify')).toHaveLength(0);
  });

  it('cancels the autofill request when the email form is submitted, without an error', async () => {
    await registerPasskey('Laptop');
    posts = [];
    await cdp.send('WebAuthn.setAutomaticPresenceSimulation', { authenticatorId, enabled: false });
    await page.addInitScript(() => {
      // record the abort signal of every WebAuthn request
      const get = navigator.credentials.get.bind(navigator.credentials);
      (window as any).lkSignals = [];
      navigator.credentials.get = (options?: CredentialRequestOptions) => {
        (window as any).lkSignals.push(options?.signal);
        return get(options);
      };
      // window, bubbling: after every listener of the page itself
      window.addEventListener('submit', () => {
        sessionStorage.setItem('lkAbortedOnSubmit', JSON.stringify((window as any).lkSignals.map((s: AbortSignal) => s.aborted)));
      });
    });
    await page.goto(`${origin}/login`);
    await expect.poll(() => postsTo('/api/signin/options').length).toBe(1);
    await page.waitForTimeout(300); // the conditional request is pending now
    expect(await page.evaluate(() => (window as any).lkSignals.map((s: AbortSignal) => s.aborted))).toEqual([false]);
    await page.getByLabel('Email').fill('ada@example.com');
    await page.getByRole('button', { name: 'Continue' }).click();
    await page.waitForURL(`${origin}/form/identify`);
    // what the WebAuthn request's signal said once the submit event had gone through the page
    expect(await page.evaluate(() => sessionStorage.getItem('lkAbortedOnSubmit'))).toBe('[true]');
    await expect.poll(() => formPosts).toEqual([`/form/identify csrf=${CSRF}&email=ada%40example.com`]);
    expect(postsTo('/api/signin/verify')).toEqual([]);
    expect(postsTo('/api/signin/options')).toHaveLength(1);
    expect(seen.errors).toEqual([]);
  });

  it('shows a friendly message when the server cannot be reached', async () => {
    await page.goto(`${origin}/password`);
    await page.route('**/api/signin/options', (route) => route.abort('connectionrefused'));
    await page.getByRole('button', { name: 'Use a passkey instead' }).click();
    await expect.poll(() => page.locator('#lk-error').textContent()).toBe('Something went wrong with the passkey. Try again.');
  });

  it('does nothing on a page without passkey attributes, and keeps the buttons hidden without WebAuthn', async () => {
    await page.goto(`${origin}/bare`);
    await page.waitForLoadState('load');
    expect(posts).toEqual([]);
    expect(seen.errors).toEqual([]);

    const noWebAuthn = await context.newPage();
    const watched = watchConsole(noWebAuthn);
    await noWebAuthn.addInitScript(() => {
      // @ts-expect-error: simulate a browser without WebAuthn
      delete window.PublicKeyCredential;
    });
    await noWebAuthn.goto(`${origin}/account`);
    await expect.poll(() => noWebAuthn.locator('[data-lk-passkey-unsupported]').isVisible()).toBe(true);
    expect(await noWebAuthn.locator('#lk-passkey-create').isVisible()).toBe(false);
    expect(await noWebAuthn.getByText('Passkey name').isVisible()).toBe(false);
    await noWebAuthn.close();
    expect(watched.errors).toEqual([]);
    expect(watched.cspViolations).toEqual([]);
  });
});
