import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { walk } from '../helpers/account-pages.js';
import { authorizationRequest, discover, PASSWORD, until } from '../helpers/flows.js';
import { Browser, parseForm } from '../helpers/http.js';
import { mailbox, type Mailbox } from '../helpers/mailbox.js';
import { readPage, submit } from '../helpers/passkey-flows.js';
import { startTestServer, type TestServer } from '../helpers/server.js';
import { realmPalette } from '../../src/views/render.js';

/*
 * Emails go as multipart/alternative: the plain text as before, and an HTML part wearing the realm's
 * name and colour, in which nothing from the realm's name (or the text) is left unescaped.
 */

const REDIRECT = 'http://app.example.test/cb';
const NAME = 'Tom & Jerry <script>alert(1)</script> "Co"';

describe('HTML emails', () => {
  let server: TestServer;
  let smtp: Mailbox;
  let issuer: string;
  const mailsTo = (email: string) => smtp.mails.filter((m) => m.to === email);

  beforeAll(async () => {
    smtp = await mailbox();
    server = await startTestServer({ overrides: { email: { smtpUrl: smtp.url } } });
    const dir = mkdtempSync(join(tmpdir(), 'latchkey-html-email-'));
    writeFileSync(join(dir, 's.json'), JSON.stringify({ signup: true, branding: { primaryColor: '#aa3300' } }));
    issuer = `http://brand.localhost:${server.port}`;
    const realm = await server.cli(['realm', 'create', '--id', 'brand', '--name', NAME, '--issuer', issuer, '--settings', join(dir, 's.json')]);
    expect(realm.code, realm.stderr).toBe(0);
    await server.services.users.create({ realmId: 'brand', email: 'reset@brand.test', password: PASSWORD });
  });
  afterAll(async () => {
    await server?.close();
    await smtp?.close();
  });

  const escapedName = 'Tom &amp; Jerry &lt;script&gt;alert(1)&lt;/script&gt; &quot;Co&quot;';

  it('the sign-up code: a text part with the code, an HTML part with the escaped realm name, its colour and the code', async () => {
    const client = await server.cli(['client', 'create', '--realm', 'brand', '--name', 'App', '--redirect-uri', REDIRECT, '--first-party']);
    expect(client.code, client.stderr).toBe(0);
    const config = await discover(issuer, client.json.client_id, { client_secret: client.json.client_secret });
    const browser = new Browser();
    const auth = await authorizationRequest(config, REDIRECT);
    const login = await readPage(await browser.follow(auth.url, {}, REDIRECT));
    const form = await readPage(await browser.follow(new URL(`/interaction/${login.uid}/signup`, issuer), {}, REDIRECT));
    await submit(browser, form, '/signup', { email: 'html@brand.test' }, REDIRECT);
    const mail = await until(async () => mailsTo('html@brand.test')[0], 'the code email');
    const code = /^ {4}(\d{6})$/m.exec(mail.text)?.[1];
    expect(code).toMatch(/^\d{6}$/);
    expect(mail.text).toContain(`Enter this code to finish creating your ${NAME} account`);
    expect(mail.html).toBeDefined();
    const html = mail.html!;
    expect(html).toContain(escapedName);
    expect(html).not.toContain('<script>');
    expect(html).not.toContain('"Co"');
    expect(html).toContain(`>${code}</p>`);
    expect(html).toContain(`background:${realmPalette('#aa3300').primary}`);
  });

  it('a reset link: a button and the written-out address in the HTML part, the same link in the text', async () => {
    const browser = new Browser();
    const start = await walk(browser, `${issuer}/account`);
    const identify = parseForm(start.html, '/identify');
    const pw = await walk(browser, new URL(identify.action, start.url), { form: { ...identify.fields, email: 'reset@brand.test' } });
    const link = /<a href="([^"]+)">Forgot your password\?<\/a>/.exec(pw.html)![1]!;
    const forgot = await walk(browser, new URL(link, pw.url));
    const f = parseForm(forgot.html, '/forgot-password');
    await walk(browser, new URL(f.action, forgot.url), { form: { ...f.fields, email: 'reset@brand.test' } });
    const mail = await until(async () => mailsTo('reset@brand.test')[0], 'the reset email');
    const url = /^(http:\/\/\S+\/account\/password-reset\/[A-Za-z0-9_-]{43})$/m.exec(mail.text)![1]!;
    expect(mail.html).toContain(`<a href="${url}"`);
    expect(mail.html).toContain('>Open the link</a>');
    expect(mail.html).toContain(escapedName);
    expect(mail.html).not.toContain('<script>');
  });
});
