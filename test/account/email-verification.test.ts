import { decodeJwt, jwtVerify } from 'jose';
import type * as oidc from 'openid-client';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { flashText, signInToAccount, walk } from '../helpers/account-pages.js';
import { describeEachDatabase } from '../helpers/databases.js';
import { authorizationRequest, exchangeCode, PASSWORD, remoteJwks, skipPasskeyOffer, until } from '../helpers/flows.js';
import { Browser, parseForm } from '../helpers/http.js';
import { mailbox, type Mail, type Mailbox } from '../helpers/mailbox.js';
import { readPage, submit } from '../helpers/passkey-flows.js';
import { realmWithApp } from '../helpers/realm-app.js';
import { startTestServer, type TestServer } from '../helpers/server.js';

/*
 * Confirming an email address: a link sent from the account page (a sign-up with email configured
 * confirms its address by the emailed code instead); `email_verified` in the ID token follows. Opening the link changes nothing (mail scanners open links); its button confirms once.
 */

const REDIRECT = 'http://app.example.test/cb';
const linkIn = (mail: Mail) => /^(http:\/\/\S+\/account\/verify-email\/[A-Za-z0-9_-]{43})$/m.exec(mail.text)?.[1];

describeEachDatabase('email address confirmation', (kind) => {
  let server: TestServer;
  let smtp: Mailbox;
  let issuer: string;
  let config: oidc.Configuration;
  const mailsTo = (email: string) => smtp.mails.filter((m) => m.to === email);
  const verified = async (email: string) => (await server.services.users.findByEmail('open', email))!.emailVerified;

  beforeAll(async () => {
    smtp = await mailbox();
    server = await startTestServer({ db: kind, overrides: { email: { smtpUrl: smtp.url } } });
    ({ issuer, config } = await realmWithApp(server, { id: 'open', name: 'Open', settings: { signup: true }, redirect: REDIRECT }));
  });
  afterAll(async () => {
    await server?.close();
    await smtp?.close();
  });

  it('the link confirms the address once, and the next ID token says so', async () => {
    // an account whose address nobody confirmed (made by an operator, or signed up before email was set up;
    // a sign-up with email configured confirms it by its code: test/interactions/signup-code.test.ts)
    await server.services.users.create({ realmId: 'open', email: 'quinn@open.test', password: PASSWORD, emailVerified: false });
    const browser = new Browser();
    const auth = await authorizationRequest(config, REDIRECT, { scope: 'openid email' });
    const first = await readPage(await browser.follow(auth.url, {}, REDIRECT));
    const firstPw = await readPage(await submit(browser, first, '/identify', { email: 'quinn@open.test' }, REDIRECT));
    const done = await skipPasskeyOffer(browser, await submit(browser, firstPw, '/login', { email: 'quinn@open.test', password: PASSWORD }, REDIRECT), REDIRECT);
    expect(decodeJwt((await exchangeCode(config, auth, done.url)).id_token!).email_verified).toBe(false);
    const account = await walk(browser, `${issuer}/account`);
    const ask = parseForm(account.html, '/account/verify-email');
    expect((await walk(browser, new URL(ask.action, account.url), { form: ask.fields })).url.pathname).toBe('/account');

    const mail = await until(async () => mailsTo('quinn@open.test')[0], 'the confirmation email');
    expect(mail.subject).toBe('Confirm your email address for Open');
    expect(mail.text).toContain('The link works once, for 24 hours.');
    const link = linkIn(mail)!;
    expect(link.startsWith(`${issuer}/account/verify-email/`)).toBe(true);

    // opening the link (as a mail scanner would) changes nothing
    const opened = await walk(new Browser(), link);
    expect(opened.res.status).toBe(200);
    expect(opened.html).toContain('<h1 class="lk-title">Confirm your email address</h1>');
    expect(await verified('quinn@open.test')).toBe(false);
    // a post without the page's form token is refused
    const forged = await walk(new Browser(), link, { method: 'POST', form: {} });
    expect(forged.res.status).toBe(403);
    expect(await verified('quinn@open.test')).toBe(false);

    const form = parseForm(opened.html, '/account/verify-email/');
    const confirmed = await walk(new Browser(), new URL(form.action, link), { form: form.fields });
    expect(confirmed.res.status).toBe(200);
    expect(confirmed.html).toContain('<h1 class="lk-title">Email address confirmed</h1>');
    expect(await verified('quinn@open.test')).toBe(true);
    const user = (await server.services.users.findByEmail('open', 'quinn@open.test'))!;
    expect((await server.services.db('security_events').where({ user_id: user.id, type: 'email_verified' })).length).toBe(1);
    // used once
    expect((await walk(new Browser(), link)).res.status).toBe(400);
    expect((await walk(new Browser(), new URL(form.action, link), { form: form.fields })).res.status).toBe(400);

    // the next sign-in's ID token, verified against the JWKS, says the address is confirmed
    const again = new Browser();
    const auth2 = await authorizationRequest(config, REDIRECT, { scope: 'openid email' });
    const login = await readPage(await again.follow(auth2.url, {}, REDIRECT));
    const pw = await readPage(await submit(again, login, '/identify', { email: 'quinn@open.test' }, REDIRECT));
    const after = await submit(again, pw, '/login', { email: 'quinn@open.test', password: PASSWORD }, REDIRECT);
    const end = await skipPasskeyOffer(again, after, REDIRECT);
    const tokens = await exchangeCode(config, auth2, end.url);
    const { payload } = await jwtVerify(tokens.id_token!, remoteJwks(issuer), { issuer });
    expect(payload.email_verified).toBe(true);
  });

  it('the account page offers a new link while the address is unconfirmed, and not after', async () => {
    const s = server.services;
    await s.users.create({ realmId: 'open', email: 'tess@open.test', password: PASSWORD, emailVerified: false });
    const browser = new Browser();
    const page = await signInToAccount(browser, issuer, { email: 'tess@open.test', password: PASSWORD });
    expect(page.html).toContain('Your email address is not confirmed yet.');
    const form = parseForm(page.html, '/account/verify-email');
    const sent = await walk(browser, new URL(form.action, page.url), { form: form.fields });
    expect(sent.url.pathname).toBe('/account');
    expect(flashText(sent.html)).toBe('We sent a confirmation link to your email address. It may take a few minutes to arrive.');
    const mail = await until(async () => mailsTo('tess@open.test')[0], 'the confirmation email to tess');
    const link = linkIn(mail)!;
    // a live confirmation token is no password reset token
    const crossed = await walk(new Browser(), link.replace('/verify-email/', '/password-reset/'));
    expect(crossed.res.status).toBe(400);
    expect(crossed.html).toContain('This password reset link has expired or was already used.');
    const opened = await walk(new Browser(), link);
    const confirm = parseForm(opened.html, '/account/verify-email/');
    expect((await walk(new Browser(), new URL(confirm.action, link), { form: confirm.fields })).res.status).toBe(200);
    const reloaded = await walk(browser, `${issuer}/account`);
    expect(reloaded.res.status).toBe(200);
    expect(reloaded.html).not.toContain('Your email address is not confirmed yet.');
    expect(reloaded.html).not.toContain('/account/verify-email');
  });
});
