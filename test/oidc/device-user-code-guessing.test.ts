import { afterAll, beforeAll, expect, it } from 'vitest';
import { describeEachDatabase } from '../helpers/databases.js';
import { postForm } from '../helpers/flows.js';
import { Browser, parseForm } from '../helpers/http.js';
import { startTestServer, type TestServer } from '../helpers/server.js';

const DEVICE_GRANT = 'urn:ietf:params:oauth:grant-type:device_code';
const LIMIT = 5;

// RFC 8628 §5.1: user codes are short, so their entry must be rate-limited; node-oidc-provider does not.
describeEachDatabase('guessing device-flow user codes', (kind) => {
  let server: TestServer;
  let tv: string;

  beforeAll(async () => {
    server = await startTestServer({ db: kind, overrides: { bruteForce: { maxFailuresPerAddress: LIMIT, waitIncrementSeconds: 60 } } });
    const created = await server.cli(['client', 'create', '--realm', 'default', '--name', 'TV', '--public', '--first-party', '--grant', DEVICE_GRANT]);
    expect(created.code, created.stderr).toBe(0);
    tv = created.json.client_id;
  });
  afterAll(async () => server?.close());

  async function submitCode(browser: Browser, userCode: string) {
    const page = await browser.follow(`${server.issuer}/device`);
    expect(page.res.status).toBe(200);
    const form = parseForm(await page.res.text());
    return browser.follow(new URL(form.action, page.url), { form: { ...form.fields, user_code: userCode } });
  }

  it('an address that entered too many wrong codes is refused (429) even with a right one; the device is not reached', async () => {
    const started = await postForm(`${server.issuer}/device/auth`, { client_id: tv, scope: 'openid' });
    expect(started.status, JSON.stringify(started.body)).toBe(200);
    const browser = new Browser();

    // a right code before any failure reaches the confirmation page (control)
    const right = await submitCode(browser, started.body.user_code);
    expect(right.res.status).toBe(200);
    expect(await right.res.text()).toContain(started.body.user_code);

    for (let i = 0; i < LIMIT; i++) {
      const wrong = await submitCode(browser, 'BCDF-GHJK');
      expect(wrong.res.status).toBe(200);
      expect(await wrong.res.text()).toContain('The code you entered is incorrect');
    }
    const locked = await submitCode(browser, started.body.user_code);
    expect(locked.res.status).toBe(429);
    expect(Number(locked.res.headers.get('retry-after'))).toBeGreaterThan(0);
    const html = await locked.res.text();
    expect(html).toContain('Too many incorrect codes');
    expect(html).not.toContain(started.body.user_code);

    // nothing was approved: the device is still waiting
    const poll = await postForm(`${server.issuer}/token`, { grant_type: DEVICE_GRANT, device_code: started.body.device_code, client_id: tv });
    expect(poll.body.error).toBe('authorization_pending');
  });
});

// The lock was read in a middleware before the code was looked up and the wrong code counted after it:
// guesses sent at once all passed the check before any was counted. Each guess is now counted first.
describeEachDatabase('guessing device-flow user codes in parallel', (kind) => {
  let server: TestServer;
  let tv: string;

  beforeAll(async () => {
    server = await startTestServer({ db: kind, overrides: { bruteForce: { maxFailuresPerAddress: LIMIT, waitIncrementSeconds: 60 } } });
    const created = await server.cli(['client', 'create', '--realm', 'default', '--name', 'TV', '--public', '--first-party', '--grant', DEVICE_GRANT]);
    expect(created.code, created.stderr).toBe(0);
    tv = created.json.client_id;
  });
  afterAll(async () => server?.close());

  /** A browser on the code-entry page, ready to post its form. */
  async function codePage(): Promise<{ browser: Browser; action: URL; fields: Record<string, string> }> {
    const browser = new Browser();
    const page = await browser.follow(`${server.issuer}/device`);
    expect(page.res.status).toBe(200);
    const form = parseForm(await page.res.text());
    return { browser, action: new URL(form.action, page.url), fields: form.fields };
  }

  it(`right codes do not count: more than ${LIMIT} in a row all reach the confirmation`, async () => {
    const started = await postForm(`${server.issuer}/device/auth`, { client_id: tv, scope: 'openid' });
    expect(started.status, JSON.stringify(started.body)).toBe(200);
    for (let i = 0; i < LIMIT + 2; i++) {
      const p = await codePage();
      const confirm = await p.browser.follow(p.action, { form: { ...p.fields, user_code: started.body.user_code } });
      expect(confirm.res.status, `right code ${i + 1}`).toBe(200);
      expect(await confirm.res.text()).toContain(started.body.user_code);
    }
  });

  it(`30 wrong codes at once from one address: ${LIMIT} are looked up, the rest refused with 429`, async () => {
    const pages = await Promise.all(Array.from({ length: 30 }, () => codePage()));
    const answers = await Promise.all(
      pages.map(async (p) => {
        const res = await p.browser.request(p.action, { form: { ...p.fields, user_code: 'BCDF-GHJK' } });
        return { status: res.status, html: await res.text() };
      }),
    );
    const statuses = answers.map((a) => a.status).join(' ');
    const lookedUp = answers.filter((a) => a.html.includes('The code you entered is incorrect'));
    expect(lookedUp.length, statuses).toBe(LIMIT);
    expect(answers.filter((a) => a.status === 429).length, statuses).toBe(30 - LIMIT);
  });
});
