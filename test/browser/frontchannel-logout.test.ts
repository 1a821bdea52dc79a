/**
 * OpenID Connect Front-Channel Logout 1.0 in Chromium: a user signed into two applications signs out
 * through RP-initiated logout; the application registered with a front-channel logout URI has it loaded
 * (in an iframe of the sign-out page, allowed by that page's Content-Security-Policy) with the issuer and
 * the session id its ID token carries; the other gets nothing; the browser ends at the post-logout
 * redirect URI. ID tokens are verified with jose against the JWKS over HTTP.
 */
import { createServer, type IncomingHttpHeaders, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { jwtVerify } from 'jose';
import * as oidc from 'openid-client';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { pageProblems } from '../helpers/accessibility.js';
import { describeWithBrowser, launchChromium, watchConsole } from '../helpers/browser.js';
import { discover, PASSWORD, remoteJwks } from '../helpers/flows.js';
import { startTestServer, type TestServer } from '../helpers/server.js';

const WAIT_SECONDS = 6;
const EMAIL = 'ada@example.test';

interface Hit {
  host: string;
  path: string;
  query: URLSearchParams;
  headers: IncomingHttpHeaders;
  at: number;
}

/**
 * The applications: one HTTP server answering on several `*.localhost` names (one origin each). It records
 * every request; `/callback` and `/bye` are plain pages; a front-channel logout path answers at once, or
 * when `release()` is called (`hold`), or never (`/frontchannel-logout-hang`).
 */
async function relyingParties() {
  const hits: Hit[] = [];
  const held: ServerResponse[] = [];
  let holding = false;
  const page = (res: ServerResponse, title: string) =>
    res.writeHead(200, { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-store' }).end(`<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>${title}</title></head><body><h1>${title}</h1></body></html>`);
  const server: Server = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://rp.localhost');
    hits.push({ host: String(req.headers.host), path: url.pathname, query: url.searchParams, headers: req.headers, at: Date.now() });
    if (url.pathname === '/callback') return page(res, 'Callback received');
    if (url.pathname === '/bye') return page(res, 'Signed out of the app');
    if (url.pathname === '/frontchannel-logout-hang') return; // never answers: the sign-out page must go on anyway
    if (url.pathname === '/frontchannel-logout') {
      if (holding) held.push(res);
      else page(res, 'Logged out');
      return;
    }
    res.writeHead(404).end();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  return {
    port,
    origin: (name: string) => `http://${name}.localhost:${port}`,
    hits,
    hold() {
      holding = true;
    },
    release() {
      holding = false;
      for (const res of held.splice(0)) page(res, 'Logged out');
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

describeWithBrowser('front-channel logout in Chromium', () => {
  let server: TestServer;
  let browser: Browser;
  let rps: Awaited<ReturnType<typeof relyingParties>>;

  beforeAll(async () => {
    rps = await relyingParties();
    // the page waits WAIT_SECONDS for the iframes (config logout.frontchannelWaitSeconds; 3 by default): the first
    // test looks at the page while an application holds its answer, which takes a few steps on a loaded machine
    server = await startTestServer({ overrides: { logout: { frontchannelWaitSeconds: WAIT_SECONDS } } });
    const user = await server.cli(['user', 'create', '--realm', 'default', '--email', EMAIL, '--password-stdin'], `${PASSWORD}\n`);
    expect(user.code, user.stderr).toBe(0);
    browser = await launchChromium();
  });

  afterAll(async () => {
    await browser?.close();
    await server?.close();
    await rps?.close();
  });

  /** An application on its own origin (`name`.localhost); `extra` are client create flags. */
  async function application(name: string, ...extra: string[]) {
    const origin = rps.origin(name);
    const created = await server.cli([
      'client', 'create', '--realm', 'default', '--name', `App ${name}`, '--first-party',
      '--redirect-uri', `${origin}/callback`, '--post-logout-redirect-uri', `${origin}/bye`, ...extra,
    ]);
    expect(created.code, created.stderr).toBe(0);
    const config = await discover(server.issuer, created.json.client_id, {}, oidc.ClientSecretBasic(created.json.client_secret));
    return { origin, clientId: created.json.client_id as string, config };
  }
  type App = Awaited<ReturnType<typeof application>>;

  /** The code flow in the page (signing in with the password when the session has none); the verified ID token. */
  async function signInto(page: Page, app: App) {
    const verifier = oidc.randomPKCECodeVerifier();
    const state = oidc.randomState();
    const redirectUri = `${app.origin}/callback`;
    const url = oidc.buildAuthorizationUrl(app.config, {
      redirect_uri: redirectUri,
      scope: 'openid email',
      code_challenge: await oidc.calculatePKCECodeChallenge(verifier),
      code_challenge_method: 'S256',
      state,
    });
    await page.goto(url.href);
    const callback = page.getByRole('heading', { name: 'Callback received', exact: true });
    const email = page.getByLabel('Email');
    await callback.or(email).first().waitFor();
    if (await email.isVisible()) {
      await email.fill(EMAIL);
      await page.getByRole('button', { name: 'Continue', exact: true }).click();
      await page.getByLabel('Password').fill(PASSWORD);
      await page.getByRole('button', { name: 'Sign in', exact: true }).click();
      const offer = page.getByRole('button', { name: 'Not now', exact: true });
      await offer.or(callback).first().waitFor();
      if (await offer.isVisible()) await offer.click();
    }
    await page.waitForURL((u) => u.href.startsWith(redirectUri));
    const tokens = await oidc.authorizationCodeGrant(app.config, new URL(page.url()), { pkceCodeVerifier: verifier, expectedState: state });
    const { payload } = await jwtVerify(tokens.id_token!, remoteJwks(server.issuer), { issuer: server.issuer, audience: app.clientId });
    return { idToken: tokens.id_token!, claims: payload };
  }

  /** RP-initiated logout from `app`: the confirmation page, "Yes, sign me out". */
  async function signOut(page: Page, app: App, idToken: string) {
    await page.goto(oidc.buildEndSessionUrl(app.config, { id_token_hint: idToken, post_logout_redirect_uri: `${app.origin}/bye`, state: 'after' }).href);
    await page.getByRole('button', { name: 'Yes, sign me out', exact: true }).click();
  }

  const frontchannelHits = (name: string) => rps.hits.filter((h) => h.host === `${name}.localhost:${rps.port}` && h.path.startsWith('/frontchannel-logout'));

  it('signing out loads the registered application’s front-channel logout URI once, with the issuer and its ID token’s sid, then goes on to the post-logout URI', async () => {
    const one = await application('one', '--frontchannel-logout-uri', `${rps.origin('one')}/frontchannel-logout`);
    const two = await application('two');
    const context = await browser.newContext({ locale: 'en-US' });
    try {
      const page = await context.newPage();
      page.setDefaultTimeout(20_000);
      const seen = watchConsole(page);
      const first = await signInto(page, one);
      const second = await signInto(page, two);
      expect(typeof first.claims.sid, 'the ID token of the front-channel client carries sid').toBe('string');
      expect(second.claims.sid, 'the other client registered no logout URI: no sid').toBeUndefined();

      // the application holds its answer: the sign-out page stays, shows what it does, and waits
      rps.hold();
      await signOut(page, two, second.idToken);
      await expect.poll(() => frontchannelHits('one').length, { timeout: 10_000 }).toBe(1);
      await page.getByRole('heading', { name: 'Signing you out', exact: true }).waitFor();
      expect(await page.getByRole('status').textContent()).toBe('Signing you out…');
      const link = page.getByRole('link', { name: 'continue', exact: true });
      expect(await link.getAttribute('href')).toBe(`${two.origin}/bye?state=after`);
      expect(page.url().startsWith(two.origin), 'still on the sign-out page while the iframe loads').toBe(false);
      const released = Date.now();
      rps.release();

      await page.waitForURL((u) => u.href.startsWith(`${two.origin}/bye`), { timeout: 10_000 });
      expect(new URL(page.url()).searchParams.get('state')).toBe('after');
      await page.getByRole('heading', { name: 'Signed out of the app', exact: true }).waitFor();
      const bye = rps.hits.filter((h) => h.path === '/bye').at(-1)!;
      expect(bye.at, 'went on once the iframe had loaded').toBeGreaterThanOrEqual(released);

      const [hit] = frontchannelHits('one');
      expect(hit!.path).toBe('/frontchannel-logout');
      expect(hit!.headers['sec-fetch-dest'], 'loaded in an iframe').toBe('iframe');
      expect(hit!.query.get('iss')).toBe(server.issuer);
      expect(hit!.query.get('sid')).toBe(first.claims.sid);
      expect([...hit!.query.keys()].sort()).toEqual(['iss', 'sid']);
      expect(frontchannelHits('two')).toEqual([]);
      expect(frontchannelHits('one')).toHaveLength(1);
      expect(seen.cspViolations).toEqual([]);
      expect(seen.errors).toEqual([]);
    } finally {
      rps.release();
      await context.close();
    }
  });

  it('a client without the session flag gets its URI as registered (no iss, no sid); an application that never answers does not keep the user', async () => {
    const three = await application('three', '--frontchannel-logout-uri', `${rps.origin('three')}/frontchannel-logout-hang?app=3`, '--no-frontchannel-logout-session-required');
    const context = await browser.newContext({ locale: 'en-US' });
    try {
      const page = await context.newPage();
      page.setDefaultTimeout(20_000);
      const seen = watchConsole(page);
      const signed = await signInto(page, three);
      expect(signed.claims.sid).toBeUndefined();
      const started = Date.now();
      await signOut(page, three, signed.idToken);
      await page.waitForURL((u) => u.href.startsWith(`${three.origin}/bye`), { timeout: WAIT_SECONDS * 1000 + 15_000 });
      expect(Date.now() - started, 'gave up waiting for the iframe after the configured wait').toBeGreaterThanOrEqual(WAIT_SECONDS * 1000 - 500);
      const hits = frontchannelHits('three');
      expect(hits).toHaveLength(1);
      expect(hits[0]!.path).toBe('/frontchannel-logout-hang');
      expect([...hits[0]!.query]).toEqual([['app', '3']]);
      expect(seen.cspViolations).toEqual([]);
    } finally {
      await context.close();
    }
  });

  it("the account page's Sign out (through /session/end) loads the application's URI too, then shows the signed-out page", async () => {
    const five = await application('five', '--frontchannel-logout-uri', `${rps.origin('five')}/frontchannel-logout`);
    const context = await browser.newContext({ locale: 'en-US' });
    try {
      const page = await context.newPage();
      page.setDefaultTimeout(20_000);
      const seen = watchConsole(page);
      const signed = await signInto(page, five);
      // the realm's session is there: the account page opens without a new sign-in
      await page.goto(`${server.issuer}/account`);
      await page.getByRole('heading', { name: 'Your account', exact: true }).waitFor();
      await page.getByRole('button', { name: 'Sign out', exact: true }).click();
      await page.getByRole('button', { name: 'Yes, sign me out', exact: true }).click();
      await page.getByRole('heading', { name: 'You have signed out', exact: true }).waitFor();
      expect(page.url()).toBe(`${server.issuer}/account/signed-out`);
      const hits = frontchannelHits('five');
      expect(hits).toHaveLength(1);
      expect(hits[0]!.query.get('iss')).toBe(server.issuer);
      expect(hits[0]!.query.get('sid')).toBe(signed.claims.sid);
      expect(seen.cspViolations).toEqual([]);
    } finally {
      await context.close();
    }
  });

  it('the sign-out page passes the accessibility checks (axe WCAG 2.1 A/AA in both colour schemes, keyboard to its link, reflow)', async () => {
    const four = await application('four', '--frontchannel-logout-uri', `${rps.origin('four')}/frontchannel-logout-hang`);
    const context = await browser.newContext({ locale: 'en-US' });
    try {
      const page = await context.newPage();
      page.setDefaultTimeout(20_000);
      const signed = await signInto(page, four);
      // the page goes on by itself within seconds, too soon for the checks: here its script is answered
      // empty and its meta refresh taken out; the rest (markup, styles, headers) is the server's answer
      await page.route('**/assets/frontchannel-logout.js', (route) => route.fulfill({ status: 200, contentType: 'text/javascript', body: '' }));
      await page.route('**/session/end/confirm', async (route) => {
        const response = await route.fetch();
        const html = await response.text();
        expect(html).toContain('http-equiv="refresh"');
        await route.fulfill({ response, body: html.replace(/<meta http-equiv="refresh"[^>]*>/, '') });
      });
      await signOut(page, four, signed.idToken);
      await page.getByRole('heading', { name: 'Signing you out', exact: true }).waitFor();
      expect(await page.locator('iframe[data-lk-logout-frame]').count()).toBe(1);
      expect(await pageProblems(page, 'front-channel sign-out page', 'continue')).toEqual([]);
    } finally {
      await context.close();
    }
  });
});

