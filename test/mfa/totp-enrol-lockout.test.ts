import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { authorizationRequest, discover, PASSWORD } from '../helpers/flows.js';
import { Browser } from '../helpers/http.js';
import { readPage, submit } from '../helpers/passkey-flows.js';
import { startTestServer, type TestServer } from '../helpers/server.js';
import { codeAt } from '../helpers/totp.js';

const REDIRECT = 'http://app.example.test/cb';

/**
 * Setting up the authenticator app during sign-in (MFA required) after too many wrong codes: the
 * attempts are locked for a while, and the page must say so. Calling the right code wrong sends the
 * user off to scan the QR code again and retype, for nothing.
 */
describe('authenticator-app set-up at sign-in, locked after wrong codes', () => {
  let server: TestServer;
  let issuer: string;
  let clientId: string;

  beforeAll(async () => {
    server = await startTestServer();
    const dir = mkdtempSync(join(tmpdir(), 'latchkey-enrol-lock-'));
    writeFileSync(join(dir, 's.json'), JSON.stringify({ mfa: 'required' }));
    issuer = `http://locked.localhost:${server.port}`;
    expect((await server.cli(['realm', 'create', '--id', 'locked', '--issuer', issuer, '--settings', join(dir, 's.json')])).code).toBe(0);
    const client = await server.cli(['client', 'create', '--realm', 'locked', '--name', 'App', '--redirect-uri', REDIRECT, '--first-party', '--public']);
    expect(client.code, client.stderr).toBe(0);
    clientId = client.json.client_id;
    expect((await server.cli(['user', 'create', '--realm', 'locked', '--email', 'slow@example.test', '--password-stdin'], PASSWORD)).code).toBe(0);
  });
  afterAll(async () => server?.close());

  it('says to wait (429, Retry-After) when the right code comes after too many wrong ones, and accepts it once the wait is over', async () => {
    const browser = new Browser();
    const auth = await authorizationRequest(await discover(issuer, clientId), REDIRECT);
    const first = await readPage(await browser.follow(auth.url, {}, REDIRECT));
    const pw = await readPage(await submit(browser, first, '/identify', { email: 'slow@example.test' }, REDIRECT));
    let page = await readPage(await submit(browser, pw, '/login', { email: 'slow@example.test', password: PASSWORD }, REDIRECT));
    const secret = /<p class="lk-secret"><code>([^<]+)<\/code>/.exec(page.html)?.[1]?.replace(/\s+/g, '');
    expect(secret, page.html.slice(0, 300)).toBeTruthy();
    for (let i = 0; i < 5; i++) {
      page = await readPage(await submit(browser, page, '/totp/enrol', { code: '000000' }, REDIRECT));
      expect(page.status).toBe(400);
    }
    const right = await submit(browser, page, '/totp/enrol', { code: codeAt(secret!, Date.now()) }, REDIRECT);
    expect(right.res.status).toBe(429);
    expect(Number(right.res.headers.get('retry-after'))).toBeGreaterThan(0);
    page = await readPage(right);
    expect(page.html).toMatch(/Too many wrong codes/);
    expect(page.html).not.toMatch(/code is not right/);
    // the same key is shown (nothing to scan again), and once the wait is over the code sets it up
    expect(page.html.replace(/\s+/g, '')).toContain(secret);
    const user = (await server.services.users.findByEmail('locked', 'slow@example.test'))!;
    await server.services.db('login_throttle').where({ realm_id: 'locked' }).where('key', 'like', `%${user.id}%`).delete();
    const done = await readPage(await submit(browser, page, '/totp/enrol', { code: codeAt(secret!, Date.now() + 30_000) }, REDIRECT));
    expect(done.html).toContain('Save your recovery codes');
  });

  it('at sign-in, "Verify it\'s you" after too many wrong codes also says how long to wait (429, Retry-After) and does not call the right code wrong', async () => {
    const user = (await server.services.users.findByEmail('locked', 'slow@example.test'))!;
    const row = await server.services.db('totp_factors').where({ realm_id: 'locked', user_id: user.id }).first();
    expect(row, 'the app set up by the test before').toBeTruthy();
    const browser = new Browser();
    const auth = await authorizationRequest(await discover(issuer, clientId), REDIRECT);
    const first = await readPage(await browser.follow(auth.url, {}, REDIRECT));
    const pw = await readPage(await submit(browser, first, '/identify', { email: 'slow@example.test' }, REDIRECT));
    let page = await readPage(await submit(browser, pw, '/login', { email: 'slow@example.test', password: PASSWORD }, REDIRECT));
    for (let i = 0; i < 5; i++) {
      page = await readPage(await submit(browser, page, '/totp"', { code: '000000' }, REDIRECT));
      expect(page.status).toBe(401);
    }
    const locked = await submit(browser, page, '/totp"', { code: '111111' }, REDIRECT);
    expect(locked.res.status).toBe(429);
    expect(Number(locked.res.headers.get('retry-after'))).toBeGreaterThan(0);
    page = await readPage(locked);
    expect(page.html).toMatch(/Too many wrong codes\. Wait \d+ minutes?, then enter the code/);
  });
});
