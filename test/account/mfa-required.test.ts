import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { alertText, csrfOf, flashText, walk } from '../helpers/account-pages.js';
import { describeEachDatabase } from '../helpers/databases.js';
import { PASSWORD, until } from '../helpers/flows.js';
import { Browser, parseForm, testFetch } from '../helpers/http.js';
import { startTestServer, type TestServer } from '../helpers/server.js';
import { codeForStep, stepOf } from '../helpers/totp.js';

const EMAIL = 'ivy@strict.test';

describeEachDatabase('the account page in a realm that requires a second factor', (kind) => {
  let server: TestServer;
  let issuer: string;

  beforeAll(async () => {
    server = await startTestServer({ db: kind });
    issuer = `http://strict.localhost:${server.port}`;
    const dir = mkdtempSync(join(tmpdir(), 'latchkey-mfa-account-'));
    writeFileSync(join(dir, 's.json'), JSON.stringify({ mfa: 'required' }));
    expect((await server.cli(['realm', 'create', '--id', 'strict', '--issuer', issuer, '--settings', join(dir, 's.json')])).code).toBe(0);
    expect((await server.cli(['user', 'create', '--realm', 'strict', '--email', EMAIL, '--password-stdin'], `${PASSWORD}\n`)).code).toBe(0);
    await until(async () => ((await testFetch(`${issuer}/.well-known/openid-configuration`)).status === 200 ? true : undefined), 'the new realm');
  });
  afterAll(async () => server?.close());

  it('asks for a confirmation before the authenticator app, the only second factor, is turned off', async () => {
    const s = server.services;
    const user = (await s.users.findByEmail('strict', EMAIL))!;
    const enrolment = await s.totp.startEnrolment('strict', user.id, EMAIL, 'Strict');
    const step = stepOf(Date.now());
    expect(await s.totp.confirmEnrolment('strict', user.id, codeForStep(enrolment.secret, step))).toBe(true);

    // sign in to the account page: email, password, then the authenticator app (the next code: the last one is used)
    const browser = new Browser();
    const start = await walk(browser, `${issuer}/account`);
    const identify = parseForm(start.html, '/identify');
    const pw = await walk(browser, new URL(identify.action, start.url), { form: { ...identify.fields, email: EMAIL } });
    const login = parseForm(pw.html, '/login');
    const mfa = await walk(browser, new URL(login.action, pw.url), { form: { ...login.fields, email: EMAIL, password: PASSWORD } });
    const totpForm = parseForm(mfa.html, '/totp');
    const offer = await walk(browser, new URL(totpForm.action, mfa.url), { form: { ...totpForm.fields, code: codeForStep(enrolment.secret, step + 1) } });
    const skip = parseForm(offer.html, '/offer/skip'); // "Create a passkey": not now
    const page = await walk(browser, new URL(skip.action, offer.url), { form: skip.fields });
    expect(page.url.pathname, page.html.slice(0, 400)).toBe('/account');

    expect(page.html).toContain('This organisation requires a second step, and the authenticator app is your only one.');
    expect(page.html).toMatch(/<input id="lk-totp-confirm" name="confirm" type="checkbox" value="yes" required aria-describedby="lk-totp-warning">/);
    expect(page.html).toContain('<label for="lk-totp-confirm">I understand I will set up a new second step when I next sign in</label>');

    // without the box: refused, the box marked, the app still on
    const refused = await walk(browser, `${issuer}/account/totp/remove`, { form: { csrf: csrfOf(page.html) } });
    expect(refused.res.status).toBe(400);
    expect(alertText(refused.html)).toMatch(/^This is your only second step, and this organisation requires one\./);
    expect(refused.html).toMatch(/<input id="lk-totp-confirm"[^>]*aria-describedby="lk-totp-warning lk-error" aria-invalid="true" autofocus>/);
    expect(await s.totp.isEnrolled('strict', user.id)).toBe(true);

    // with it: turned off
    const done = await walk(browser, `${issuer}/account/totp/remove`, { form: { csrf: csrfOf(refused.html), confirm: 'yes' } });
    expect(done.url.pathname).toBe('/account');
    expect(flashText(done.html)).toBe('Authenticator app turned off.');
    expect(await s.totp.isEnrolled('strict', user.id)).toBe(false);
  });
});
