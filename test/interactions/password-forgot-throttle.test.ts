import { afterAll, beforeAll, expect, it } from 'vitest';
import { walk } from '../helpers/account-pages.js';
import { describeEachDatabase } from '../helpers/databases.js';
import { PASSWORD } from '../helpers/flows.js';
import { Browser, parseForm } from '../helpers/http.js';
import { mailbox, type Mailbox } from '../helpers/mailbox.js';
import { startTestServer, type TestServer } from '../helpers/server.js';

const LIMIT = 3;

// "Forgot your password?" read the address lock, then counted the request: requests sent at once all
// passed the check before any was counted, and each mailed a link. Each request is now counted first.
describeEachDatabase('password reset requests sent at once from one address', (kind) => {
  let server: TestServer;
  let smtp: Mailbox;
  const EMAIL = 'rue@example.test';

  beforeAll(async () => {
    smtp = await mailbox();
    server = await startTestServer({
      db: kind,
      overrides: { email: { smtpUrl: smtp.url, from: 'Sign-in <no-reply@example.test>' }, bruteForce: { maxFailuresPerAddress: LIMIT, waitIncrementSeconds: 60 } },
    });
    const r = await server.cli(['user', 'create', '--realm', 'default', '--email', EMAIL, '--password-stdin'], `${PASSWORD}\n`);
    expect(r.code, r.stderr).toBe(0);
  });
  afterAll(async () => {
    await server?.close();
    await smtp?.close();
  });

  /** A browser on the "Reset your password" form of its own sign-in. */
  async function forgotForm(): Promise<{ browser: Browser; action: URL; fields: Record<string, string> }> {
    const browser = new Browser();
    const start = await walk(browser, `${server.issuer}/account`);
    const identify = parseForm(start.html, '/identify');
    const pw = await walk(browser, new URL(identify.action, start.url), { form: { ...identify.fields, email: EMAIL } });
    const link = /<a href="([^"]+)">Forgot your password\?<\/a>/.exec(pw.html)?.[1];
    expect(link, pw.html.slice(0, 800)).toBeTruthy();
    const forgot = await walk(browser, new URL(link!, pw.url));
    const form = parseForm(forgot.html, '/forgot-password');
    return { browser, action: new URL(form.action, forgot.url), fields: form.fields };
  }

  it(`12 requests at once: ${LIMIT} are taken, the rest refused with 429`, async () => {
    const forms = await Promise.all(Array.from({ length: 12 }, () => forgotForm()));
    const statuses = await Promise.all(forms.map(async (f) => (await f.browser.request(f.action, { form: { ...f.fields, email: EMAIL } })).status));
    expect(statuses.filter((s) => s === 200).length, statuses.join(' ')).toBe(LIMIT);
    expect(statuses.filter((s) => s === 429).length, statuses.join(' ')).toBe(12 - LIMIT);
  });
});
