/**
 * "Forgot your password?" and email address confirmation in Chromium, as a person does them with the
 * keyboard: the link on the password step, the request form, "Check your email", the page the emailed
 * link opens, a refused password, the new password, and the confirmation page. Every page is checked
 * with axe-core (WCAG 2.1 A/AA) and a keyboard walk to its main action; then the new password signs in
 * and reaches the application. Sign-up with email: "Check your email", a wrong code (the message read
 * out, focus on the field), the right code, on to the application.
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as oidc from 'openid-client';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { walkedPage } from '../helpers/accessibility.js';
import { declinePasskeyOffer, describeWithBrowser, launchChromium, startTestApp } from '../helpers/browser.js';
import { discover, PASSWORD, until } from '../helpers/flows.js';
import { testFetch } from '../helpers/http.js';
import { mailbox, type Mailbox } from '../helpers/mailbox.js';
import { realmWithApp } from '../helpers/realm-app.js';
import { startTestServer, type TestServer } from '../helpers/server.js';

const NEW_PASSWORD = 'juniper-kettle-harbor-6610';

describeWithBrowser('password reset and email confirmation pages in Chromium', () => {
  let server: TestServer;
  let smtp: Mailbox;
  let app: Awaited<ReturnType<typeof startTestApp>>;
  let browser: Browser;
  let config: oidc.Configuration;
  let openConfig: oidc.Configuration;
  let openIssuer: string;

  beforeAll(async () => {
    smtp = await mailbox();
    app = await startTestApp();
    server = await startTestServer({ overrides: { email: { smtpUrl: smtp.url } } });
    const client = await server.cli(['client', 'create', '--realm', 'default', '--name', 'Notes', '--redirect-uri', app.redirectUri, '--first-party']);
    expect(client.code, client.stderr).toBe(0);
    config = await discover(server.issuer, client.json.client_id, { client_secret: client.json.client_secret });
    const user = await server.cli(['user', 'create', '--realm', 'default', '--email', 'una@example.test', '--password-stdin'], `${PASSWORD}\n`);
    expect(user.code, user.stderr).toBe(0);
    const other = await server.cli(['user', 'create', '--realm', 'default', '--email', 'val@example.test', '--password-stdin'], `${PASSWORD}\n`);
    expect(other.code, other.stderr).toBe(0);
    await server.services.db('users').where({ email: 'val@example.test' }).update({ email_verified: false });
    await server.services.users.create({ realmId: 'default', email: 'xena@example.test', password: PASSWORD });
    // a realm with self-service sign-up
    const dir = mkdtempSync(join(tmpdir(), 'latchkey-email-pages-'));
    writeFileSync(join(dir, 'open.json'), JSON.stringify({ signup: true }));
    openIssuer = `http://open.localhost:${server.port}`;
    expect((await server.cli(['realm', 'create', '--id', 'open', '--name', 'Open', '--issuer', openIssuer, '--settings', join(dir, 'open.json')])).code).toBe(0);
    const openClient = await server.cli(['client', 'create', '--realm', 'open', '--name', 'Notes', '--redirect-uri', app.redirectUri, '--first-party']);
    expect(openClient.code, openClient.stderr).toBe(0);
    await until(async () => ((await testFetch(`${openIssuer}/.well-known/openid-configuration`).catch(() => undefined))?.status === 200 ? true : undefined), 'the new realm');
    openConfig = await discover(openIssuer, openClient.json.client_id, { client_secret: openClient.json.client_secret });
    browser = await launchChromium();
  });
  afterAll(async () => {
    await browser?.close();
    await server?.close();
    await app?.close();
    await smtp?.close();
  });

  const heading = (page: Page, name: string | RegExp) => page.getByRole('heading', { level: 1, name }).waitFor();

  async function authorize(page: Page, cfg = config) {
    const url = oidc.buildAuthorizationUrl(cfg, {
      redirect_uri: app.redirectUri,
      scope: 'openid email',
      code_challenge: await oidc.calculatePKCECodeChallenge(oidc.randomPKCECodeVerifier()),
      code_challenge_method: 'S256',
      state: oidc.randomState(),
    });
    await page.goto(url.href);
  }

  /** Signs in to the account page with the keyboard (email, Enter, password, Enter), past the passkey offer. */
  async function signInToAccount(page: Page, email: string) {
    await page.goto(`${server.issuer}/account`);
    await page.getByLabel('Email').fill(email);
    await page.keyboard.press('Enter');
    await page.getByLabel('Password').fill(PASSWORD);
    await page.keyboard.press('Enter');
    await declinePasskeyOffer(page, page.getByRole('heading', { name: 'Your account' }));
    await heading(page, 'Your account');
  }

  async function linkFrom(subject: RegExp): Promise<string> {
    const mail = await until(async () => smtp.mails.find((m) => subject.test(m.subject)), `an email "${subject.source}"`);
    return /^(http:\/\/\S+\/account\/\S+)$/m.exec(mail.text)![1]!;
  }

  it('walks through a password reset with the keyboard, then signs in with the new password', async () => {
    const { context, page, check, finish } = await walkedPage(browser);

    await authorize(page);
    await heading(page, /Sign in/);
    await page.getByLabel('Email').fill('una@example.test');
    await page.keyboard.press('Enter');
    await heading(page, /Enter your password/);
    // "Forgot your password?" is reached with Tab from the password field, after "Sign in"
    await page.getByLabel('Password').focus();
    for (let i = 0; i < 6; i++) {
      await page.keyboard.press('Tab');
      if ((await page.evaluate(() => document.activeElement?.textContent?.trim())) === 'Forgot your password?') break;
    }
    expect(await page.evaluate(() => document.activeElement?.textContent?.trim())).toBe('Forgot your password?');
    await page.keyboard.press('Enter');
    await heading(page, 'Reset your password');
    expect(await page.getByLabel('Email').inputValue()).toBe('una@example.test');
    await check(page, 'reset request', 'Send the link');
    await page.getByRole('button', { name: 'Send the link', exact: true }).focus();
    await page.keyboard.press('Enter');
    await heading(page, 'Check your email');
    await check(page, 'check your email', 'Back to sign-in');

    const signInTab = page;
    const linkPage = await context.newPage();
    await linkPage.goto(await linkFrom(/^Reset your .* password$/));
    await heading(linkPage, 'Choose a new password');
    await check(linkPage, 'choose a new password', 'Change password');
    await linkPage.getByLabel('New password', { exact: true }).fill('too-short');
    await linkPage.getByLabel('Confirm new password').fill('too-short');
    await linkPage.keyboard.press('Enter');
    await linkPage.getByRole('alert').filter({ hasText: /at least 15 characters/ }).waitFor();
    expect(await linkPage.evaluate(() => document.activeElement?.id)).toBe('lk-new-password');
    await check(linkPage, 'refused new password', 'Change password');
    await linkPage.getByLabel('New password', { exact: true }).fill(NEW_PASSWORD);
    await linkPage.getByLabel('Confirm new password').fill(NEW_PASSWORD);
    await linkPage.keyboard.press('Enter');
    await heading(linkPage, 'Your password has been changed');
    await check(linkPage, 'password changed');

    // back in the first tab: "Back to sign-in", the new password, and the application has its code
    await signInTab.getByRole('link', { name: 'Back to sign-in' }).click();
    await heading(signInTab, /Enter your password/);
    await signInTab.getByLabel('Password').fill(NEW_PASSWORD);
    await signInTab.keyboard.press('Enter');
    await declinePasskeyOffer(signInTab, signInTab.getByRole('heading', { name: 'Callback received' }));
    await signInTab.waitForURL((u) => u.href.startsWith(app.redirectUri));
    expect(new URL(signInTab.url()).searchParams.get('code')).toBeTruthy();

    await finish();
  });

  it('confirms an email address from the account page with the keyboard', async () => {
    const { page, check, finish } = await walkedPage(browser);

    await signInToAccount(page, 'val@example.test');
    await page.getByText('Your email address is not confirmed yet.').waitFor().catch(async (err) => {
      throw new Error(`${err.message}\n${(await page.content()).slice(0, 3000)}`);
    });
    await page.getByRole('button', { name: 'Send a confirmation link' }).focus();
    await page.keyboard.press('Enter');
    await page.getByRole('status').filter({ hasText: 'We sent a confirmation link' }).waitFor();

    await page.goto(await linkFrom(/^Confirm your email address/));
    await heading(page, 'Confirm your email address');
    await check(page, 'confirm your email address', 'Confirm');
    await page.getByRole('button', { name: 'Confirm', exact: true }).click();
    await heading(page, 'Email address confirmed');
    await check(page, 'email address confirmed');
    expect((await server.services.users.findByEmail('default', 'val@example.test'))!.emailVerified).toBe(true);
    await page.getByRole('link', { name: 'Go to your account' }).click();
    await heading(page, 'Your account');
    expect(await page.getByText('Your email address is not confirmed yet.').count()).toBe(0);

    await finish();
  });

  it('a realm requiring a confirmed address: the sign-in waits on its page, an early continue is announced, the link used elsewhere lets it finish', async () => {
    const { context, page, check, finish } = await walkedPage(browser);
    const strict = await realmWithApp(server, { id: 'strict', name: 'Strict', settings: { requireVerifiedEmail: true }, redirect: app.redirectUri });
    await server.services.users.create({ realmId: 'strict', email: 'yuri@example.test', password: PASSWORD, emailVerified: false });

    await authorize(page, strict.config);
    await heading(page, /Sign in/);
    await page.getByLabel('Email').fill('yuri@example.test');
    await page.keyboard.press('Enter');
    await page.getByLabel('Password').fill(PASSWORD);
    await page.keyboard.press('Enter');
    const waiting = page.getByRole('heading', { level: 1, name: 'Confirm your email address' });
    await declinePasskeyOffer(page, waiting);
    await waiting.waitFor();
    await check(page, 'waiting for the confirmation', 'I have confirmed it, continue');
    // Enter on the main action before the link was used is answered in the alert region
    await page.getByRole('button', { name: 'I have confirmed it, continue' }).focus();
    await page.keyboard.press('Enter');
    await page.getByRole('alert').filter({ hasText: 'Your email address is not confirmed yet.' }).waitFor();
    await check(page, 'not confirmed yet', 'I have confirmed it, continue');

    // the link, opened in another tab
    const mail = await until(async () => smtp.mails.find((m) => m.to === 'yuri@example.test'), 'the confirmation link');
    const other = await context.newPage();
    await other.goto(/^(http:\/\/\S+\/account\/verify-email\/\S+)$/m.exec(mail.text)![1]!);
    await other.getByRole('button', { name: 'Confirm', exact: true }).click();
    await other.getByRole('heading', { level: 1, name: 'Email address confirmed' }).waitFor();
    await other.close();

    await page.getByRole('button', { name: 'I have confirmed it, continue' }).click();
    await page.waitForURL((u) => u.href.startsWith(app.redirectUri));
    expect(new URL(page.url()).searchParams.get('code')).toBeTruthy();
    await finish();
  });

  it('signs up with an emailed code, with the keyboard: a wrong code is announced and focused, the right one goes on', async () => {
    const { page, check, finish } = await walkedPage(browser);

    await authorize(page, openConfig);
    await heading(page, /Sign in/);
    await page.getByRole('link', { name: /Create an account/ }).click();
    await heading(page, 'Create your account');
    await page.getByLabel('Email').fill('wren@example.test');
    await page.getByLabel(/^Password/).fill(PASSWORD);
    await page.keyboard.press('Enter');
    await heading(page, 'Check your email');
    // the code field has the focus: the code can be typed at once
    expect(await page.evaluate(() => document.activeElement?.id)).toBe('lk-signup-code');
    await check(page, 'sign-up code', 'Continue');

    const mail = await until(async () => smtp.mails.find((m) => m.to === 'wren@example.test'), 'the sign-up code');
    const code = /^ {4}(\d{6})$/m.exec(mail.text)![1]!;
    await page.getByLabel('Code').fill(code === '000000' ? '000001' : '000000');
    await page.keyboard.press('Enter');
    await page.getByRole('alert').filter({ hasText: 'That code is not right.' }).waitFor();
    expect(await page.evaluate(() => document.activeElement?.id)).toBe('lk-signup-code');
    expect(await page.getByLabel('Code').getAttribute('aria-invalid')).toBe('true');
    await check(page, 'wrong sign-up code', 'Continue');

    await page.getByLabel('Code').fill(code);
    await page.keyboard.press('Enter');
    await declinePasskeyOffer(page, page.getByRole('heading', { name: 'Callback received' }));
    await page.waitForURL((u) => u.href.startsWith(app.redirectUri));
    expect(new URL(page.url()).searchParams.get('code')).toBeTruthy();
    expect((await server.services.users.findByEmail('open', 'wren@example.test'))!.emailVerified).toBe(true);

    await finish();
  });

  it('changes the email address from the account page with the keyboard', async () => {
    const { page, check, finish } = await walkedPage(browser);

    await signInToAccount(page, 'xena@example.test');

    // a malformed address: the message is read out and the field has the focus
    await page.getByLabel('New email address').fill('xena-at-example');
    await page.getByLabel('New email address').evaluate((el) => el.removeAttribute('required'));
    await page.getByLabel('New email address').evaluate((el) => el.setAttribute('type', 'text'));
    await page.keyboard.press('Enter');
    await page.getByRole('alert').filter({ hasText: 'Enter a valid email address' }).waitFor();
    expect(await page.evaluate(() => document.activeElement?.id)).toBe('lk-new-email');
    await check(page, 'account page, refused new address');

    await page.getByLabel('New email address').fill('xena.new@example.test');
    await page.keyboard.press('Enter');
    await page.getByRole('status').filter({ hasText: 'Check the inbox of your new email address' }).waitFor();
    await check(page, 'account page, change asked');

    const mail = await until(async () => smtp.mails.find((m) => m.to === 'xena.new@example.test'), 'the change link');
    await page.goto(/^(http:\/\/\S+\/account\/change-email\/\S+)$/m.exec(mail.text)![1]!);
    await heading(page, 'Confirm your new email address');
    await check(page, 'confirm new email address', 'Change my email address');
    await page.getByRole('button', { name: 'Change my email address' }).focus();
    await page.keyboard.press('Enter');
    await heading(page, 'Email address changed');
    await check(page, 'email address changed');
    expect((await server.services.users.findByEmail('default', 'xena.new@example.test'))!.emailVerified).toBe(true);
    await page.getByRole('link', { name: 'Go to your account' }).click();
    await heading(page, 'Your account');
    await page.getByText('xena.new@example.test').first().waitFor();

    await finish();
  });
});
