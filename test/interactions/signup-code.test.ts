import { jwtVerify } from 'jose';
import type * as oidc from 'openid-client';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { SoftAuthenticator } from '../helpers/authenticator.js';
import { describeEachDatabase } from '../helpers/databases.js';
import { authorizationRequest, exchangeCode, PASSWORD, remoteJwks, skipPasskeyOffer, until } from '../helpers/flows.js';
import { Browser, parseForm } from '../helpers/http.js';
import { mailbox, type Mailbox } from '../helpers/mailbox.js';
import { passkeyRegistration, readPage, submit, type SignInPage } from '../helpers/passkey-flows.js';
import { realmWithApp } from '../helpers/realm-app.js';
import { startTestServer, type TestServer } from '../helpers/server.js';

/*
 * Sign-up with email configured: the form answers the same for an address with an account and one
 * without (status, redirect, page), the email follows; a new address gets a code that works once, in
 * time, five wrong tries per code; an existing one gets a notice with no code.
 */

const REDIRECT = 'http://app.example.test/cb';
const codeIn = (text: string) => /^ {4}(\d{6})$/m.exec(text)?.[1];

describeEachDatabase('sign-up by emailed code', (kind) => {
  let server: TestServer;
  let smtp: Mailbox;
  let issuer: string;
  let config: oidc.Configuration;
  const mailsTo = (email: string) => smtp.mails.filter((m) => m.to === email);

  beforeAll(async () => {
    smtp = await mailbox();
    // quick-login locks off: the per-code limit is what is tested here, not the burst lock
    server = await startTestServer({ db: kind, overrides: { email: { smtpUrl: smtp.url }, bruteForce: { quickLoginCheckMilliseconds: 0 } } });
    ({ issuer, config } = await realmWithApp(server, { id: 'open', name: 'Open', settings: { signup: true }, redirect: REDIRECT }));
    await server.services.users.create({ realmId: 'open', email: 'taken@open.test', password: PASSWORD });
  });
  afterAll(async () => {
    await server?.close();
    await smtp?.close();
  });

  /** A browser on the sign-up form of its own sign-in. */
  async function signupForm(scope = 'openid') {
    const browser = new Browser();
    const auth = await authorizationRequest(config, REDIRECT, { scope });
    const login = await readPage(await browser.follow(auth.url, {}, REDIRECT));
    const form = await readPage(await browser.follow(new URL(`/interaction/${login.uid}/signup`, issuer), {}, REDIRECT));
    return { browser, auth, form };
  }

  /** Posts the sign-up form without following: the raw answer, then the page it leads to. */
  async function postSignup(browser: Browser, form: SignInPage, fields: Record<string, string>) {
    const f = parseForm(form.html, '/signup');
    const res = await browser.request(new URL(f.action, form.url), { form: { ...f.fields, ...fields } });
    const location = res.headers.get('location');
    const next = location ? await readPage(await browser.follow(new URL(location, form.url), {}, REDIRECT)) : await readPage({ res, url: form.url });
    return { status: res.status, location, page: next };
  }

  const codePage = async (browser: Browser, page: SignInPage, code: string) => readPage(await submit(browser, page, '/signup/code', { code }, REDIRECT));

  it('answers a new and an existing address alike; the new one gets a code, the existing one a notice', async () => {
    const a = await signupForm();
    const b = await signupForm();
    const fresh = await postSignup(a.browser, a.form, { email: 'fresh@open.test', password: PASSWORD });
    const taken = await postSignup(b.browser, b.form, { email: 'taken@open.test', password: PASSWORD });
    expect([fresh.status, taken.status]).toEqual([303, 303]);
    expect(fresh.location).toBe(`/interaction/${a.form.uid}`);
    expect(taken.location).toBe(`/interaction/${b.form.uid}`);
    expect(fresh.page.status).toBe(200);
    const neutral = (p: SignInPage, email: string) => p.html.replaceAll(p.uid, 'UID').replaceAll(p.csrf, 'CSRF').replaceAll(email, 'EMAIL');
    expect(neutral(taken.page, 'taken@open.test')).toBe(neutral(fresh.page, 'fresh@open.test'));
    expect(fresh.page.html).toContain('We sent a 6-digit code to <strong>fresh@open.test</strong>.');
    // nothing is written before the code comes back
    expect(await server.services.users.findByEmail('open', 'fresh@open.test')).toBeUndefined();

    const code = await until(async () => mailsTo('fresh@open.test')[0], 'the code email');
    expect(code.subject).toBe('Your Open sign-up code');
    expect(codeIn(code.text)).toMatch(/^\d{6}$/);
    const notice = await until(async () => mailsTo('taken@open.test')[0], 'the notice email');
    expect(notice.subject).toBe('Someone tried to sign up to Open with your address');
    expect(notice.text).toContain('You already have an account with this address, so no new account was created.');
    expect(notice.text).toContain('Forgot your password?');
    expect(notice.text).not.toMatch(/\b\d{6}\b/);

    // the fresh address's code does nothing for the existing one: it is bound to its own sign-up
    const wrong = await codePage(b.browser, taken.page, codeIn(code.text)!);
    expect(wrong.status).toBe(400);
    expect(wrong.html).toContain('That code is not right.');
    expect((await server.services.users.findByEmail('open', 'taken@open.test'))!.name).toBeNull();
  });

  it('the code works once: the account is made with a confirmed address, and the ID token says so', async () => {
    const { browser, auth, form } = await signupForm('openid email');
    const sent = await postSignup(browser, form, { email: 'once@open.test', name: 'Once', password: PASSWORD });
    const code = codeIn((await until(async () => mailsTo('once@open.test')[0], 'the code email')).text)!;
    const page = sent.page;

    const next = await submit(browser, page, '/signup/code', { code: code.slice(0, 3) + ' ' + code.slice(3) }, REDIRECT);
    const user = (await server.services.users.findByEmail('open', 'once@open.test'))!;
    expect(user.emailVerified).toBe(true);
    expect(user.name).toBe('Once');
    const done = await skipPasskeyOffer(browser, next, REDIRECT);
    const tokens = await exchangeCode(config, auth, done.url);
    const { payload } = await jwtVerify(tokens.id_token!, remoteJwks(issuer), { issuer });
    expect(payload.sub).toBe(user.id);
    expect(payload.email_verified).toBe(true);
    // the password chosen on the form signs in
    expect((await server.services.users.verifyPassword('open', 'once@open.test', PASSWORD)).ok).toBe(true);

    // the same code again, on the same page: the sign-in it belonged to is over
    const again = await codePage(browser, page, code);
    expect(again.status).toBe(400);
    expect(again.html).toContain('<code>interaction_expired</code>');
    // no confirmation link is needed: the code confirmed the address
    expect(mailsTo('once@open.test').length).toBe(1);
  });

  it('a wrong code gets a clear message on the focused field, then the right one works; five wrong codes end the code', async () => {
    const { browser, form } = await signupForm();
    const sent = await postSignup(browser, form, { email: 'typo@open.test', password: PASSWORD });
    const code = codeIn((await until(async () => mailsTo('typo@open.test')[0], 'the code email')).text)!;
    const other = code === '000000' ? '000001' : '000000';

    const malformed = await codePage(browser, sent.page, 'abc');
    expect(malformed.status).toBe(400);
    expect(malformed.html).toContain('Enter the 6-digit code from the email, like 123456.');
    const wrong = await codePage(browser, sent.page, other);
    expect(wrong.status).toBe(400);
    expect(wrong.html).toContain('That code is not right. Check the email and enter the code again.');
    const field = /<input id="lk-signup-code"[^>]*>/.exec(wrong.html)![0];
    expect(field).toContain('aria-invalid="true"');
    expect(field).toContain('aria-describedby="lk-signup-code-hint lk-error"');
    expect(field).toContain('autofocus');
    const right = await codePage(browser, wrong, code);
    expect(right.html).toContain('lk-passkey-create');
    expect(await server.services.users.findByEmail('open', 'typo@open.test')).toBeDefined();
    // single use, within the same sign-in too: the code again is not taken
    const reused = await codePage(browser, wrong, code);
    expect(reused.status).toBe(400);
    expect(reused.html).toContain('Start by entering your email.');

    // five wrong codes: the right one no longer works; a new code does
    const second = await signupForm();
    const s2 = await postSignup(second.browser, second.form, { email: 'guess@open.test' });
    const first = codeIn((await until(async () => mailsTo('guess@open.test')[0], 'the code email')).text)!;
    const bad = first === '999999' ? '999998' : '999999';
    let last = s2.page;
    for (let i = 0; i < 5; i++) last = await codePage(second.browser, last, bad);
    expect(last.html).toContain('that was the last try');
    const refused = await codePage(second.browser, last, first);
    expect(refused.status).toBe(429);
    expect(refused.html).toContain('Too many wrong codes. Send a new code, then enter it.');
    expect(await server.services.users.findByEmail('open', 'guess@open.test')).toBeUndefined();
    const resent = await readPage(await submit(second.browser, refused, '/signup/resend', {}, REDIRECT));
    expect(resent.html).toContain('We sent a new code to guess@open.test. The earlier code no longer works.');
    const fresh = codeIn((await until(async () => mailsTo('guess@open.test')[1], 'the second code email')).text)!;
    if (fresh !== first) expect((await codePage(second.browser, resent, first)).status).toBe(400);
    // passwordless through the same step: on to the required passkey
    const offer = await codePage(second.browser, resent, fresh);
    expect(offer.html).toContain('lk-passkey-create');
    expect(offer.html).not.toContain('/offer/skip');
    const registered = await passkeyRegistration(second.browser, offer, new SoftAuthenticator(), issuer);
    expect(registered.status, JSON.stringify(registered.body)).toBe(200);
    expect((await server.services.users.findByEmail('open', 'guess@open.test'))!.emailVerified).toBe(true);
  });

  it('an expired code is refused with a clear message; a new code works', async () => {
    const { browser, form } = await signupForm();
    const sent = await postSignup(browser, form, { email: 'late@open.test', password: PASSWORD });
    const code = codeIn((await until(async () => mailsTo('late@open.test')[0], 'the code email')).text)!;
    // the code's time runs out (its expiry moved into the past, as time passing would)
    const key = { uid: form.uid };
    const p = (await server.services.progress.get('open', key))!;
    await server.services.progress.put('open', key, { ...p, signup: { ...p.signup!, expiresAt: Date.now() - 1000 } });
    const late = await codePage(browser, sent.page, code);
    expect(late.status).toBe(400);
    expect(late.html).toContain('That code has expired. Send a new code, then enter it.');
    expect(/<input id="lk-signup-code"[^>]*>/.exec(late.html)![0]).toContain('aria-invalid="true"');
    expect(await server.services.users.findByEmail('open', 'late@open.test')).toBeUndefined();
    const resent = await readPage(await submit(browser, late, '/signup/resend', {}, REDIRECT));
    const fresh = codeIn((await until(async () => mailsTo('late@open.test')[1], 'the second code email')).text)!;
    const offer = await codePage(browser, resent, fresh);
    expect(offer.html).toContain('lk-passkey-create');
    expect((await server.services.users.findByEmail('open', 'late@open.test'))!.emailVerified).toBe(true);
  });

  it('an earlier passwordless sign-up that never got its passkey is finished through the code; an account with a way in only gets the notice', async () => {
    // left by a sign-up before email was set up: the row, nothing else
    const halfway = await server.services.users.create({ realmId: 'open', email: 'halfway@open.test', emailVerified: false });
    const { browser, form } = await signupForm();
    const sent = await postSignup(browser, form, { email: 'halfway@open.test', name: 'Half', password: PASSWORD });
    const code = codeIn((await until(async () => mailsTo('halfway@open.test')[0], 'the code email')).text)!;
    const offer = await codePage(browser, sent.page, code);
    expect(offer.html).toContain('lk-passkey-create');
    const user = (await server.services.users.findByEmail('open', 'halfway@open.test'))!;
    expect(user.id).toBe(halfway.id);
    expect(user.emailVerified).toBe(true);
    expect(user.name).toBe('Half');
    expect((await server.services.users.verifyPassword('open', 'halfway@open.test', PASSWORD)).ok).toBe(true);

    // recovery codes are a way in: that account is someone's, and its address only gets the notice
    const held = await server.services.users.create({ realmId: 'open', email: 'held@open.test', emailVerified: false });
    await server.services.recovery.generate('open', held.id);
    const other = await signupForm();
    await postSignup(other.browser, other.form, { email: 'held@open.test' });
    const notice = await until(async () => mailsTo('held@open.test')[0], 'the notice');
    expect(notice.subject).toBe('Someone tried to sign up to Open with your address');
    expect(codeIn(notice.text)).toBeUndefined();
  });
});
