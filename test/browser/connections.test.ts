import * as oidc from 'openid-client';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { afterAll, afterEach, beforeAll, expect, it, vi } from 'vitest';
import { describeWithBrowser, launchChromium, startTestApp, watchConsole } from '../helpers/browser.js';
import { PASSWORD } from '../helpers/flows.js';
import { testFetch } from '../helpers/http.js';
import { startTestServer, type TestServer } from '../helpers/server.js';

const UPSTREAM_EMAIL = 'lin@upstream.test';
/** An account here with a password, and the upstream account it links (another address). */
const LOCAL_EMAIL = 'kim@here.test';
const KIM_UPSTREAM = 'kim@upstream.test';

// In Chromium: the login page's "Continue with …" link, reached and pressed with the keyboard, through
// the upstream realm's own pages and back to the application.
describeWithBrowser('connection buttons in Chromium', () => {
  let server: TestServer;
  let app: Awaited<ReturnType<typeof startTestApp>>;
  let browser: Browser;
  let config: oidc.Configuration;
  let a: string;
  const contexts: BrowserContext[] = [];

  beforeAll(async () => {
    app = await startTestApp();
    server = await startTestServer();
    a = `http://a.localhost:${server.port}`;
    const up = `http://up.localhost:${server.port}`;
    const ok = async (args: string[], stdin?: string) => {
      const r = await server.cli(args, stdin);
      expect(r.code, r.stderr).toBe(0);
      return r.json;
    };
    await ok(['realm', 'add-issuer', '--realm', 'default', '--issuer', a]);
    await ok(['realm', 'create', '--id', 'upstream', '--name', 'Upstream Corp', '--issuer', up]);
    const upstreamClient = await ok(['client', 'create', '--realm', 'upstream', '--name', 'Downstream', '--redirect-uri', `${a}/connections/callback`, '--first-party']);
    await ok(['user', 'create', '--realm', 'upstream', '--email', UPSTREAM_EMAIL, '--password-stdin'], PASSWORD);
    await ok(['user', 'create', '--realm', 'upstream', '--email', KIM_UPSTREAM, '--password-stdin'], PASSWORD);
    await ok(['user', 'create', '--realm', 'default', '--email', LOCAL_EMAIL, '--password-stdin'], PASSWORD);
    await ok(['connection', 'create', '--realm', 'default', '--id', 'upcorp', '--type', 'oidc', '--issuer', up, '--name', 'Upstream Corp', '--client-id', upstreamClient.client_id, '--client-secret-stdin'], upstreamClient.client_secret);
    const rp = await ok(['client', 'create', '--realm', 'default', '--name', 'Demo App', '--redirect-uri', app.redirectUri, '--first-party']);
    config = await oidc.discovery(new URL(a), rp.client_id, { client_secret: rp.client_secret, id_token_signed_response_alg: 'EdDSA' }, undefined, {
      execute: [oidc.allowInsecureRequests],
      [oidc.customFetch]: testFetch,
    } as any);
    browser = await launchChromium();
  });
  afterEach(async () => {
    while (contexts.length) await contexts.pop()!.close();
  });
  afterAll(async () => {
    await browser?.close();
    await server?.close();
    await app?.close();
  });

  const activeElement = (page: Page) =>
    page.evaluate(() => {
      const el = document.activeElement as HTMLElement | null;
      return { tag: el?.tagName.toLowerCase(), id: el?.id, text: el?.textContent?.trim() };
    });

  it('Tab reaches "Continue with Upstream Corp", Enter follows it, and the upstream sign-in comes back to the application', async () => {
    const context = await browser.newContext({ viewport: { width: 1000, height: 760 }, locale: 'en-US' });
    contexts.push(context);
    const page = await context.newPage();
    page.setDefaultTimeout(15_000);
    const seen = watchConsole(page);
    const verifier = oidc.randomPKCECodeVerifier();
    const state = oidc.randomState();
    const url = oidc.buildAuthorizationUrl(config, {
      redirect_uri: app.redirectUri,
      scope: 'openid email',
      code_challenge: await oidc.calculatePKCECodeChallenge(verifier),
      code_challenge_method: 'S256',
      state,
    });
    await page.goto(url.href);

    // a link with an accessible name, in a labelled list, with its icon loaded from our own origin
    const link = page.getByRole('link', { name: 'Continue with Upstream Corp' });
    await expect(link.isVisible()).resolves.toBe(true);
    await expect(page.getByRole('list', { name: 'Other ways to sign in' }).isVisible()).resolves.toBe(true);
    const icon = await page.locator('.lk-connection-icon').evaluate((img: HTMLImageElement) => ({ src: img.src, loaded: img.complete && img.naturalWidth > 0, alt: img.alt }));
    expect(icon).toEqual({ src: `${a}/assets/connections/generic.svg`, loaded: true, alt: '' });

    await vi.waitFor(async () => expect(await activeElement(page)).toMatchObject({ id: 'lk-email' }));
    for (let i = 0; i < 8 && (await activeElement(page)).text !== 'Continue with Upstream Corp'; i++) await page.keyboard.press('Tab');
    expect(await activeElement(page)).toMatchObject({ tag: 'a', text: 'Continue with Upstream Corp' });
    await page.keyboard.press('Enter');

    // the upstream realm's own sign-in pages
    await page.waitForURL((u) => u.host === `up.localhost:${server.port}`);
    await page.getByLabel('Email').fill(UPSTREAM_EMAIL);
    await page.getByRole('button', { name: 'Continue', exact: true }).click();
    await page.getByLabel('Password').fill(PASSWORD);
    await page.getByRole('button', { name: 'Sign in', exact: true }).click();
    await page.getByRole('button', { name: 'Not now' }).click();

    await page.waitForURL((u) => u.href.startsWith(app.redirectUri));
    const landed = new URL(page.url());
    expect(landed.searchParams.get('iss')).toBe(a);
    const tokens = await oidc.authorizationCodeGrant(config, landed, { pkceCodeVerifier: verifier, expectedState: state });
    expect(tokens.claims()!.email).toBe(UPSTREAM_EMAIL);
    expect(seen.cspViolations).toEqual([]);
    expect(seen.errors).toEqual([]);
    expect(seen.httpErrors.filter((e) => !e.endsWith(' /favicon.ico'))).toEqual([]);
  });

  it('Link on the account page with the keyboard only: Tab to "Link", Enter, the upstream sign-in typed, and back on the account page linked', async () => {
    const context = await browser.newContext({ viewport: { width: 1000, height: 760 }, locale: 'en-US' });
    contexts.push(context);
    const page = await context.newPage();
    page.setDefaultTimeout(15_000);
    const seen = watchConsole(page);
    /** Presses Tab until the focused element's text is `text` (at most `max` times). */
    const tabTo = async (text: string, max = 40) => {
      for (let i = 0; i < max && (await activeElement(page)).text !== text; i++) await page.keyboard.press('Tab');
      expect(await activeElement(page)).toMatchObject({ text });
    };
    /** The sign-in pages focus their first field: type into it and press Enter. */
    const typeInto = async (id: string, value: string) => {
      await vi.waitFor(async () => expect(await activeElement(page)).toMatchObject({ id }));
      await page.keyboard.type(value);
      await page.keyboard.press('Enter');
    };

    await page.goto(`${a}/account`);
    await typeInto('lk-email', LOCAL_EMAIL);
    await typeInto('lk-password', PASSWORD);
    await page.getByRole('button', { name: 'Not now' }).or(page.getByRole('heading', { level: 1, name: 'Your account' })).first().waitFor();
    if (await page.getByRole('button', { name: 'Not now' }).isVisible()) {
      await page.mouse.click(1, 1);
      await tabTo('Not now');
      await page.keyboard.press('Enter');
    }
    await page.getByRole('heading', { level: 1, name: 'Your account' }).waitFor();

    await page.mouse.click(1, 1);
    await tabTo('Link');
    expect(await page.evaluate(() => document.activeElement?.getAttribute('aria-label'))).toBe('Link Upstream Corp');
    await page.keyboard.press('Enter');
    await page.waitForURL((u) => u.host === `up.localhost:${server.port}`);
    await typeInto('lk-email', KIM_UPSTREAM);
    await typeInto('lk-password', PASSWORD);
    // the upstream realm's passkey offer (when it comes), then back here
    const notNow = page.getByRole('button', { name: 'Not now' });
    const linked = page.getByRole('status').filter({ hasText: 'Account linked. You can now sign in with it.' });
    await notNow.or(linked).first().waitFor();
    if (await notNow.isVisible()) {
      await page.mouse.click(1, 1);
      await tabTo('Not now');
      await page.keyboard.press('Enter');
    }
    await linked.waitFor();
    expect(new URL(page.url())).toMatchObject({ host: new URL(a).host, pathname: '/account' });
    const section = page.getByRole('region', { name: 'Linked accounts' });
    await expect(section.getByText(KIM_UPSTREAM).isVisible()).resolves.toBe(true);
    await expect(section.getByRole('button', { name: 'Unlink Upstream Corp' }).isVisible()).resolves.toBe(true);
    const kim = (await server.services.users.findByEmail('default', LOCAL_EMAIL))!;
    const upstreamUser = (await server.services.users.findByEmail('upstream', KIM_UPSTREAM))!;
    expect((await server.services.linking.identitiesOf('default', kim.id)).map((l) => [l.connectionId, l.subject])).toEqual([['upcorp', upstreamUser.id]]);
    expect(seen.cspViolations).toEqual([]);
    expect(seen.errors).toEqual([]);
    expect(seen.httpErrors.filter((e) => !e.endsWith(' /favicon.ico'))).toEqual([]);
  });
});
