/**
 * Every server-rendered page a person meets, checked in headless Chromium for screen-reader and keyboard
 * users: axe-core's WCAG 2.1 A/AA rules in the light and the dark colour scheme (no rule switched off),
 * and a keyboard walk from the top of the page that must reach the page's main action with Tab, every
 * stop showing a focus indicator. A failure lists the page, the rule or stop, and the elements.
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as oidc from 'openid-client';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { afterAll, afterEach, beforeAll, expect, it } from 'vitest';
import { accessibilityProblems, keyboardProblems, pageProblems, reflowProblems } from '../helpers/accessibility.js';
import { SoftAuthenticator } from '../helpers/authenticator.js';
import { describeWithBrowser, launchChromium, startTestApp, watchConsole } from '../helpers/browser.js';
import { signInToAccount } from '../helpers/account-pages.js';
import { discover, PASSWORD, postForm } from '../helpers/flows.js';
import { startTestServer, type TestServer } from '../helpers/server.js';
import { codeAt } from '../helpers/totp.js';
import { BrowserWithAgent, USER_AGENTS } from '../helpers/user-agents.js';

const DEVICE_GRANT = 'urn:ietf:params:oauth:grant-type:device_code';

describeWithBrowser('accessibility of the pages in Chromium (axe-core WCAG 2.1 A/AA, keyboard focus)', () => {
  let server: TestServer;
  let app: Awaited<ReturnType<typeof startTestApp>>;
  let browser: Browser;
  /** The realm most pages are seen on: default colour, sign-up open, a connection, second factors optional. */
  let issuer: string;
  /** A realm that requires a second factor (the set-up page with its QR code). */
  let strictIssuer: string;
  let web: oidc.Configuration;
  let partner: oidc.Configuration;
  let strictWeb: oidc.Configuration;
  let tvClientId: string;
  /** A realm with organisations (tenants). */
  let corpIssuer: string;
  let corpWeb: oidc.Configuration;
  /** Realms with their own primary colour: a mid grey (neither white nor black text reaches 4.5:1 on it) and a pale yellow. */
  const COLOURED = [
    { id: 'grey', colour: '#7a7a7a' },
    { id: 'sunny', colour: '#ffcc00' },
  ];
  const coloured = new Map<string, oidc.Configuration>();
  /** The authenticator-app secret of mfa@ (it also has a security key). */
  let mfaSecret: string;
  /** solo@'s recovery codes (it has a passkey and no password; a code is the way in without the passkey). */
  let soloRecoveryCodes: string[];
  const contexts: BrowserContext[] = [];

  const ok = async (args: string[], stdin?: string) => {
    const r = await server.cli(args, stdin);
    expect(r.code, `${args.join(' ')}: ${r.stderr}`).toBe(0);
    return r.json;
  };

  async function registerCredential(realmId: string, realmIssuer: string, email: string, kind: 'passkey' | 'security-key') {
    const user = (await server.services.users.findByEmail(realmId, email))!;
    const realm = (await server.services.realms.get(realmId))!;
    const rp = { rpId: new URL(realmIssuer).hostname, origins: [realmIssuer], name: realmId };
    const who = { id: user.id, email: user.email, name: null };
    const options = await server.services.passkeys.registrationOptions({ realmId, settings: realm.settings, rp, user: who, boundTo: 'setup', kind });
    const response = await new SoftAuthenticator({ backupEligible: kind === 'passkey' }).createCredential(options, realmIssuer);
    await server.services.passkeys.verifyRegistration({ realmId, settings: realm.settings, rp, user: who, boundTo: 'setup', kind, response });
  }

  beforeAll(async () => {
    app = await startTestApp();
    server = await startTestServer();
    const dir = mkdtempSync(join(tmpdir(), 'latchkey-a11y-'));
    issuer = `http://pages.localhost:${server.port}`;
    strictIssuer = `http://strict.localhost:${server.port}`;
    const up = `http://up.localhost:${server.port}`;
    writeFileSync(join(dir, 'pages.json'), JSON.stringify({ signup: true, mfa: 'optional' }));
    writeFileSync(join(dir, 'strict.json'), JSON.stringify({ mfa: 'required' }));
    await ok(['realm', 'create', '--id', 'pages', '--name', 'Pages', '--issuer', issuer, '--settings', join(dir, 'pages.json')]);
    await ok(['realm', 'create', '--id', 'strict', '--name', 'Strict', '--issuer', strictIssuer, '--settings', join(dir, 'strict.json')]);
    await ok(['realm', 'create', '--id', 'upstream', '--name', 'Upstream Corp', '--issuer', up]);

    const colouredIssuer = (id: string) => `http://${id}.localhost:${server.port}`;
    for (const { id, colour } of COLOURED) {
      writeFileSync(join(dir, `${id}.json`), JSON.stringify({ branding: { primaryColor: colour } }));
      await ok(['realm', 'create', '--id', id, '--name', `Realm ${id}`, '--issuer', colouredIssuer(id), '--settings', join(dir, `${id}.json`)]);
    }
    corpIssuer = `http://corp.localhost:${server.port}`;
    await ok(['realm', 'create', '--id', 'corp', '--name', 'Corp', '--issuer', corpIssuer]);
    const callbacks = [issuer, corpIssuer, ...COLOURED.map(({ id }) => colouredIssuer(id))].flatMap((i) => ['--redirect-uri', `${i}/connections/callback`]);
    const upstreamClient = await ok(['client', 'create', '--realm', 'upstream', '--name', 'Pages', ...callbacks, '--first-party']);
    for (const realm of ['pages', ...COLOURED.map(({ id }) => id)]) {
      await ok(['connection', 'create', '--realm', realm, '--id', 'upcorp', '--type', 'oidc', '--issuer', up, '--name', 'Upstream Corp', '--client-id', upstreamClient.client_id, '--client-secret-stdin'], upstreamClient.client_secret);
    }
    // organisations (tenants): multi@ belongs to two (the picker); hooli.test signs in only through its two connections
    for (const [id, name] of [['upcorp', 'Upstream Corp'], ['upcorp2', 'Upstream Backup']]) {
      await ok(['connection', 'create', '--realm', 'corp', '--id', id!, '--type', 'oidc', '--issuer', up, '--name', name!, '--client-id', upstreamClient.client_id, '--client-secret-stdin'], upstreamClient.client_secret);
    }
    const corpClient = await ok(['client', 'create', '--realm', 'corp', '--name', 'Corp App', '--redirect-uri', app.redirectUri, '--first-party']);
    corpWeb = await discover(corpIssuer, corpClient.client_id, { client_secret: corpClient.client_secret });
    await ok(['user', 'create', '--realm', 'corp', '--email', 'multi@example.test', '--password-stdin'], PASSWORD);
    await ok(['tenant', 'create', '--realm', 'corp', '--id', 'acme', '--name', 'Acme Corp']);
    await ok(['tenant', 'create', '--realm', 'corp', '--id', 'globex', '--name', 'Globex']);
    await ok(['tenant', 'create', '--realm', 'corp', '--id', 'hooli', '--name', 'Hooli', '--domain', 'hooli.test', '--connection', 'upcorp', '--connection', 'upcorp2', '--sso-enforced']);
    for (const tenant of ['acme', 'globex']) await ok(['tenant', 'add-member', '--realm', 'corp', '--tenant', tenant, '--email', 'multi@example.test']);

    for (const { id } of COLOURED) {
      const client = await ok(['client', 'create', '--realm', id, '--name', 'Demo App', '--redirect-uri', app.redirectUri, '--first-party']);
      coloured.set(id, await discover(colouredIssuer(id), client.client_id, { client_secret: client.client_secret }));
      await ok(['user', 'create', '--realm', id, '--email', 'ada@example.test', '--password-stdin'], PASSWORD);
    }

    const webClient = await ok(['client', 'create', '--realm', 'pages', '--name', 'Demo App', '--redirect-uri', app.redirectUri, '--first-party']);
    const partnerClient = await ok(['client', 'create', '--realm', 'pages', '--name', 'Partner App', '--redirect-uri', app.redirectUri]);
    const strictClient = await ok(['client', 'create', '--realm', 'strict', '--name', 'Strict App', '--redirect-uri', app.redirectUri, '--first-party']);
    tvClientId = (await ok(['client', 'create', '--realm', 'pages', '--name', 'Living Room TV', '--public', '--first-party', '--grant', DEVICE_GRANT])).client_id;
    web = await discover(issuer, webClient.client_id, { client_secret: webClient.client_secret });
    partner = await discover(issuer, partnerClient.client_id, { client_secret: partnerClient.client_secret });
    strictWeb = await discover(strictIssuer, strictClient.client_id, { client_secret: strictClient.client_secret });

    // the people (independent CLI runs, two at a time: each is a process of its own)
    const people: Array<[string, string, boolean]> = [
      ...['ada', 'mfa', 'pk', 'tv', 'acct', 'linked'].map((name): [string, string, boolean] => ['pages', `${name}@example.test`, true]),
      ['pages', 'solo@example.test', false],
      ['strict', 'enrol@example.test', true],
    ];
    for (let i = 0; i < people.length; i += 2) {
      await Promise.all(
        people.slice(i, i + 2).map(([realm, email, withPassword]) =>
          withPassword ? ok(['user', 'create', '--realm', realm, '--email', email, '--name', 'Ada Lovelace', '--password-stdin'], PASSWORD) : ok(['user', 'create', '--realm', realm, '--email', email]),
        ),
      );
    }

    // mfa@: an authenticator app and a security key; pk@: a passkey (its sign-in asks for it first)
    const mfa = (await server.services.users.findByEmail('pages', 'mfa@example.test'))!;
    const enrolment = await server.services.totp.startEnrolment('pages', mfa.id, mfa.email, 'Pages');
    expect(await server.services.totp.confirmEnrolment('pages', mfa.id, codeAt(enrolment.secret, Date.now()))).toBe(true);
    mfaSecret = enrolment.secret;
    // solo@: a passkey and recovery codes, no password
    await registerCredential('pages', issuer, 'solo@example.test', 'passkey');
    soloRecoveryCodes = await server.services.recovery.generate('pages', (await server.services.users.findByEmail('pages', 'solo@example.test'))!.id);
    await registerCredential('pages', issuer, 'mfa@example.test', 'security-key');
    await registerCredential('pages', issuer, 'pk@example.test', 'passkey');

    browser = await launchChromium();
    // some forty CLI runs (a process each) on a shared two-core machine
  }, 300_000);
  afterEach(async () => {
    while (contexts.length) await contexts.pop()!.close();
  });
  afterAll(async () => {
    await browser?.close();
    await server?.close();
    await app?.close();
  });

  /** A fresh browser profile; no animations (colours are read when the page is still). */
  async function freshPage(): Promise<{ page: Page; seen: ReturnType<typeof watchConsole> }> {
    const context = await browser.newContext({ viewport: { width: 1000, height: 900 }, locale: 'en-US', colorScheme: 'light', reducedMotion: 'reduce' });
    contexts.push(context);
    const page = await context.newPage();
    page.setDefaultTimeout(15_000);
    return { page, seen: watchConsole(page) };
  }

  async function authorize(page: Page, config: oidc.Configuration, params: Record<string, string> = {}) {
    const url = oidc.buildAuthorizationUrl(config, {
      redirect_uri: app.redirectUri,
      scope: 'openid email profile',
      code_challenge: await oidc.calculatePKCECodeChallenge(oidc.randomPKCECodeVerifier()),
      code_challenge_method: 'S256',
      state: oidc.randomState(),
      ...params,
    });
    const res = await page.goto(url.href);
    expect(res?.status()).toBe(200);
  }

  const heading = (page: Page, name: string | RegExp) => page.getByRole('heading', { level: 1, name }).waitFor();
  const button = (page: Page, name: string) => page.getByRole('button', { name, exact: true });

  async function typeEmail(page: Page, email: string) {
    await page.getByLabel('Email').fill(email);
    await button(page, 'Continue').click();
  }

  async function typePassword(page: Page, password = PASSWORD) {
    await page.getByLabel('Password').fill(password);
    await button(page, 'Sign in').click();
  }

  /** A password sign-in through the pages; "Not now" on the passkey offer when it comes. */
  async function signInWithPassword(page: Page, email: string, until: string | RegExp) {
    await typeEmail(page, email);
    await heading(page, /Enter your password/);
    await typePassword(page);
    const offer = button(page, 'Not now');
    const next = page.getByRole('heading', { level: 1, name: until });
    await offer.or(next).first().waitFor();
    if (await offer.isVisible()) await offer.click();
    await next.waitFor();
  }

  const noConsoleTrouble = (seen: ReturnType<typeof watchConsole>) => [...seen.cspViolations, ...seen.errors];

  it('sign-in: email step (with sign-up link and a connection), password step, wrong password, passkey offer, consent, sign-out', async () => {
    const { page, seen } = await freshPage();
    const problems: string[] = [];

    await authorize(page, web);
    await heading(page, /Sign in/);
    await page.getByRole('link', { name: 'Continue with Upstream Corp' }).waitFor();
    problems.push(...(await pageProblems(page, 'email step', 'Continue')));

    await typeEmail(page, 'ada@example.test');
    await heading(page, /Enter your password/);
    problems.push(...(await pageProblems(page, 'password step', 'Sign in')));

    await typePassword(page, 'definitely-not-the-password-42');
    await page.getByRole('alert').filter({ hasText: /Incorrect email or password/ }).waitFor();
    problems.push(...(await pageProblems(page, 'wrong password', 'Sign in')));

    await typePassword(page);
    await heading(page, 'Create a passkey for faster sign-in');
    await page.waitForLoadState('load');
    await button(page, 'Create a passkey').waitFor();
    problems.push(...(await pageProblems(page, 'passkey offer', 'Create a passkey')));
    await button(page, 'Not now').click();
    await page.waitForURL((u) => u.href.startsWith(app.redirectUri));

    // a third-party application: the consent page (the session from above signs in)
    await authorize(page, partner);
    await heading(page, /wants to access your account/);
    problems.push(...(await pageProblems(page, 'consent', 'Allow')));
    await button(page, 'Allow').click();
    await page.waitForURL((u) => u.href.startsWith(app.redirectUri));

    // sign-out: the confirmation, then the page after it
    await page.goto(`${issuer}/session/end`);
    await heading(page, /Sign out of/);
    problems.push(...(await pageProblems(page, 'sign-out confirmation', 'Yes, sign me out')));
    await button(page, 'Yes, sign me out').click();
    await heading(page, /You have signed out/);
    problems.push(...(await accessibilityProblems(page, 'signed out')));

    expect(problems).toEqual([]);
    expect(noConsoleTrouble(seen)).toEqual([]);
  });

  it('temporary password: the new-password step after the password, and a refusal on it', async () => {
    const made = await server.cli(['user', 'create', '--realm', 'pages', '--email', 'temp@example.test', '--password-stdin', '--temporary'], PASSWORD);
    expect(made.code, made.stderr).toBe(0);
    const { page, seen } = await freshPage();
    const problems: string[] = [];
    await authorize(page, web);
    await typeEmail(page, 'temp@example.test');
    await heading(page, /Enter your password/);
    await typePassword(page);
    await heading(page, 'Choose a new password');
    problems.push(...(await pageProblems(page, 'temporary password', 'Change password')));

    const fresh = 'a password of my own choosing, at last';
    await page.getByLabel('New password', { exact: true }).fill(fresh);
    await page.getByLabel('Confirm new password', { exact: true }).fill(`${fresh}?`);
    await page.getByLabel('Confirm new password', { exact: true }).press('Enter');
    await page.getByRole('alert').filter({ hasText: /do not match/ }).waitFor();
    problems.push(...(await pageProblems(page, 'temporary password refused', 'Change password')));

    await page.getByLabel('New password', { exact: true }).fill(fresh);
    await page.getByLabel('Confirm new password', { exact: true }).fill(fresh);
    await button(page, 'Change password').click();
    const offer = button(page, 'Not now');
    await offer.or(page.getByRole('heading', { level: 1, name: /Create a passkey/ })).first().waitFor();
    await offer.click();
    await page.waitForURL((u) => u.href.startsWith(app.redirectUri));
    expect((await server.services.users.findByEmail('pages', 'temp@example.test'))?.passwordChangeRequired).toBe(false);

    expect(problems).toEqual([]);
    expect(noConsoleTrouble(seen)).toEqual([]);
  });

  it('error page (an unknown application) and sign-up (empty, and after a refused password)', async () => {
    const { page, seen } = await freshPage();
    const problems: string[] = [];

    await page.goto(`${issuer}/auth?client_id=no-such-app&response_type=code&scope=openid&redirect_uri=${encodeURIComponent(app.redirectUri)}`);
    await page.getByRole('heading', { level: 1 }).waitFor();
    problems.push(...(await accessibilityProblems(page, 'error page')));

    await authorize(page, web);
    await page.getByRole('link', { name: 'Create an account' }).click();
    await heading(page, 'Create your account');
    problems.push(...(await pageProblems(page, 'sign-up', 'Create account')));
    await page.getByLabel('Email').fill('new@example.test');
    await page.getByLabel(/^Password/).fill('short');
    await button(page, 'Create account').click();
    await page.getByRole('alert').locator('p').waitFor();
    problems.push(...(await pageProblems(page, 'sign-up refused', 'Create account')));

    expect(problems).toEqual([]);
    expect(noConsoleTrouble(seen)).toEqual([]);
  });

  it('second factor at sign-in: authenticator code, security key and recovery code; a wrong code', async () => {
    const { page, seen } = await freshPage();
    const problems: string[] = [];

    await authorize(page, web);
    await typeEmail(page, 'mfa@example.test');
    await heading(page, /Enter your password/);
    await typePassword(page);
    await heading(page, /Verify it/);
    await page.waitForLoadState('load');
    await button(page, 'Use your security key or passkey').waitFor();
    problems.push(...(await pageProblems(page, 'second factor', 'Verify')));

    await page.getByText('Use a recovery code').click();
    await page.getByLabel('Recovery code').waitFor();
    problems.push(...(await pageProblems(page, 'second factor, recovery code open', 'Use recovery code')));

    await page.getByLabel('Authentication code').fill('000000');
    await page.getByLabel('Authentication code').press('Enter');
    await page.getByRole('alert').filter({ hasText: /not right/ }).waitFor();
    problems.push(...(await pageProblems(page, 'second factor, wrong code', 'Verify')));

    expect(problems).toEqual([]);
    expect(noConsoleTrouble(seen)).toEqual([]);
  });

  it('passkey step, a recovery code instead of the passkey and the passkey offer after it, second-factor set-up with its QR code (a realm that requires it)', async () => {
    const { page, seen } = await freshPage();
    const problems: string[] = [];

    await authorize(page, web);
    await typeEmail(page, 'pk@example.test');
    await heading(page, /Sign in with your passkey/);
    await page.waitForLoadState('load');
    await button(page, 'Sign in with your passkey').waitFor();
    problems.push(...(await pageProblems(page, 'passkey step', 'Sign in with your passkey')));

    // without the passkey and without a password: a recovery code, then the passkey offer says so first
    await authorize(page, web);
    await typeEmail(page, 'solo@example.test');
    await heading(page, /Sign in with your passkey/);
    await page.getByRole('link', { name: 'Use a recovery code' }).click();
    await page.getByLabel('Recovery code').waitFor();
    problems.push(...(await pageProblems(page, 'recovery code instead of a passkey', 'Use recovery code')));
    await page.getByLabel('Recovery code').fill(soloRecoveryCodes[0]!);
    await button(page, 'Use recovery code').click();
    await heading(page, 'Create a passkey for faster sign-in');
    await page.getByText('You signed in with a recovery code').waitFor();
    await page.waitForLoadState('load');
    await button(page, 'Create a passkey').waitFor();
    problems.push(...(await pageProblems(page, 'passkey offer after a recovery code', 'Create a passkey')));

    await authorize(page, strictWeb);
    await typeEmail(page, 'enrol@example.test');
    await heading(page, /Enter your password/);
    await typePassword(page);
    await heading(page, /second step/);
    await page.locator('figure.lk-qr svg').waitFor();
    problems.push(...(await pageProblems(page, 'second-factor set-up', 'Verify and turn on')));

    expect(problems).toEqual([]);
    expect(noConsoleTrouble(seen)).toEqual([]);
  });

  it('device flow: code entry, a wrong code, confirmation, done', async () => {
    const { page, seen } = await freshPage();
    const problems: string[] = [];
    const started = await postForm(`${issuer}/device/auth`, { client_id: tvClientId, scope: 'openid email' });
    expect(started.status, JSON.stringify(started.body)).toBe(200);

    await page.goto(`${issuer}/device`);
    await heading(page, 'Connect a device');
    problems.push(...(await pageProblems(page, 'device code', 'Continue')));

    await page.getByLabel('Code').fill('BCDF-GHJK');
    await button(page, 'Continue').click();
    await page.getByRole('alert').locator('p').waitFor();
    problems.push(...(await pageProblems(page, 'device code, wrong code', 'Continue')));

    await page.getByLabel('Code').fill(started.body.user_code);
    await button(page, 'Continue').click();
    await heading(page, /is asking to sign in on a device/);
    problems.push(...(await pageProblems(page, 'device confirmation', 'Continue')));
    await button(page, 'Continue').click();
    await heading(page, /Sign in/);
    await signInWithPassword(page, 'tv@example.test', /Your device is signed in/);
    problems.push(...(await accessibilityProblems(page, 'device done')));

    expect(problems).toEqual([]);
    expect(noConsoleTrouble(seen)).toEqual([]);
  });

  it('account page: its sections, authenticator-app set-up with its QR code, new recovery codes shown once', async () => {
    const { page, seen } = await freshPage();
    const problems: string[] = [];

    await page.goto(`${issuer}/account`);
    await heading(page, /Sign in/);
    await signInWithPassword(page, 'acct@example.test', 'Your account');
    await page.waitForLoadState('load');
    problems.push(...(await pageProblems(page, 'account page', 'Change password')));

    await page.getByRole('link', { name: 'Set up an authenticator app' }).click();
    await heading(page, 'Set up an authenticator app');
    problems.push(...(await pageProblems(page, 'account: authenticator-app set-up', 'Verify and turn on')));
    await page.getByRole('link', { name: 'Back to your account' }).click();

    await heading(page, 'Your account');
    await button(page, 'Create recovery codes').click();
    await heading(page, 'Save your recovery codes');
    problems.push(...(await pageProblems(page, 'recovery codes', 'I have saved my codes')));

    expect(problems).toEqual([]);
    expect(noConsoleTrouble(seen)).toEqual([]);
  });

  it('account page: signed-in devices and apps with access; "Sign out" of another device and "Remove access" work from the keyboard', async () => {
    const { page, seen } = await freshPage();
    const problems: string[] = [];
    await server.services.users.create({ realmId: 'pages', email: 'devices@example.test', name: 'Ada Lovelace', password: PASSWORD });
    // another device: Firefox on Linux, signed in to the account page over HTTP
    await signInToAccount(new BrowserWithAgent(USER_AGENTS.firefoxLinux), issuer, { email: 'devices@example.test', password: PASSWORD });
    // this one (Chromium) grants the third-party application offline access on the consent page
    await authorize(page, partner, { scope: 'openid email offline_access', prompt: 'consent' });
    await heading(page, /Sign in/);
    await signInWithPassword(page, 'devices@example.test', /wants to access your account/);
    await button(page, 'Allow').click();
    await page.waitForURL((u) => u.href.startsWith(app.redirectUri));

    await page.goto(`${issuer}/account`);
    await heading(page, 'Your account');
    await page.getByRole('heading', { level: 2, name: 'Signed-in devices' }).waitFor();
    await page.getByText('This device').waitFor();
    const signOutOther = page.getByRole('button', { name: /^Sign out Firefox 133 on Linux/ });
    const removePartner = page.getByRole('button', { name: 'Remove access of Partner App' });
    await signOutOther.waitFor();
    await removePartner.waitFor();
    problems.push(...(await pageProblems(page, 'account page with devices and apps', /^Sign out Firefox 133 on Linux/)));
    problems.push(...(await keyboardProblems(page, 'account page with devices and apps', 'Remove access of Partner App')));

    /** Tabs from the top of the page to the control named `name` and presses Enter on it. */
    async function pressWithKeyboard(name: string | RegExp) {
      await page.mouse.click(1, 1);
      for (let i = 0; i < 80; i++) {
        await page.keyboard.press('Tab');
        const label = await page.evaluate(() => document.activeElement?.getAttribute('aria-label') ?? document.activeElement?.textContent?.trim() ?? '');
        if (typeof name === 'string' ? label === name : name.test(label)) {
          await page.keyboard.press('Enter');
          return;
        }
      }
      throw new Error(`${String(name)} is not reached with Tab`);
    }

    await pressWithKeyboard(/^Sign out Firefox 133 on Linux/);
    await page.getByRole('status').filter({ hasText: 'That device is signed out' }).waitFor();
    expect(await signOutOther.count()).toBe(0);
    problems.push(...(await pageProblems(page, 'account page, a device signed out', 'Remove access of Partner App')));

    await pressWithKeyboard('Remove access of Partner App');
    await page.getByRole('status').filter({ hasText: 'Access removed' }).waitFor();
    expect(await removePartner.count()).toBe(0);
    problems.push(...(await pageProblems(page, 'account page, access removed', 'Change password')));

    expect(problems).toEqual([]);
    expect(noConsoleTrouble(seen)).toEqual([]);
  });

  it('account page: a refused password change is announced, and marks, describes and focuses the field it is about', async () => {
    const { page, seen } = await freshPage();
    const problems: string[] = [];
    await page.goto(`${issuer}/account`);
    await heading(page, /Sign in/);
    await signInWithPassword(page, 'ada@example.test', 'Your account');

    /** The focused element: its id, aria-invalid and the text of what describes it. */
    const focused = () =>
      page.evaluate(() => {
        const el = document.activeElement as HTMLElement | null;
        const ids = (el?.getAttribute('aria-describedby') ?? '').split(/\s+/).filter(Boolean);
        return { id: el?.id ?? '', invalid: el?.getAttribute('aria-invalid') ?? null, description: ids.map((id) => document.getElementById(id)?.textContent?.trim() ?? '').join(' ') };
      });
    const cases = [
      { label: 'too short', password: 'short', again: 'short', field: 'lk-new-password', message: /at least/ },
      { label: 'not the same twice', password: PASSWORD + '-new', again: PASSWORD + '-typo', field: 'lk-new-password', message: /do not match/ },
    ];
    for (const c of cases) {
      await page.getByLabel('New password', { exact: true }).fill(c.password);
      await page.getByLabel('Confirm new password').fill(c.again);
      await button(page, 'Change password').click();
      await page.getByRole('alert').filter({ hasText: c.message }).waitFor();
      const now = await focused();
      expect(now, c.label).toMatchObject({ id: c.field, invalid: 'true' });
      expect(now.description, c.label).toMatch(c.message);
      problems.push(...(await pageProblems(page, `account page, password ${c.label}`, 'Change password')));
    }
    // accepted: the page comes back with its status message
    await page.getByLabel('New password', { exact: true }).fill(PASSWORD + '-new');
    await page.getByLabel('Confirm new password').fill(PASSWORD + '-new');
    await button(page, 'Change password').click();
    await page.getByRole('status').filter({ hasText: /password/i }).waitFor();
    problems.push(...(await pageProblems(page, 'account page, password changed', 'Change password')));
    expect(problems).toEqual([]);
    expect(noConsoleTrouble(seen)).toEqual([]);
  });

  it('account page of someone with a security key, an authenticator app and recovery codes', async () => {
    const { page, seen } = await freshPage();
    const problems: string[] = [];

    await page.goto(`${issuer}/account`);
    await typeEmail(page, 'mfa@example.test');
    await heading(page, /Enter your password/);
    await typePassword(page);
    await heading(page, /Verify it/);
    // a code from the next time step: the one used at enrolment cannot be used again
    await page.getByLabel('Authentication code').fill(codeAt(mfaSecret, Date.now() + 30_000));
    await page.getByLabel('Authentication code').press('Enter');
    const offer = button(page, 'Not now');
    const account = page.getByRole('heading', { level: 1, name: 'Your account' });
    await offer.or(account).first().waitFor();
    if (await offer.isVisible()) await offer.click();
    await account.waitFor();
    await page.locator('.lk-credential').first().waitFor();
    problems.push(...(await pageProblems(page, 'account page with credentials', 'Change password')));

    expect(problems).toEqual([]);
    expect(noConsoleTrouble(seen)).toEqual([]);
  });

  it('account page with a linked account (Linked accounts: the upstream name and email, Unlink) and an Unlink refused on the last way in', async () => {
    // linked@ has a password and an upstream identity linked through upcorp, as a sign-in proof leaves it
    const linked = (await server.services.users.findByEmail('pages', 'linked@example.test'))!;
    await server.services.db('federated_identities').insert({
      realm_id: 'pages', connection_id: 'upcorp', subject: 'up-linked', user_id: linked.id, email: 'linked@upstream.test',
      profile: JSON.stringify({ name: 'Ada at Upstream' }), created_at: Date.now() - 86_400_000, last_login_at: Date.now() - 3_600_000,
    });
    const { page, seen } = await freshPage();
    const problems: string[] = [];
    await page.goto(`${issuer}/account`);
    await heading(page, /Sign in/);
    await signInWithPassword(page, 'linked@example.test', 'Your account');
    const section = page.getByRole('region', { name: 'Linked accounts' });
    await section.getByText('linked@upstream.test').waitFor();
    await expect(section.getByRole('button', { name: 'Unlink Upstream Corp' }).isVisible()).resolves.toBe(true);
    problems.push(...(await pageProblems(page, 'account page with a linked account', 'Unlink Upstream Corp')));

    // with the password gone the link is the only way in: the warning describes the button, and the refusal is announced
    await server.services.db('users').where({ id: linked.id }).update({ password_hash: null });
    await page.reload();
    const unlink = section.getByRole('button', { name: 'Unlink Upstream Corp' });
    await expect(unlink.evaluate((el) => document.getElementById(el.getAttribute('aria-describedby') ?? '')?.textContent)).resolves.toMatch(/only way to sign in/);
    await unlink.click();
    await page.getByRole('alert').filter({ hasText: /only way to sign in/ }).waitFor();
    problems.push(...(await pageProblems(page, 'account page, unlinking the last way in refused', 'Unlink Upstream Corp')));
    expect(await server.services.linking.identitiesOf('pages', linked.id)).toHaveLength(1);

    expect(problems).toEqual([]);
    expect(noConsoleTrouble(seen)).toEqual([]);
  });

  it('account page of someone without a password: deleting the last passkey needs a confirmation, and a deletion sent without it is refused on the checkbox', async () => {
    const { page, seen } = await freshPage();
    const problems: string[] = [];

    await page.goto(`${issuer}/account`);
    await typeEmail(page, 'solo@example.test');
    await heading(page, /Sign in with your passkey/);
    await page.getByRole('link', { name: 'Use a recovery code' }).click();
    await page.getByLabel('Recovery code').fill(soloRecoveryCodes[1]!);
    await button(page, 'Use recovery code').click();
    const offer = button(page, 'Not now');
    const account = page.getByRole('heading', { level: 1, name: 'Your account' });
    await offer.or(account).first().waitFor();
    if (await offer.isVisible()) await offer.click();
    await account.waitFor();

    const confirm = page.getByRole('checkbox', { name: /I understand I will need a recovery code or another passkey/ });
    await confirm.waitFor();
    // the warning is what the checkbox is described by (a screen reader reads it with the checkbox)
    expect(await confirm.evaluate((el) => (el.getAttribute('aria-describedby') ?? '').split(/\s+/).map((id) => document.getElementById(id)?.textContent ?? '').join(' '))).toMatch(
      /last way to sign in without a password/,
    );
    problems.push(...(await pageProblems(page, 'account page, the last passkey', /^Delete/)));

    // a deletion sent without the confirmation (the browser's own "required" check taken away, as a
    // script or an old browser would send it): refused, the passkey kept, the checkbox marked and focused
    await page.locator('.lk-delete-form input[name="confirm"]').evaluate((el) => el.removeAttribute('required'));
    await page.locator('.lk-delete-form button[type="submit"]').first().click();
    await page.getByRole('alert').filter({ hasText: /./ }).waitFor();
    await expect.poll(() => confirm.getAttribute('aria-invalid')).toBe('true');
    expect(await confirm.evaluate((el) => el === document.activeElement)).toBe(true);
    expect(await page.locator('.lk-credential').count()).toBe(1);
    problems.push(...(await pageProblems(page, 'account page, deletion refused without the confirmation', /^Delete/)));

    expect(problems).toEqual([]);
    expect(noConsoleTrouble(seen)).toEqual([]);
  });

  it('organisations: the picker for someone in two, and the single sign-on page of one with two connections', async () => {
    const { page, seen } = await freshPage();
    const problems: string[] = [];

    await authorize(page, corpWeb);
    await signInWithPassword(page, 'multi@example.test', 'Choose an organisation');
    problems.push(...(await pageProblems(page, 'organisation picker', 'Continue')));

    const other = await freshPage();
    await authorize(other.page, corpWeb);
    await typeEmail(other.page, 'erlich@hooli.test');
    await heading(other.page, 'Sign in to Hooli');
    problems.push(...(await pageProblems(other.page, 'single sign-on', 'Continue with Upstream Corp')));

    expect(problems).toEqual([]);
    expect([...noConsoleTrouble(seen), ...noConsoleTrouble(other.seen)]).toEqual([]);
  });

  for (const { id, colour } of COLOURED) {
    it(`a realm's own colour (${colour}): email step, wrong password, passkey offer and account page stay readable and show their focus`, async () => {
      const { page, seen } = await freshPage();
      const problems: string[] = [];
      await authorize(page, coloured.get(id)!);
      await heading(page, /Sign in/);
      await page.getByRole('link', { name: 'Continue with Upstream Corp' }).waitFor();
      problems.push(...(await pageProblems(page, `${colour}: email step`, 'Continue')));
      await typeEmail(page, 'ada@example.test');
      await heading(page, /Enter your password/);
      await typePassword(page, 'definitely-not-the-password-42');
      await page.getByRole('alert').filter({ hasText: /Incorrect email or password/ }).waitFor();
      problems.push(...(await pageProblems(page, `${colour}: wrong password`, 'Sign in')));
      await typePassword(page);
      await heading(page, 'Create a passkey for faster sign-in');
      await page.waitForLoadState('load');
      await button(page, 'Create a passkey').waitFor();
      problems.push(...(await pageProblems(page, `${colour}: passkey offer`, 'Create a passkey')));
      await button(page, 'Not now').click();
      await page.waitForURL((u) => u.href.startsWith(app.redirectUri));
      // the account page: its checkbox ("Sign out of all other devices") in the realm's colours
      await page.goto(`http://${id}.localhost:${server.port}/account`);
      await heading(page, 'Your account');
      problems.push(...(await pageProblems(page, `${colour}: account page`, 'Change password')));
      expect(problems).toEqual([]);
      expect(noConsoleTrouble(seen)).toEqual([]);
    });
  }

  it('the checks can fail: an unlabelled field, a button without a focus ring, an unreachable action and a page wider than 320px are reported (canary)', async () => {
    const { page } = await freshPage();
    await authorize(page, web);
    await heading(page, /Sign in/);
    await page.evaluate(() => {
      document.querySelector('label[for="lk-email"]')!.remove();
      // CSSOM, which the pages' CSP allows (it forbids style attributes in the markup, not this)
      const continueButton = Array.from(document.querySelectorAll('button')).find((b) => b.textContent?.trim() === 'Continue')!;
      continueButton.style.outline = 'none';
      (document.querySelector('h1') as HTMLElement).style.minWidth = '40rem';
    });
    expect((await accessibilityProblems(page, 'canary')).join('\n')).toMatch(/canary \(light\): label \[critical\] .*#lk-email/);
    const keyboard = (await keyboardProblems(page, 'canary', 'No such button')).join('\n');
    expect(keyboard).toMatch(/Tab stop button\.lk-button.* "Continue" has no visible focus indicator/);
    expect(keyboard).toMatch(/the main action "No such button" is not reached with Tab/);
    expect((await reflowProblems(page, 'canary')).join('\n')).toMatch(/canary \(320px wide\): the page is \d+px wide in a 320px window: .*h1\.lk-title/);
  });
});
