import * as oidc from 'openid-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/load.js';
import { alertText, csrfOf, walk, type Step } from '../helpers/account-pages.js';
import { describeEachDatabase } from '../helpers/databases.js';
import { discover, PASSWORD, postForm, signIn as signInWithPassword, until } from '../helpers/flows.js';
import { Browser, parseForm, testFetch } from '../helpers/http.js';
import { mailbox, type Mail, type Mailbox } from '../helpers/mailbox.js';
import { startTestServer, type TestServer } from '../helpers/server.js';

/*
 * "Forgot your password?": a single-use link by email (to a real SMTP server started here), the page
 * it opens, and everything around it: no account enumeration, single use under concurrency, expiry,
 * links ended by a password change, sign-out everywhere after a reset, CSRF.
 */

const NEW_PASSWORD = 'lantern-orchard-pebble-5521';

const linkIn = (mail: Mail) => /^(http:\/\/\S+\/account\/password-reset\/\S+)$/m.exec(mail.text)?.[1];

describeEachDatabase('password reset by email', (kind) => {
  let server: TestServer;
  let smtp: Mailbox;
  let home: string;
  const IVY = 'ivy@home.test';
  const JUDE = 'jude@home.test';
  const KAI = 'kai@home.test'; // passkey-only: no password, so no reset by email
  const LIAM = 'liam@home.test';
  const MAYA = 'maya@home.test';
  const NOOR = 'noor@home.test';
  const OTTO = 'otto@home.test';

  const cli = async (args: string[], stdin?: string) => server.cli(args, stdin);
  const passwordWorks = async (email: string, password: string) => (await server.services.users.verifyPassword('home', email, password)).ok;
  const mailsTo = (email: string) => smtp.mails.filter((m) => m.to === email);

  /** The sign-in's password page for `email`, reached through the account page's sign-in. */
  async function passwordPage(browser: Browser, email: string): Promise<Step> {
    const start = await walk(browser, `${home}/account`);
    const identify = parseForm(start.html, '/identify');
    return walk(browser, new URL(identify.action, start.url), { form: { ...identify.fields, email } });
  }

  /** "Forgot your password?" from the password page, then the form posted with `email`. */
  async function askForLink(email: string, asked = email): Promise<Step> {
    const browser = new Browser();
    const pw = await passwordPage(browser, email);
    const link = /<a href="([^"]+)">Forgot your password\?<\/a>/.exec(pw.html)?.[1];
    expect(link, pw.html.slice(0, 1500)).toMatch(/^\/interaction\/[^/]+\/forgot-password$/);
    const forgot = await walk(browser, new URL(link!, pw.url));
    expect(forgot.res.status).toBe(200);
    const form = parseForm(forgot.html, '/forgot-password');
    expect(form.fields.email).toBe(email);
    return walk(browser, new URL(form.action, forgot.url), { form: { ...form.fields, email: asked } });
  }

  async function linkFor(email: string): Promise<string> {
    const before = mailsTo(email).length;
    const sent = await askForLink(email);
    expect(sent.res.status).toBe(200);
    const mail = await until(async () => mailsTo(email)[before], `a reset email to ${email}`);
    return linkIn(mail)!;
  }

  beforeAll(async () => {
    smtp = await mailbox();
    server = await startTestServer({ db: kind, overrides: { email: { smtpUrl: smtp.url, from: 'Home sign-in <no-reply@home.test>', passwordResetTtlSeconds: 600 } } });
    home = `http://home.localhost:${server.port}`;
    expect((await cli(['realm', 'create', '--id', 'home', '--name', 'Home', '--issuer', home])).code).toBe(0);
    for (const email of [IVY, JUDE, LIAM, MAYA, NOOR, OTTO]) {
      const r = await cli(['user', 'create', '--realm', 'home', '--email', email, '--password-stdin'], `${PASSWORD}\n`);
      expect(r.code, r.stderr).toBe(0);
    }
    expect((await cli(['user', 'create', '--realm', 'home', '--email', KAI])).code).toBe(0);
    await until(async () => ((await testFetch(`${home}/.well-known/openid-configuration`)).status === 200 ? true : undefined), 'the new realm');
  });
  afterAll(async () => {
    await server?.close();
    await smtp?.close();
  });

  it('sends a single-use link; the new password works, the old one and every session and refresh token end', async () => {
    const app = await cli(['client', 'create', '--realm', 'home', '--name', 'Phone app', '--first-party', '--redirect-uri', 'http://app.example.test/cb']);
    expect(app.code, app.stderr).toBe(0);
    const appConfig = await discover(home, app.json.client_id, { client_secret: app.json.client_secret });
    const phone = await signInWithPassword(new Browser(), appConfig, 'http://app.example.test/cb', IVY, { scope: 'openid offline_access' });
    expect(phone.refresh_token).toBeTruthy();

    // (an address not confirmed yet, as after a self-service sign-up)
    await server.services.db('users').where({ realm_id: 'home', email: IVY }).update({ email_verified: false });
    expect((await server.services.users.findByEmail('home', IVY))!.emailVerified).toBe(false);
    const sent = await askForLink(IVY);
    expect(sent.res.status).toBe(200);
    expect(sent.html).toContain('<h1 class="lk-title">Check your email</h1>');
    expect(sent.html).toContain(`If <strong>${IVY}</strong> belongs to an account with a password, we sent it a link`);
    const mail = await until(async () => mailsTo(IVY)[0], 'the reset email');
    expect(mail.subject).toBe('Reset your Home password');
    const link = linkIn(mail)!;
    expect(link).toMatch(new RegExp(`^${home}/account/password-reset/[A-Za-z0-9_-]{43}$`));
    expect(mail.text).toContain('The link works once, for 10 minutes.');
    // only a hash of the link's token is stored
    const token = link.split('/').pop()!;
    const rows = await server.services.db('email_links').select();
    expect(rows.length).toBe(1);
    expect(JSON.stringify(rows)).not.toContain(token);

    const browser = new Browser();
    const open = await walk(browser, link);
    expect(open.res.status).toBe(200);
    expect(open.res.headers.get('cache-control')).toBe('no-store');
    expect(open.res.headers.get('referrer-policy')).toBe('no-referrer');
    expect(open.html).toContain('<h1 class="lk-title">Choose a new password</h1>');
    expect(open.html).toContain(`<input type="text" name="username" value="${IVY}" autocomplete="username" readonly hidden>`);
    const form = parseForm(open.html, '/account/password-reset/');

    // mistakes leave the link usable
    const mismatch = await walk(browser, new URL(form.action, link), { form: { ...form.fields, new_password: NEW_PASSWORD, new_password_again: `${NEW_PASSWORD}x` } });
    expect(mismatch.res.status).toBe(400);
    expect(alertText(mismatch.html)).toBe('The two passwords do not match. Type the same new password in both fields.');
    const short = await walk(browser, new URL(form.action, link), { form: { ...form.fields, new_password: 'too-short', new_password_again: 'too-short' } });
    expect(short.res.status).toBe(400);
    expect(alertText(short.html)).toMatch(/at least 15 characters/);
    expect(await passwordWorks(IVY, PASSWORD)).toBe(true);

    const done = await walk(browser, new URL(form.action, link), { form: { ...form.fields, new_password: NEW_PASSWORD, new_password_again: NEW_PASSWORD } });
    expect(done.res.status).toBe(200);
    expect(done.html).toContain('<h1 class="lk-title">Your password has been changed</h1>');
    expect(await passwordWorks(IVY, PASSWORD)).toBe(false);
    expect(await passwordWorks(IVY, NEW_PASSWORD)).toBe(true);
    // the link reached the mailbox: the address is confirmed too
    expect((await server.services.users.findByEmail('home', IVY))!.emailVerified).toBe(true);
    await expect(oidc.refreshTokenGrant(appConfig, phone.refresh_token!)).rejects.toMatchObject({ error: 'invalid_grant' });
    const ivy = (await server.services.users.findByEmail('home', IVY))!;
    const events = await server.services.db('security_events').where({ user_id: ivy.id }).orderBy('id');
    expect(events.map((e: { type: string }) => e.type)).toEqual(['password_reset_requested', 'password_reset']);
    expect(JSON.parse(events[1].detail)).toMatchObject({ sessionsEnded: 1, grantsRevoked: 1 });

    // used once: the link, opened or posted again, no longer works
    const again = await walk(new Browser(), link);
    expect(again.res.status).toBe(400);
    expect(again.html).toContain('This password reset link has expired or was already used.');
    const replay = await walk(browser, new URL(form.action, link), { form: { ...form.fields, new_password: 'another-long-passphrase-77', new_password_again: 'another-long-passphrase-77' } });
    expect(replay.res.status).toBe(400);
    expect(await passwordWorks(IVY, NEW_PASSWORD)).toBe(true);
  });

  it('answers the same for an unknown email and a passkey-only account, and sends them nothing', async () => {
    const known = await askForLink(JUDE);
    const unknown = await askForLink('nobody@home.test');
    // (a passkey-only account gets the passkey step, not the password page: someone asks for it from another's)
    const passkeyOnly = await askForLink(LIAM, KAI);
    const text = (s: Step, email: string) => s.html.replace(/\/interaction\/[^/"]+/g, '/interaction/X').replaceAll(email, 'EMAIL').replace(/value="[^"]+"/g, '');
    expect(unknown.res.status).toBe(known.res.status);
    expect(passkeyOnly.res.status).toBe(known.res.status);
    expect(text(unknown, 'nobody@home.test')).toBe(text(known, JUDE));
    expect(text(passkeyOnly, KAI)).toBe(text(known, JUDE));
    // jude's email arrives; by then the others would have been sent too (each goes out right after its answer)
    await until(async () => mailsTo(JUDE)[0], 'the reset email to jude');
    const later = await askForLink(LIAM);
    expect(later.res.status).toBe(200);
    await until(async () => mailsTo(LIAM)[0], 'the reset email to liam');
    expect(mailsTo(LIAM).length).toBe(1);
    expect(mailsTo('nobody@home.test')).toEqual([]);
    expect(mailsTo(KAI)).toEqual([]);
  });

  it('sends one email a minute per account, and refuses a malformed email by name', async () => {
    await linkFor(MAYA);
    const second = await askForLink(MAYA);
    expect(second.res.status).toBe(200);
    expect(second.html).toContain('Check your email');
    // a later request of another account is delivered, while maya's second one never is
    await linkFor(OTTO);
    expect(mailsTo(MAYA).length).toBe(1);

    const bad = await askForLink(MAYA, 'not-an-email');
    expect(bad.res.status).toBe(400);
    expect(alertText(bad.html)).toBe('Enter a valid email address, like name@example.com.');
  });

  it('ends pending links when the password changes otherwise, when they expire, and on another realm', async () => {
    const stale = await linkFor(NOOR);
    const r = await cli(['user', 'set-password', '--realm', 'home', '--email', NOOR, '--password-stdin'], 'orbit-candle-meadow-8844\n');
    expect(r.code, r.stderr).toBe(0);
    expect((await walk(new Browser(), stale)).res.status).toBe(400);

    // a minute later (the one-a-minute rule), a new link; then it expires
    await server.services.db('email_links').update({ created_at: Date.now() - 120_000 });
    const expiring = await linkFor(NOOR);
    expect((await walk(new Browser(), expiring)).res.status).toBe(200);
    await server.services.db('email_links').update({ expires_at: Date.now() - 1 });
    const expired = await walk(new Browser(), expiring);
    expect(expired.res.status).toBe(400);
    expect(expired.html).toContain('This password reset link has expired or was already used.');

    // a link made for the home realm does not work at another realm's issuer
    await server.services.db('email_links').update({ created_at: Date.now() - 120_000, expires_at: Date.now() - 1 });
    const fresh = await linkFor(NOOR);
    const elsewhere = fresh.replace(home, server.issuer);
    expect((await walk(new Browser(), elsewhere)).res.status).toBe(400);
    expect((await walk(new Browser(), fresh)).res.status).toBe(200);
  });

  it('an operator makes a link to hand over: CLI (JSON) and admin API, on the realm\'s issuer, no email sent', async () => {
    const PIA = 'pia@home.test';
    expect((await cli(['user', 'create', '--realm', 'home', '--email', PIA, '--password-stdin'], `${PASSWORD}\n`)).code).toBe(0);
    const mailsBefore = smtp.mails.length;
    const made = await cli(['user', 'reset-link', '--realm', 'home', '--email', PIA]);
    expect(made.code, made.stderr).toBe(0);
    expect(made.json).toMatchObject({ realm: 'home', email: PIA });
    expect(made.json.url).toMatch(new RegExp(`^${home}/account/password-reset/[A-Za-z0-9_-]{43}$`));
    expect(Date.parse(made.json.expires_at) - Date.now()).toBeGreaterThan(590_000);
    // a second one at once is not held back by the one-a-minute rule for emails
    const second = await cli(['user', 'reset-link', '--realm', 'home', '--email', PIA]);
    expect(second.code, second.stderr).toBe(0);
    expect(second.json.url).not.toBe(made.json.url);
    const browser = new Browser();
    const open = await walk(browser, made.json.url);
    expect(open.res.status).toBe(200);
    const form = parseForm(open.html, '/account/password-reset/');
    const done = await walk(browser, new URL(form.action, made.json.url), { form: { ...form.fields, new_password: NEW_PASSWORD, new_password_again: NEW_PASSWORD } });
    expect(done.res.status).toBe(200);
    expect(await passwordWorks(PIA, NEW_PASSWORD)).toBe(true);
    // the other pending link ended with the reset
    expect((await walk(new Browser(), second.json.url)).res.status).toBe(400);

    const wrongIssuer = await cli(['user', 'reset-link', '--realm', 'home', '--email', PIA, '--issuer', 'http://elsewhere.test']);
    expect(wrongIssuer.code).not.toBe(0);
    expect(wrongIssuer.stderr).toContain('--issuer http://elsewhere.test is not an issuer of realm "home"');
    const unknown = await cli(['user', 'reset-link', '--realm', 'home', '--email', 'nobody@home.test']);
    expect(unknown.code).not.toBe(0);
    expect(unknown.stderr).toContain('nobody@home.test');

    const admin = await cli(['client', 'create', '--realm', 'home', '--name', 'Helpdesk', '--grant', 'client_credentials', '--admin-api']);
    const token = await postForm(`${home}/token`, { grant_type: 'client_credentials', resource: 'urn:latchkey:admin-api', scope: 'admin' }, { id: admin.json.client_id, secret: admin.json.client_secret });
    const pia = (await server.services.users.findByEmail('home', PIA))!;
    const res = await testFetch(`${home}/api/v1/users/${pia.id}/password-reset-link`, { method: 'POST', headers: { authorization: `Bearer ${token.body.access_token}` } });
    expect(res.status).toBe(201);
    const body = await res.json();
    expect(body.user_id).toBe(pia.id);
    expect(body.url).toMatch(new RegExp(`^${home}/account/password-reset/[A-Za-z0-9_-]{43}$`));
    expect((await walk(new Browser(), body.url)).res.status).toBe(200);
    const missing = await testFetch(`${home}/api/v1/users/no-such-user/password-reset-link`, { method: 'POST', headers: { authorization: `Bearer ${token.body.access_token}` } });
    expect(missing.status).toBe(404);
    const events = await server.services.db('security_events').where({ user_id: pia.id, type: 'password_reset_link_created' });
    expect(events.map((e: { detail: string }) => JSON.parse(e.detail).by).sort()).toEqual(['admin-api', 'cli', 'cli']);
    expect(smtp.mails.length).toBe(mailsBefore);
  });

  it('uses a link once when two posts race, and refuses a post without the form token', async () => {
    await server.services.db('email_links').update({ created_at: Date.now() - 120_000 });
    const link = await linkFor(OTTO);
    const browser = new Browser();
    const open = await walk(browser, link);
    const form = parseForm(open.html, '/account/password-reset/');
    expect(csrfOf(open.html)).toBe(form.fields.csrf);

    const forged = await walk(new Browser(), link, { method: 'POST', form: { new_password: NEW_PASSWORD, new_password_again: NEW_PASSWORD } });
    expect(forged.res.status).toBe(403);
    expect(await passwordWorks(OTTO, PASSWORD)).toBe(true);

    const candidates = ['first-racing-passphrase-01', 'second-racing-passphrase-02', 'third-racing-passphrase-03'];
    const results = await Promise.all(candidates.map((p) => walk(new Browser(), link, { method: 'POST', form: { ...form.fields, new_password: p, new_password_again: p } })));
    expect(results.map((r) => r.res.status).sort()).toEqual([200, 400, 400]);
    const winner = candidates[results.findIndex((r) => r.res.status === 200)]!;
    expect(await passwordWorks(OTTO, winner)).toBe(true);
    for (const p of candidates.filter((c) => c !== winner)) expect(await passwordWorks(OTTO, p)).toBe(false);
  });
});

describe('password reset requests from one address', () => {
  let server: TestServer;
  let smtp: Mailbox;
  beforeAll(async () => {
    smtp = await mailbox();
    server = await startTestServer({ overrides: { email: { smtpUrl: smtp.url }, bruteForce: { maxFailuresPerAddress: 3, waitIncrementSeconds: 120 } } });
  });
  afterAll(async () => {
    await server?.close();
    await smtp?.close();
  });

  it('are limited by the realm\'s limit for addresses, whatever the emails, with Retry-After', async () => {
    const browser = new Browser();
    const start = await walk(browser, `${server.issuer}/account`);
    const forgotUrl = new URL(`${start.url.pathname}/forgot-password`, start.url);
    const ask = async (email: string) => {
      const page = await walk(browser, forgotUrl);
      const form = parseForm(page.html, '/forgot-password');
      return walk(browser, new URL(form.action, forgotUrl), { form: { ...form.fields, email } });
    };
    for (const n of [1, 2, 3]) expect((await ask(`someone${n}@example.test`)).res.status).toBe(200);
    const refused = await ask('someone4@example.test');
    expect(refused.res.status).toBe(429);
    expect(Number(refused.res.headers.get('retry-after'))).toBeGreaterThan(0);
    expect(alertText(refused.html)).toBe('Too many requests from your network. Try again in 2 minutes.');
    // sign-in failures are counted apart: the password step still answers as usual
    const { throttle } = server.services;
    expect((await throttle.admitAddress('default', 'password-reset', '127.0.0.1')).allowed).toBe(false);
    const signIn = await throttle.reserve('default', { email: 'someone@example.test', ip: '127.0.0.1' });
    expect(signIn.allowed).toBe(true);
    await throttle.release(signIn);
  });
});

describe('password reset without an SMTP server', () => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startTestServer();
    const r = await server.cli(['user', 'create', '--realm', 'default', '--email', 'pat@example.test', '--password-stdin'], `${PASSWORD}\n`);
    expect(r.code, r.stderr).toBe(0);
  });
  afterAll(async () => server?.close());

  it('offers no "Forgot your password?" link, and the page says reset is not available', async () => {
    const browser = new Browser();
    const start = await walk(browser, `${server.issuer}/account`);
    const identify = parseForm(start.html, '/identify');
    const pw = await walk(browser, new URL(identify.action, start.url), { form: { ...identify.fields, email: 'pat@example.test' } });
    expect(pw.html).toContain('<h1 class="lk-title">Enter your password');
    expect(pw.html).not.toContain('Forgot your password?');
    const forgot = await walk(browser, new URL(`${pw.url.pathname}/forgot-password`, pw.url));
    expect(forgot.res.status).toBe(404);
    expect(forgot.html).toContain('Password reset is not available');
  });

  it('names a malformed SMTP URL without echoing it', () => {
    expect(() => loadConfig({ env: { LATCHKEY_SMTP_URL: 'mailto:someone:hunter2@example.com', LATCHKEY_SECRET: 'x'.repeat(40) } as any, cwd: '/nonexistent' })).toThrow(
      /configuration key "email\.smtpUrl" \(from environment variable LATCHKEY_SMTP_URL\): must be an smtp:\/\/ or smtps:\/\/ URL/,
    );
    try {
      loadConfig({ env: { LATCHKEY_SMTP_URL: 'mailto:someone:hunter2@example.com', LATCHKEY_SECRET: 'x'.repeat(40) } as any, cwd: '/nonexistent' });
    } catch (err) {
      expect((err as Error).message).not.toContain('hunter2');
    }
  });
});
