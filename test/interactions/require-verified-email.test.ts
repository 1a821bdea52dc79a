/**
 * A realm that requires a confirmed email address (`requireVerifiedEmail`, Keycloak's "Verify email"):
 * a sign-in of a user whose address is not confirmed sends a link and waits on a page until it is used;
 * only then does the application get its code. Over HTTP through the real pages, with a real SMTP
 * server receiving the link and the ID token verified with jose against the JWKS.
 */
import { jwtVerify } from 'jose';
import type * as oidc from 'openid-client';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { walk } from '../helpers/account-pages.js';
import { describeEachDatabase } from '../helpers/databases.js';
import { authorizationRequest, exchangeCode, PASSWORD, remoteJwks, submitLogin, until } from '../helpers/flows.js';
import { Browser, parseForm } from '../helpers/http.js';
import { mailbox, type Mailbox } from '../helpers/mailbox.js';
import { realmWithApp } from '../helpers/realm-app.js';
import { startTestServer, type TestServer } from '../helpers/server.js';

const REDIRECT = 'http://app.example.test/cb';

describeEachDatabase('a realm that requires a confirmed email address', (kind) => {
  let server: TestServer;
  let smtp: Mailbox;
  let issuer: string;
  let config: oidc.Configuration;
  const mailsTo = (email: string) => smtp.mails.filter((m) => m.to === email);

  beforeAll(async () => {
    smtp = await mailbox();
    server = await startTestServer({ db: kind, overrides: { email: { smtpUrl: smtp.url } } });
    ({ issuer, config } = await realmWithApp(server, { id: 'strict', name: 'Strict', settings: { requireVerifiedEmail: true }, redirect: REDIRECT }));
  });
  afterAll(async () => {
    await server?.close();
    await smtp?.close();
  });

  async function signIn(email: string) {
    const browser = new Browser();
    const auth = await authorizationRequest(config, REDIRECT, { scope: 'openid email' });
    const done = await submitLogin(browser, await browser.follow(auth.url, {}, REDIRECT), email, PASSWORD, REDIRECT);
    return { browser, auth, done };
  }

  /** Posts the form of `html` whose action ends in `action`. */
  async function post(browser: Browser, html: string, at: URL, action: string) {
    const form = parseForm(html, action);
    return browser.follow(new URL(form.action, at), { form: form.fields }, REDIRECT);
  }

  it('an unconfirmed address: a link is sent, the sign-in waits on a page, and finishes once the link is used', async () => {
    const email = 'una@strict.test';
    const user = await server.services.users.create({ realmId: 'strict', email, password: PASSWORD, emailVerified: false });
    const { browser, auth, done } = await signIn(email);
    expect(done.url.href.startsWith(REDIRECT), 'no code before the address is confirmed').toBe(false);
    const waiting = await done.res.text();
    expect(waiting).toContain('<h1 class="lk-title">Confirm your email address</h1>');
    expect(waiting).toContain(email);

    const mail = await until(async () => mailsTo(email)[0], 'the confirmation email');
    const link = /^(http:\/\/\S+\/account\/verify-email\/[A-Za-z0-9_-]{43})$/m.exec(mail.text)?.[1];
    expect(link?.startsWith(`${issuer}/account/verify-email/`)).toBe(true);

    // "continue" before the link is used: said plainly, and the page stays
    const early = await post(browser, waiting, done.url, '/verify-email/continue');
    expect(early.res.status).toBe(400);
    const earlyHtml = await early.res.text();
    expect(earlyHtml).toContain('Your email address is not confirmed yet.');
    // "send the link again": within the minute no second email, and the page says how it works
    const resent = await post(browser, earlyHtml, early.url, '/verify-email/resend');
    expect(resent.res.status).toBe(200);
    expect(await resent.res.text()).toContain('A new link is on its way, unless one was sent less than a minute ago.');
    await new Promise((r) => setTimeout(r, 300));
    expect(mailsTo(email)).toHaveLength(1);

    // the link, used in another browser (a phone's mail app)
    const opened = await walk(new Browser(), link!);
    const confirm = parseForm(opened.html, '/account/verify-email/');
    expect((await walk(new Browser(), new URL(confirm.action, link), { form: confirm.fields })).html).toContain('Email address confirmed');

    const finished = await post(browser, earlyHtml, early.url, '/verify-email/continue');
    expect(finished.url.href.startsWith(REDIRECT), `ended at ${finished.url.href}`).toBe(true);
    const tokens = await exchangeCode(config, auth, finished.url);
    const { payload } = await jwtVerify(tokens.id_token!, remoteJwks(issuer), { issuer, audience: config.clientMetadata().client_id });
    expect(payload).toMatchObject({ sub: user.id, email, email_verified: true });
  });

  it('a confirmed address signs in at once, and no email is sent', async () => {
    const email = 'vera@strict.test';
    await server.services.users.create({ realmId: 'strict', email, password: PASSWORD, emailVerified: true });
    const { done } = await signIn(email);
    expect(done.url.href.startsWith(REDIRECT), `ended at ${done.url.href}`).toBe(true);
    await new Promise((r) => setTimeout(r, 300));
    expect(mailsTo(email)).toHaveLength(0);
  });

  it('the waiting page is no way around the rule: its continue refuses another sign-in, and the address stays unconfirmed', async () => {
    const email = 'walt@strict.test';
    await server.services.users.create({ realmId: 'strict', email, password: PASSWORD, emailVerified: false });
    const { browser, done } = await signIn(email);
    const waiting = await done.res.text();
    const again = await post(browser, waiting, done.url, '/verify-email/continue');
    expect(again.res.status).toBe(400);
    // a sign-in at its first step cannot post to the step
    const other = new Browser();
    const auth = await authorizationRequest(config, REDIRECT);
    const first = await other.follow(auth.url, {}, REDIRECT);
    const identify = parseForm(await first.res.text(), '/identify');
    const res = await other.request(new URL(identify.action.replace(/\/identify$/, '/verify-email/continue'), first.url), { method: 'POST', form: { csrf: identify.fields.csrf! } });
    expect(res.status).toBe(400);
    expect(await res.text()).toContain('Start by entering your email.');
    expect((await server.services.users.findByEmail('strict', email))!.emailVerified).toBe(false);
  });
});
