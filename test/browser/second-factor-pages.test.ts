import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Browser, Page } from 'playwright-core';
import type * as oidc from 'openid-client';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { SoftAuthenticator } from '../helpers/authenticator.js';
import { describeWithBrowser, launchChromium, watchConsole } from '../helpers/browser.js';
import { authorizationRequest, discover, PASSWORD } from '../helpers/flows.js';
import { startTestServer, type TestServer } from '../helpers/server.js';
import { codeAt } from '../helpers/totp.js';

const REDIRECT = 'http://app.example.test/cb';

/**
 * The second-factor pages as a keyboard and screen-reader user meets them after a wrong code: the page
 * comes back with the error, and focus lands on the field the error is about (so the error, tied to it
 * with aria-describedby, is read out), with the same ways out as before. No CSP violation on the way.
 */
describeWithBrowser('second-factor pages after a wrong code, in Chromium', () => {
  let server: TestServer;
  let browser: Browser;
  let config: oidc.Configuration;
  let issuer: string;

  beforeAll(async () => {
    server = await startTestServer();
    const dir = mkdtempSync(join(tmpdir(), 'latchkey-a11y-'));
    writeFileSync(join(dir, 's.json'), JSON.stringify({ mfa: 'required' }));
    issuer = `http://strict.localhost:${server.port}`;
    expect((await server.cli(['realm', 'create', '--id', 'strict', '--issuer', issuer, '--settings', join(dir, 's.json')])).code).toBe(0);
    const client = await server.cli(['client', 'create', '--realm', 'strict', '--name', 'App', '--redirect-uri', REDIRECT, '--first-party']);
    expect(client.code, client.stderr).toBe(0);
    config = await discover(issuer, client.json.client_id, { client_secret: client.json.client_secret });
    for (const email of ['enrol@example.test', 'both@example.test']) {
      expect((await server.cli(['user', 'create', '--realm', 'strict', '--email', email, '--password-stdin'], PASSWORD)).code).toBe(0);
    }
    // both@ has an authenticator app and a security key
    const both = (await server.services.users.findByEmail('strict', 'both@example.test'))!;
    const enrolment = await server.services.totp.startEnrolment('strict', both.id, both.email, 'Strict');
    expect(await server.services.totp.confirmEnrolment('strict', both.id, codeAt(enrolment.secret, Date.now()))).toBe(true);
    const realm = (await server.services.realms.get('strict'))!;
    const rp = { rpId: 'strict.localhost', origins: [issuer], name: 'Strict' };
    const user = { id: both.id, email: both.email, name: null };
    const options = await server.services.passkeys.registrationOptions({ realmId: 'strict', settings: realm.settings, rp, user, boundTo: 'setup', kind: 'security-key' });
    const response = await new SoftAuthenticator({ backupEligible: false }).createCredential(options, issuer);
    await server.services.passkeys.verifyRegistration({ realmId: 'strict', settings: realm.settings, rp, user, boundTo: 'setup', kind: 'security-key', response });
    browser = await launchChromium();
  });
  afterAll(async () => {
    await browser?.close();
    await server?.close();
  });

  async function signInWithPassword(page: Page, email: string): Promise<void> {
    const auth = await authorizationRequest(config, REDIRECT);
    await page.goto(auth.url.href);
    await page.getByLabel('Email').fill(email);
    await page.keyboard.press('Enter');
    await page.getByLabel('Password').waitFor();
    await page.getByLabel('Password').fill(PASSWORD);
    await page.keyboard.press('Enter');
  }

  /** The focused element: its id and the text of what describes it. */
  const focused = (page: Page) =>
    page.evaluate(() => {
      const el = document.activeElement as HTMLElement | null;
      const ids = (el?.getAttribute('aria-describedby') ?? '').split(/\s+/).filter(Boolean);
      return { id: el?.id ?? '', invalid: el?.getAttribute('aria-invalid'), description: ids.map((id) => document.getElementById(id)?.textContent?.trim() ?? '').join(' ') };
    });

  it('authenticator-app set-up (MFA required): a wrong code focuses the code field, described by the error, and Cancel stays', async () => {
    const context = await browser.newContext();
    const page = await context.newPage();
    const seen = watchConsole(page);
    await signInWithPassword(page, 'enrol@example.test');
    await page.getByRole('heading', { level: 1, name: /second step/i }).waitFor();
    await expect(page.getByRole('button', { name: 'Cancel' }).count()).resolves.toBe(1);
    await page.getByLabel('Authentication code').fill('000000');
    await page.keyboard.press('Enter');
    await page.getByRole('alert').filter({ hasText: /not right/ }).waitFor();
    const now = await focused(page);
    expect(now.id).toBe('lk-totp-code');
    expect(now.invalid).toBe('true');
    expect(now.description).toMatch(/not right/);
    await expect(page.getByRole('button', { name: 'Cancel' }).count()).resolves.toBe(1);
    expect(seen.cspViolations).toEqual([]);
    expect(seen.errors).toEqual([]);
    await context.close();
  });

  it('"Verify it\'s you" with a security key and an app: a wrong app code, then a wrong recovery code, each focus their field', async () => {
    const context = await browser.newContext();
    const page = await context.newPage();
    const seen = watchConsole(page);
    await signInWithPassword(page, 'both@example.test');
    await page.getByRole('heading', { level: 1, name: /Verify it/ }).waitFor();
    await page.getByLabel('Authentication code').fill('000000');
    await page.getByLabel('Authentication code').press('Enter');
    await page.getByRole('alert').filter({ hasText: /not right/ }).waitFor();
    let now = await focused(page);
    expect(now.id).toBe('lk-totp-code');
    expect(now.description).toMatch(/not right/);

    await page.getByText('Use a recovery code').click();
    await page.getByLabel('Recovery code').fill('aaaa-bbbb-cccc');
    await page.getByLabel('Recovery code').press('Enter');
    await page.getByRole('alert').filter({ hasText: /recovery code is not valid/ }).waitFor();
    now = await focused(page);
    expect(now.id).toBe('lk-recovery-code');
    expect(now.invalid).toBe('true');
    expect(now.description).toMatch(/recovery code is not valid/);
    expect(seen.cspViolations).toEqual([]);
    expect(seen.errors).toEqual([]);
    await context.close();
  });
});
