import { readFile } from 'node:fs/promises';
import type { Browser } from 'playwright-core';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { describeWithBrowser, launchChromium, watchConsole } from '../helpers/browser.js';
import { startTestServer, type TestServer } from '../helpers/server.js';

const PASSWORD = 'plum-orbit-cactus-velvet-91';
const EMAIL = 'lin@example.test';

describeWithBrowser('recovery codes saved as a file in Chromium', () => {
  let server: TestServer;
  let browser: Browser;

  beforeAll(async () => {
    server = await startTestServer();
    const user = await server.cli(['user', 'create', '--realm', 'default', '--email', EMAIL, '--name', 'Lin', '--password-stdin'], `${PASSWORD}\n`);
    expect(user.code, user.stderr).toBe(0);
    browser = await launchChromium();
  });

  afterAll(async () => {
    await browser?.close();
    await server?.close();
  });

  it('"Download the codes" on the page that shows new codes downloads recovery-codes.txt holding exactly those codes', async () => {
    const context = await browser.newContext({ acceptDownloads: true });
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

      await page.getByRole('button', { name: 'Create recovery codes', exact: true }).click();
      await page.getByRole('heading', { name: 'Save your recovery codes', exact: true }).waitFor();
      const shown = (await page.locator('ol.lk-codes code').allTextContents()).map((c) => c.trim());
      expect(shown).toHaveLength(10);

      const [download] = await Promise.all([page.waitForEvent('download'), page.getByRole('link', { name: 'Download the codes', exact: true }).click()]);
      expect(download.suggestedFilename()).toBe('recovery-codes.txt');
      expect(await download.failure()).toBeNull();
      const text = await readFile((await download.path())!, 'utf8');
      const lines = text.split('\n');
      expect(lines.filter((l) => shown.includes(l))).toEqual(shown);
      expect(text).toContain('Each code works only once.');
      // the page is still there (a download, not a navigation to the data: URL)
      await page.getByRole('heading', { name: 'Save your recovery codes', exact: true }).waitFor();
      expect(watched.cspViolations).toEqual([]);
    } finally {
      await context.close();
    }
  });
});
