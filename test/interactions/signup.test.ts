import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { decodeJwt } from 'jose';
import type * as oidc from 'openid-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SoftAuthenticator } from '../helpers/authenticator.js';
import { authorizationRequest, discover, exchangeCode, PASSWORD, skipPasskeyOffer } from '../helpers/flows.js';
import { Browser } from '../helpers/http.js';
import { passkeyRegistration, postJson, readPage, submit } from '../helpers/passkey-flows.js';
import { startTestServer, type TestServer } from '../helpers/server.js';

const REDIRECT = 'http://app.example.test/cb';

describe('self-service sign-up', () => {
  let server: TestServer;
  let issuer: string;
  let config: oidc.Configuration;
  let closedConfig: oidc.Configuration;

  beforeAll(async () => {
    server = await startTestServer();
    const dir = mkdtempSync(join(tmpdir(), 'latchkey-signup-'));
    writeFileSync(join(dir, 's.json'), JSON.stringify({ signup: true }));
    issuer = `http://open.localhost:${server.port}`;
    expect((await server.cli(['realm', 'create', '--id', 'open', '--issuer', issuer, '--settings', join(dir, 's.json')])).code).toBe(0);
    const client = await server.cli(['client', 'create', '--realm', 'open', '--name', 'App', '--redirect-uri', REDIRECT, '--first-party']);
    config = await discover(issuer, client.json.client_id, { client_secret: client.json.client_secret });
    const closed = await server.cli(['client', 'create', '--realm', 'default', '--name', 'App', '--redirect-uri', REDIRECT, '--first-party']);
    closedConfig = await discover(server.issuer, closed.json.client_id, { client_secret: closed.json.client_secret });
  });
  afterAll(async () => server?.close());

  async function signupPage(browser: Browser, cfg = config) {
    const auth = await authorizationRequest(cfg, REDIRECT);
    const login = await readPage(await browser.follow(auth.url, {}, REDIRECT));
    return { auth, login };
  }

  /** A passwordless sign-up with an existing account's email: refused as taken, and no passkey can be added from it. */
  async function passwordlessSignupRefused(email: string) {
    const attacker = new Browser();
    const { login } = await signupPage(attacker);
    const form = await readPage(await attacker.follow(new URL(`/interaction/${login.uid}/signup`, issuer), {}, REDIRECT));
    const answer = await readPage(await submit(attacker, form, '/signup', { email }, REDIRECT));
    expect(answer.status, email).toBe(409);
    expect(answer.html).toContain('already exists');
    expect(answer.html).not.toContain('lk-passkey-create');
    // and no passkey of the attacker's can be added to the account from this sign-in
    const register = await postJson(attacker, form, '/passkey/register/options', {});
    expect(register.status, email).not.toBe(200);
    return { attacker, form };
  }

  it('is offered only where the realm enables it', async () => {
    const browser = new Browser();
    const { login } = await signupPage(browser, closedConfig);
    expect(login.html).not.toContain('/signup');
    const res = await browser.request(new URL(`/interaction/${login.uid}/signup`, server.issuer));
    expect(res.status).toBe(404);
  });

  it('with a password: the account is created, then the passkey is offered', async () => {
    const browser = new Browser();
    const { auth, login } = await signupPage(browser);
    expect(login.html).toContain('Create an account');
    const form = await readPage(await browser.follow(new URL(`/interaction/${login.uid}/signup`, issuer), {}, REDIRECT));
    expect(form.html).toContain('Create your account');
    const weak = await readPage(await submit(browser, form, '/signup', { email: 'new@open.test', name: 'New', password: 'password' }, REDIRECT));
    expect(weak.status).toBe(400);
    expect(await server.services.users.findByEmail('open', 'new@open.test')).toBeUndefined(); // nothing half-written
    // the error is about the password: that field is marked invalid, tied to the message and focused, the email is not
    const field = (html: string, id: string) => new RegExp(`<input id="${id}"[^>]*>`).exec(html)?.[0] ?? '';
    expect(field(weak.html, 'lk-password')).toContain('aria-describedby="lk-password-help lk-error"');
    expect(field(weak.html, 'lk-password')).toContain('aria-invalid="true"');
    expect(field(weak.html, 'lk-password')).toContain('autofocus');
    expect(field(weak.html, 'lk-email')).not.toContain('aria-invalid');
    expect(field(weak.html, 'lk-email')).not.toContain('lk-error');
    expect(field(weak.html, 'lk-email')).not.toContain('autofocus');
    const badEmail = await readPage(await submit(browser, weak, '/signup', { email: 'not-an-email', password: PASSWORD }, REDIRECT));
    expect(badEmail.status).toBe(400);
    expect(field(badEmail.html, 'lk-email')).toContain('aria-invalid="true"');
    expect(field(badEmail.html, 'lk-password')).toBe('<input id="lk-password" name="password" type="password" autocomplete="new-password" aria-describedby="lk-password-help">');
    const offer = await submit(browser, weak, '/signup', { email: 'new@open.test', name: 'New Person', password: PASSWORD }, REDIRECT);
    const done = await skipPasskeyOffer(browser, offer, REDIRECT);
    const claims = decodeJwt((await exchangeCode(config, auth, done.url)).id_token!);
    expect(claims.email).toBe('new@open.test');
    expect(claims.email_verified).toBe(false);
    expect(claims.amr).toEqual(['pwd']);
    const b2 = new Browser();
    const fresh = await signupPage(b2);
    const form2 = await readPage(await b2.follow(new URL(`/interaction/${fresh.login.uid}/signup`, issuer), {}, REDIRECT));
    const taken = await readPage(await submit(b2, form2, '/signup', { email: 'NEW@open.test', password: PASSWORD }, REDIRECT));
    expect(taken.status).toBe(409);
    expect(taken.html).toContain('already exists');
  });

  it('a name with text-direction or control characters is refused on the name field, and no account is made', async () => {
    const browser = new Browser();
    const { login } = await signupPage(browser);
    const form = await readPage(await browser.follow(new URL(`/interaction/${login.uid}/signup`, issuer), {}, REDIRECT));
    const field = (html: string, id: string) => new RegExp(`<input id="${id}"[^>]*>`).exec(html)?.[0] ?? '';
    for (const [name, says] of [
      ['Ada\u202Eecalevol', 'Your name must not contain text-direction control characters'],
      ['Ada\u0007', 'Your name must not contain control characters'],
    ] as const) {
      const refused = await readPage(await submit(browser, form, '/signup', { email: 'ada@open.test', name, password: PASSWORD }, REDIRECT));
      expect(refused.status).toBe(400);
      expect(refused.html).toContain(says);
      expect(field(refused.html, 'lk-name')).toContain('aria-invalid="true"');
      expect(field(refused.html, 'lk-email')).not.toContain('aria-invalid');
      expect(await server.services.users.findByEmail('open', 'ada@open.test')).toBeUndefined();
    }
  });

  it('in a realm that requires MFA, a sign-up with a password is walked through second-factor enrolment like any password sign-in', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'latchkey-signup-mfa-'));
    writeFileSync(join(dir, 's.json'), JSON.stringify({ signup: true, mfa: 'required' }));
    const strictIssuer = `http://strictopen.localhost:${server.port}`;
    expect((await server.cli(['realm', 'create', '--id', 'strictopen', '--issuer', strictIssuer, '--settings', join(dir, 's.json')])).code).toBe(0);
    const client = await server.cli(['client', 'create', '--realm', 'strictopen', '--name', 'App', '--redirect-uri', REDIRECT, '--first-party']);
    const strict = await discover(strictIssuer, client.json.client_id, { client_secret: client.json.client_secret });
    const browser = new Browser();
    const { login } = await signupPage(browser, strict);
    const form = await readPage(await browser.follow(new URL(`/interaction/${login.uid}/signup`, strictIssuer), {}, REDIRECT));
    const next = await submit(browser, form, '/signup', { email: 'new@strict.test', password: PASSWORD }, REDIRECT);
    // no way around the second factor: not "Not now" on a passkey offer, but the enrolment page
    const done = await skipPasskeyOffer(browser, next, REDIRECT);
    expect(done.url.href.startsWith(REDIRECT), done.url.href).toBe(false);
    const page = await readPage(done);
    expect(page.html).toContain('/totp/enrol');
  });

  it('an existing passwordless account that has a way in (recovery codes, a passkey made on another domain) is never handed to a passwordless sign-up of its email', async () => {
    const s = server.services;
    const realm = await s.realms.get('open');
    // every passkey deleted on the account page: the recovery codes are the way back in
    const withCodes = await s.users.create({ realmId: 'open', email: 'codes@open.test' });
    await s.recovery.generate('open', withCodes.id);
    // a passkey for another domain of the realm (this issuer's RP ID sees none of it)
    const elsewhere = await s.users.create({ realmId: 'open', email: 'elsewhere@open.test' });
    const rp = { rpId: 'other.localhost', origins: ['http://other.localhost'], name: 'Open' };
    const user = { id: elsewhere.id, email: elsewhere.email, name: null };
    const options = await s.passkeys.registrationOptions({ realmId: 'open', settings: realm.settings, rp, user, boundTo: 'test:setup', kind: 'passkey' });
    await s.passkeys.verifyRegistration({ realmId: 'open', settings: realm.settings, rp, user, boundTo: 'test:setup', kind: 'passkey', response: await new SoftAuthenticator().createCredential(options, 'http://other.localhost') });
    for (const email of ['codes@open.test', 'elsewhere@open.test']) {
      await passwordlessSignupRefused(email);
    }
    expect(await s.passkeys.credentials('open', withCodes.id)).toHaveLength(0);
    expect(await s.passkeys.credentials('open', elsewhere.id)).toHaveLength(1);

    // a passwordless sign-up that stopped before its passkey (only the row exists) can still be finished
    const b1 = new Browser();
    const first = await signupPage(b1);
    const form1 = await readPage(await b1.follow(new URL(`/interaction/${first.login.uid}/signup`, issuer), {}, REDIRECT));
    expect((await readPage(await submit(b1, form1, '/signup', { email: 'halfway@open.test' }, REDIRECT))).html).toContain('lk-passkey-create');
    const b2 = new Browser();
    const again = await signupPage(b2);
    const form2 = await readPage(await b2.follow(new URL(`/interaction/${again.login.uid}/signup`, issuer), {}, REDIRECT));
    const resumed = await readPage(await submit(b2, form2, '/signup', { email: 'halfway@open.test' }, REDIRECT));
    expect(resumed.status).toBe(200);
    expect(resumed.html).toContain('lk-passkey-create');
  });

  it("a passwordless user an operator or an import made, address unconfirmed, is never handed to a sign-up of its email (no emailed code proved the mailbox)", async () => {
    const s = server.services;
    // an operator's user waiting for its owner (the admin API's email_verified: false), and one imported without a password hash
    await s.users.create({ realmId: 'open', email: 'invited@open.test', emailVerified: false });
    const dir = mkdtempSync(join(tmpdir(), 'latchkey-signup-import-'));
    writeFileSync(join(dir, 'u.jsonl'), JSON.stringify({ email: 'imported@open.test', name: 'Imported' }));
    const imported = await server.cli(['user', 'import', '--realm', 'open', '--file', join(dir, 'u.jsonl')]);
    expect(imported.code, imported.stderr).toBe(0);
    for (const email of ['invited@open.test', 'imported@open.test']) {
      const { attacker, form } = await passwordlessSignupRefused(email);
      const withPassword = await readPage(await submit(attacker, form, '/signup', { email, password: PASSWORD }, REDIRECT));
      expect(withPassword.status, email).toBe(409);
      const user = await s.users.findByEmail('open', email);
      expect(user?.passwordHash, email).toBeNull();
      expect(await s.passkeys.credentials('open', user!.id)).toHaveLength(0);
    }
  });

  it('passwordless: a passkey is required, then recovery codes are shown once, and a lost passkey is recoverable', async () => {
    const browser = new Browser();
    const authenticator = new SoftAuthenticator();
    const { auth, login } = await signupPage(browser);
    const form = await readPage(await browser.follow(new URL(`/interaction/${login.uid}/signup`, issuer), {}, REDIRECT));
    const offer = await readPage(await submit(browser, form, '/signup', { email: 'pk@open.test' }, REDIRECT));
    expect(offer.html).toContain('lk-passkey-create');
    expect(offer.html).not.toContain('/offer/skip'); // no way around the passkey
    const registered = await passkeyRegistration(browser, offer, authenticator, issuer);
    expect(registered.status, JSON.stringify(registered.body)).toBe(200);
    const codesPage = await readPage(await browser.follow(new URL(registered.body.redirect, issuer), {}, REDIRECT));
    const codes = [...codesPage.html.matchAll(/<li><code>([a-z0-9-]+)<\/code><\/li>/g)].map((m) => m[1]!);
    expect(codes).toHaveLength(10);
    const done = await browser.follow(new URL(`/interaction/${codesPage.uid}/continue`, issuer), { form: { csrf: codesPage.csrf } }, REDIRECT);
    const claims = decodeJwt((await exchangeCode(config, auth, done.url)).id_token!);
    expect(claims.amr).toEqual(expect.arrayContaining(['swk', 'user', 'mfa']));

    // every passkey gone: the passkey step still leads to a recovery code, never to a dead end
    const user = (await server.services.users.findByEmail('open', 'pk@open.test'))!;
    await server.services.db('webauthn_credentials').where({ user_id: user.id }).delete();
    const b2 = new Browser();
    const next = await signupPage(b2);
    const step = await readPage(await submit(b2, next.login, '/identify', { email: 'pk@open.test' }, REDIRECT));
    expect(step.html).not.toContain('name="password"');
    expect(step.html).toContain('method=recovery');
    const recovery = await readPage(await b2.follow(new URL(`/interaction/${step.uid}?method=recovery`, issuer), {}, REDIRECT));
    const led = await readPage(await submit(b2, recovery, '/recovery', { code: codes[3]! }, REDIRECT));
    expect(led.html).toContain('lk-passkey-create');
  });
});
