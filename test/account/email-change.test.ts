import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { alertText, flashText, signInToAccount, walk } from '../helpers/account-pages.js';
import { describeEachDatabase } from '../helpers/databases.js';
import { PASSWORD, until } from '../helpers/flows.js';
import { Browser, parseForm } from '../helpers/http.js';
import { mailbox, type Mail, type Mailbox } from '../helpers/mailbox.js';
import { startTestServer, type TestServer } from '../helpers/server.js';

/*
 * Changing the email address on the account page: a link to the new address (a notice to the old one)
 * changes it once confirmed; an address that belongs to another account gets the same answer on the
 * page, and its owner a notice instead of a link. The change needs a recent sign-in.
 */

const linkIn = (mail: Mail) => /^(http:\/\/\S+\/account\/change-email\/[A-Za-z0-9_-]{43})$/m.exec(mail.text)?.[1];

describeEachDatabase('email address change', (kind) => {
  let server: TestServer;
  let smtp: Mailbox;
  let issuer: string;
  let quick: string;
  const mailsTo = (email: string) => smtp.mails.filter((m) => m.to === email);

  beforeAll(async () => {
    smtp = await mailbox();
    server = await startTestServer({ db: kind, overrides: { email: { smtpUrl: smtp.url } } });
    issuer = server.issuer;
    const dir = mkdtempSync(join(tmpdir(), 'latchkey-email-change-'));
    writeFileSync(join(dir, 'quick.json'), JSON.stringify({ reauthWindowSeconds: 1 }));
    quick = `http://quick.localhost:${server.port}`;
    expect((await server.cli(['realm', 'create', '--id', 'quick', '--name', 'Quick', '--issuer', quick, '--settings', join(dir, 'quick.json')])).code).toBe(0);
    for (const email of ['ada@example.test', 'bea@example.test', 'cy@example.test', 'fay@example.test']) await server.services.users.create({ realmId: 'default', email, password: PASSWORD });
    await server.services.users.create({ realmId: 'quick', email: 'dot@example.test', password: PASSWORD });
  });
  afterAll(async () => {
    await server?.close();
    await smtp?.close();
  });

  async function askChange(browser: Browser, page: { html: string; url: URL }, newEmail: string) {
    const form = parseForm(page.html, '/account/email');
    return walk(browser, new URL(form.action, page.url), { form: { ...form.fields, new_email: newEmail } });
  }

  it('a link to the new address changes it once confirmed; the old address gets a notice', async () => {
    const browser = new Browser();
    const account = await signInToAccount(browser, issuer, { email: 'ada@example.test', password: PASSWORD });
    expect(account.html).toContain('<label for="lk-new-email">New email address</label>');
    const asked = await askChange(browser, account, 'ada.new@example.test');
    expect(asked.url.pathname).toBe('/account');
    expect(flashText(asked.html)).toContain('Check the inbox of your new email address');
    const mail = await until(async () => mailsTo('ada.new@example.test')[0], 'the confirmation email');
    expect(mail.subject).toMatch(/^Confirm your new email address for /);
    const notice = await until(async () => mailsTo('ada@example.test')[0], 'the notice to the old address');
    expect(notice.text).toContain('asked to change its email address to ada.new@example.test');
    expect(linkIn(notice)).toBeUndefined();
    const link = linkIn(mail)!;
    expect(link.startsWith(`${issuer}/account/change-email/`)).toBe(true);
    const user = (await server.services.users.findByEmail('default', 'ada@example.test'))!;

    // opening the link (as a mail scanner would) changes nothing; a post without the page's token is refused
    const opened = await walk(new Browser(), link);
    expect(opened.res.status).toBe(200);
    expect(opened.html).toContain('<h1 class="lk-title">Confirm your new email address</h1>');
    expect((await walk(new Browser(), link, { method: 'POST', form: {} })).res.status).toBe(403);
    expect((await server.services.users.findById('default', user.id))!.email).toBe('ada@example.test');

    const form = parseForm(opened.html, '/account/change-email/');
    const done = await walk(new Browser(), new URL(form.action, link), { form: form.fields });
    expect(done.res.status).toBe(200);
    expect(done.html).toContain('<h1 class="lk-title">Email address changed</h1>');
    const changed = (await server.services.users.findById('default', user.id))!;
    expect(changed.email).toBe('ada.new@example.test');
    expect(changed.emailVerified).toBe(true);
    const events = await server.services.db('security_events').where({ user_id: user.id, type: 'email_changed' });
    expect(events.length).toBe(1);
    // used once
    expect((await walk(new Browser(), new URL(form.action, link), { form: form.fields })).res.status).toBe(400);
    expect((await walk(new Browser(), link)).res.status).toBe(400);
    // the new address signs in, the old one no longer does
    await signInToAccount(new Browser(), issuer, { email: 'ada.new@example.test', password: PASSWORD });
    expect((await server.services.users.verifyPassword('default', 'ada@example.test', PASSWORD)).ok).toBe(false);
  });

  it('an address of another account gets the same answer; its owner gets a notice, no link, and nothing changes', async () => {
    const bea = new Browser();
    const beaPage = await signInToAccount(bea, issuer, { email: 'bea@example.test', password: PASSWORD });
    const free = await askChange(bea, beaPage, 'bea.free@example.test');
    const cy = new Browser();
    const cyPage = await signInToAccount(cy, issuer, { email: 'cy@example.test', password: PASSWORD });
    // cy asks for bea's (still current) address
    const taken = await askChange(cy, cyPage, 'bea@example.test');
    expect(taken.res.status).toBe(free.res.status);
    expect(taken.url.pathname).toBe(free.url.pathname);
    expect(taken.url.search).toBe(free.url.search);
    expect(flashText(taken.html)).toBe(flashText(free.html));

    const toBea = await until(async () => mailsTo('bea@example.test').find((m) => /Someone tried to move/.test(m.subject)), 'the notice to the owner');
    expect(toBea.text).toContain('You already have an account with this address, so nothing was changed.');
    expect(linkIn(toBea)).toBeUndefined();
    await until(async () => mailsTo('cy@example.test')[0], 'the notice to cy');
    expect(smtp.mails.filter((m) => linkIn(m) && m.to === 'bea@example.test')).toEqual([]);
    expect((await server.services.users.findByEmail('default', 'cy@example.test'))).toBeDefined();
    expect((await server.services.users.findByEmail('default', 'bea@example.test'))!.email).toBe('bea@example.test');
  });

  it('refuses a malformed address and the current one, naming the field; nothing is sent', async () => {
    const browser = new Browser();
    const account = await signInToAccount(browser, issuer, { email: 'fay@example.test', password: PASSWORD });
    const bad = await askChange(browser, account, 'not-an-email');
    expect(bad.res.status).toBe(400);
    expect(alertText(bad.html)).toBe('Enter a valid email address, like name@example.com.');
    const field = /<input id="lk-new-email"[^>]*>/.exec(bad.html)![0];
    expect(field).toContain('aria-invalid="true"');
    expect(field).toContain('value="not-an-email"');
    expect(field).toContain('autofocus');
    const same = await askChange(browser, bad, 'FAY@example.test');
    expect(same.res.status).toBe(400);
    expect(alertText(same.html)).toBe('That is already your email address. Enter the new one.');
    // a refused request issues no link: otherwise the one-a-minute limit would hold this one back
    expect((await askChange(browser, same, 'fay.new@example.test')).url.pathname).toBe('/account');
    await until(async () => mailsTo('fay.new@example.test')[0], 'the link for the valid request');
    await until(async () => mailsTo('fay@example.test')[0], 'the notice to the old address');
    expect(mailsTo('fay@example.test').map((m) => m.subject)).toEqual([expect.stringMatching(/email address is about to change$/)]);
  });

  it('needs a recent sign-in: an older one is sent to sign in again, and no link is made', async () => {
    const browser = new Browser();
    const account = await signInToAccount(browser, quick, { email: 'dot@example.test', password: PASSWORD });
    await new Promise((r) => setTimeout(r, 2200));
    const form = parseForm(account.html, '/account/email');
    const stale = await browser.request(new URL(form.action, quick), { form: { ...form.fields, new_email: 'dot.new@example.test' } });
    expect(stale.status).toBe(303);
    expect(new URL(stale.headers.get('location')!, quick).searchParams.get('max_age')).toBe('0');
    expect((await server.services.users.findByEmail('quick', 'dot@example.test'))!.email).toBe('dot@example.test');
    expect(await server.services.db('email_links').where({ realm_id: 'quick', purpose: 'change_email' })).toEqual([]);
  });
});

describe('email address change without email configured', () => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startTestServer();
    await server.services.users.create({ realmId: 'default', email: 'eve@example.test', password: PASSWORD });
    await server.services.users.create({ realmId: 'default', email: 'gil@example.test', password: PASSWORD });
    await server.services.users.create({ realmId: 'default', email: 'hal@example.test', password: PASSWORD });
  });
  afterAll(async () => server?.close());

  it('the account page says an administrator changes it, and a post is refused with that message', async () => {
    const browser = new Browser();
    const account = await signInToAccount(browser, server.issuer, { email: 'eve@example.test', password: PASSWORD });
    expect(account.html).toContain('To change it, ask your administrator: this service cannot send email to confirm a new address.');
    expect(account.html).not.toContain('name="new_email"');
    const csrf = /name="csrf" value="([^"]+)"/.exec(account.html)![1]!;
    const refused = await walk(browser, `${server.issuer}/account/email`, { form: { csrf, new_email: 'eve.new@example.test' } });
    expect(refused.res.status).toBe(400);
    expect(alertText(refused.html)).toContain('Ask your administrator to change your email address.');
    expect((await server.services.users.findByEmail('default', 'eve@example.test'))!.email).toBe('eve@example.test');
  });

  it('an operator changes it with `latchkey user set-email`: confirmed, recorded, and the new address signs in', async () => {
    const r = await server.cli(['user', 'set-email', '--realm', 'default', '--email', 'gil@example.test', '--new-email', 'gil.new@example.test']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.json.email).toBe('gil.new@example.test');
    expect(r.json.email_verified).toBe(true);
    const user = (await server.services.users.findByEmail('default', 'gil.new@example.test'))!;
    expect(await server.services.db('security_events').where({ user_id: user.id, type: 'email_changed' })).toHaveLength(1);
    await signInToAccount(new Browser(), server.issuer, { email: 'gil.new@example.test', password: PASSWORD });
    // --unverified leaves it unconfirmed
    const u = await server.cli(['user', 'set-email', '--realm', 'default', '--email', 'gil.new@example.test', '--new-email', 'gil.third@example.test', '--unverified']);
    expect(u.code, u.stderr).toBe(0);
    expect(u.json.email_verified).toBe(false);
    // another account's address is refused, naming it; nothing changes
    const taken = await server.cli(['user', 'set-email', '--realm', 'default', '--email', 'hal@example.test', '--new-email', 'GIL.third@example.test']);
    expect(taken.code).not.toBe(0);
    expect(taken.stderr).toContain('a user with email GIL.third@example.test already exists');
    const bad = await server.cli(['user', 'set-email', '--realm', 'default', '--email', 'hal@example.test', '--new-email', 'nope']);
    expect(bad.code).not.toBe(0);
    expect(bad.stderr).toContain('"nope" is not a valid email address');
    expect((await server.services.users.findByEmail('default', 'hal@example.test'))!.email).toBe('hal@example.test');
  });
});
