import type { Browser } from 'playwright-core';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { describeWithBrowser, launchChromium, watchConsole } from '../helpers/browser.js';
import { startTestServer, type TestServer } from '../helpers/server.js';

const PASSWORD = 'plum-orbit-cactus-velvet-91';
const EMAIL = 'kim@example.test';

// The account page's Sign out is a form button (a POST with the page's CSRF token), reached and pressed
// from the keyboard; a GET of /account/sign-out only asks.
describeWithBrowser('signing out of the account page in Chromium', () => {
  let server: TestServer;
  let browser: Browser;

  beforeAll(async () => {
    server = await startTestServer();
    const user = await server.cli(['user', 'create', '--realm', 'default', '--email', EMAIL, '--password-stdin'], `${PASSWORD}\n`);
    expect(user.code, user.stderr).toBe(0);
    browser = await launchChromium();
  });

  afterAll(async () => {
    await browser?.close();
    await server?.close();
  });

  it('Sign out is a button: focused with Tab and pressed with Enter, it signs out; opening the old link only asks', async () => {
    const context = await browser.newContext();
    try {
      const page = await context.newPage();
      const watched = watchConsole(page);
      await page.goto(`${server.issuer}/account`);
      await page.getByLabel('Email').fill(EMAIL);
      await page.getByRole('button', { name: 'Continue', exact: true }).click();
      await page.getByLabel('Password').fill(PASSWORD);
      await page.getByRole('button', { name: 'Sign in', exact: true }).click();
      const offer = page.getByRole('button', { name: 'Not now', exact: true });
      const account = page.getByRole('heading', { name: 'Your account', exact: true });
      await offer.or(account).first().waitFor();
      if (await offer.isVisible()) await offer.click();
      await account.waitFor();

      // the old link (or any other site's navigation to it) signs nobody out
      await page.goto(`${server.issuer}/account/sign-out`);
      await page.getByRole('heading', { name: 'Sign out?', exact: true }).waitFor();
      await page.getByRole('link', { name: 'Back to your account', exact: true }).click();
      await account.waitFor();

      // Tab until the Sign out button has the focus, then Enter
      const signOut = page.getByRole('button', { name: 'Sign out', exact: true });
      let focused = false;
      for (let i = 0; i < 60 && !focused; i++) {
        await page.keyboard.press('Tab');
        focused = await signOut.evaluate((el) => el === document.activeElement);
      }
      expect(focused, 'the Sign out button is reachable with Tab').toBe(true);
      await page.keyboard.press('Enter');
      // on to the realm's sign-out confirmation, the account session gone
      await page.getByRole('button', { name: 'Yes, sign me out', exact: true }).click();
      await page.getByRole('heading', { name: 'You have signed out', exact: true }).waitFor();
      await page.goto(`${server.issuer}/account`);
      await page.getByLabel('Email').waitFor();
      expect(watched.cspViolations).toEqual([]);
    } finally {
      await context.close();
    }
  });
});
