import { mkdtempSync, writeFileSync } from 'node:fs';
import * as oidc from 'openid-client';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { relyingParty } from '../../src/passkeys/relying-party.js';
import { alertText, completeSignIn, csrfOf, flashText, signInToAccount, walk, type Step } from '../helpers/account-pages.js';
import { SoftAuthenticator } from '../helpers/authenticator.js';
import { describeEachDatabase } from '../helpers/databases.js';
import { discover, PASSWORD, postForm, signIn as signInWithPassword, until } from '../helpers/flows.js';
import { Browser, parseForm, testFetch } from '../helpers/http.js';
import { startTestServer, type TestServer } from '../helpers/server.js';

const NEW_PASSWORD = 'quiet-harbour-lamp-1907';
const OTHER_PASSWORD = 'copper-meadow-violin-2231';
const ADMIN = 'urn:latchkey:admin-api';

describeEachDatabase('changing a password (account page, CLI, admin API)', (kind) => {
  let server: TestServer;
  let home: string;
  let quick: string;
  const ERIN = 'erin@home.test';
  const FRANK = 'frank@home.test';
  const GRACE = 'grace@quick.test';
  const HEIDI = 'heidi@home.test';

  const cli = async (args: string[], stdin?: string) => server.cli(args, stdin);
  const userOf = async (realm: string, email: string) => (await server.services.users.findByEmail(realm, email))!;
  const passwordWorks = async (realm: string, email: string, password: string) => (await server.services.users.verifyPassword(realm, email, password)).ok;
  const eventsOf = async (type: string, userId: string) => server.services.db('security_events').where({ type, user_id: userId });

  /** The password form of the account page, filled in. */
  const passwordForm = (page: Step, password: string, confirm = password) => {
    const form = parseForm(page.html, '/account/password');
    return { action: new URL(form.action, page.url), fields: { ...form.fields, new_password: password, new_password_again: confirm } as Record<string, string> };
  };

  beforeAll(async () => {
    server = await startTestServer({ db: kind });
    home = `http://home.localhost:${server.port}`;
    quick = `http://quick.localhost:${server.port}`;
    const dir = mkdtempSync(join(tmpdir(), 'latchkey-password-'));
    writeFileSync(join(dir, 'quick.json'), JSON.stringify({ reauthWindowSeconds: 1 }));
    for (const args of [
      ['realm', 'create', '--id', 'home', '--name', 'Home', '--issuer', home],
      ['realm', 'create', '--id', 'quick', '--name', 'Quick', '--issuer', quick, '--settings', join(dir, 'quick.json')],
    ]) {
      const r = await cli(args);
      expect(r.code, r.stderr).toBe(0);
    }
    for (const [realm, email, password] of [
      ['home', ERIN, PASSWORD],
      ['home', FRANK, undefined],
      ['quick', GRACE, PASSWORD],
      ['home', HEIDI, PASSWORD],
    ] as const) {
      const r = await cli(['user', 'create', '--realm', realm, '--email', email, ...(password ? ['--password-stdin'] : [])], password ? `${password}\n` : undefined);
      expect(r.code, r.stderr).toBe(0);
    }
    await until(async () => ((await testFetch(`${quick}/.well-known/openid-configuration`)).status === 200 ? true : undefined), 'the new realms');
  });
  afterAll(async () => server?.close());

  it('changes the password from the account page; the old one stops working at once, and other devices are signed out', async () => {
    // erin is also signed in on another device, and an app on a tablet holds a refresh token
    const laptop = new Browser();
    await signInToAccount(laptop, home, { email: ERIN, password: PASSWORD });
    const app = await cli(['client', 'create', '--realm', 'home', '--name', 'Tablet app', '--first-party', '--redirect-uri', 'http://app.example.test/cb']);
    expect(app.code, app.stderr).toBe(0);
    const appConfig = await discover(home, app.json.client_id, { client_secret: app.json.client_secret });
    const tablet = await signInWithPassword(new Browser(), appConfig, 'http://app.example.test/cb', ERIN, { scope: 'openid offline_access' });
    expect(tablet.refresh_token).toBeTruthy();
    const browser = new Browser();
    const page = await signInToAccount(browser, home, { email: ERIN, password: PASSWORD });
    expect(page.html).toMatch(/<input id="lk-sign-out-others" name="sign_out_others" type="checkbox" value="yes" checked>/);
    expect(page.html).toContain('<label for="lk-sign-out-others">Sign out of all other devices</label>');
    expect(page.html).toContain('<h2 class="lk-subtitle" id="lk-password-heading">Password</h2>');
    expect(page.html).toMatch(/<label for="lk-new-password">New password<\/label>/);
    expect(page.html).toMatch(/<label for="lk-confirm-password">Confirm new password<\/label>/);
    expect(page.html).toContain('autocomplete="new-password"');
    expect(page.html).toContain('>Change password</button>');
    const erin = await userOf('home', ERIN);

    const { action, fields } = passwordForm(page, NEW_PASSWORD);
    const done = await walk(browser, action, { form: fields });
    expect(done.trail[0]!.res.status).toBe(303);
    expect(done.url.pathname).toBe('/account');
    expect(done.url.searchParams.get('notice')).toBe('password-changed-signed-out');
    expect(flashText(done.html)).toBe('Password changed. You were signed out on your other devices.');
    // this device stays signed in; the laptop's session is gone, so its account page asks for a sign-in
    expect((await walk(browser, `${home}/account`)).url.pathname).toBe('/account');
    const elsewhere = await walk(laptop, `${home}/account`);
    expect(elsewhere.url.pathname).toMatch(/^\/interaction\//);
    // and the tablet app's refresh token no longer works
    await expect(oidc.refreshTokenGrant(appConfig, tablet.refresh_token!)).rejects.toMatchObject({ error: 'invalid_grant' });

    expect(await passwordWorks('home', ERIN, PASSWORD)).toBe(false);
    expect(await passwordWorks('home', ERIN, NEW_PASSWORD)).toBe(true);
    const stored = (await userOf('home', ERIN)).passwordHash!;
    expect(stored).toMatch(/^\$argon2id\$/);
    expect(stored).not.toContain(NEW_PASSWORD);
    const [changed] = await eventsOf('account.password_changed', erin.id);
    // the laptop's and the tablet's sessions; the tablet app's grant and the laptop's account-page grant
    expect(JSON.parse(changed.detail)).toEqual({ otherSessionsEnded: 2, grantsRevoked: 2 });

    // a new sign-in through the pages: the old password is refused, the new one gets in
    const other = new Browser();
    const start = await walk(other, `${home}/account`);
    const identify = parseForm(start.html, '/identify');
    const passwordPage = await walk(other, new URL(identify.action, start.url), { form: { ...identify.fields, email: ERIN } });
    const login = parseForm(passwordPage.html, '/login');
    const refused = await walk(other, new URL(login.action, passwordPage.url), { form: { ...login.fields, email: ERIN, password: PASSWORD } });
    expect(refused.res.status).toBe(401);
    expect(alertText(refused.html)).toBe('Incorrect email or password.');
    const retry = parseForm(refused.html, '/login');
    const back = await walk(other, new URL(retry.action, refused.url), { form: { ...retry.fields, email: ERIN, password: NEW_PASSWORD } });
    const account = await completeSignIn(other, back, { email: ERIN, password: NEW_PASSWORD });
    expect(account.url.pathname).toBe('/account');
    expect(account.res.status).toBe(200);
  });

  it('refuses a mismatch, an empty field, a password the policy rejects and a missing CSRF token, and changes nothing', async () => {
    const browser = new Browser();
    const page = await signInToAccount(browser, home, { email: HEIDI, password: PASSWORD });
    const before = (await userOf('home', HEIDI)).passwordHash;
    const cases: Array<{ password: string; confirm: string; status: number; message: RegExp }> = [
      { password: NEW_PASSWORD, confirm: OTHER_PASSWORD, status: 400, message: /^The two passwords do not match\./ },
      { password: '', confirm: '', status: 400, message: /^Enter the new password\.$/ },
      { password: 'short-one', confirm: 'short-one', status: 400, message: /^Password must be at least 15 characters\.$/ },
      { password: 'passwordpassword', confirm: 'passwordpassword', status: 400, message: /too common/ },
      { password: 'heidi@home.test', confirm: 'heidi@home.test', status: 400, message: /^Password must not be your email address\.$/ },
    ];
    for (const c of cases) {
      const { action, fields } = passwordForm(page, c.password, c.confirm);
      const res = await walk(browser, action, { form: fields });
      expect(res.res.status, `${c.password}: ${alertText(res.html)}`).toBe(c.status);
      expect(res.url.pathname).toBe('/account/password');
      expect(alertText(res.html)).toMatch(c.message);
      // the page is the account page again, with a fresh form and nothing echoed back
      expect(res.html).toContain('id="lk-password-heading"');
      expect(res.html).not.toMatch(/name="new_password(_again)?"[^>]*value=/);
    }
    const { action, fields } = passwordForm(page, NEW_PASSWORD);
    const forged = await browser.request(action, { form: { new_password: fields.new_password!, new_password_again: fields.new_password_again! } });
    expect(forged.status).toBe(403);
    const wrongToken = await browser.request(action, { form: { ...fields, csrf: `${fields.csrf}x` } });
    expect(wrongToken.status).toBe(403);
    // another browser, not signed in: sent to sign in, nothing changed
    const stranger = await new Browser().request(action, { form: fields });
    expect(stranger.status).toBe(303);
    expect(new URL(stranger.headers.get('location')!, home).pathname).toBe('/auth');

    expect((await userOf('home', HEIDI)).passwordHash).toBe(before);
    expect(await passwordWorks('home', HEIDI, PASSWORD)).toBe(true);
  });

  it('asks for a new sign-in first when the sign-in is older than reauthWindowSeconds', async () => {
    const browser = new Browser();
    const page = await signInToAccount(browser, quick, { email: GRACE, password: PASSWORD });
    const { action, fields } = passwordForm(page, NEW_PASSWORD);
    await new Promise((r) => setTimeout(r, 2200));
    const stale = await browser.request(action, { form: fields });
    expect(stale.status).toBe(303);
    const auth = new URL(stale.headers.get('location')!, quick);
    expect(auth.pathname).toBe('/auth');
    expect(auth.searchParams.get('max_age')).toBe('0');
    expect(await passwordWorks('quick', GRACE, PASSWORD)).toBe(true);
    expect(await passwordWorks('quick', GRACE, NEW_PASSWORD)).toBe(false);
  });

  it('lets a passwordless user add a password, which then signs them in', async () => {
    const s = server.services;
    const realm = await s.realms.get('home');
    const frank = await userOf('home', FRANK);
    expect(frank.passwordHash).toBeNull();
    const key = new SoftAuthenticator();
    const rp = relyingParty(realm, home);
    const user = { id: frank.id, email: frank.email, name: frank.name };
    const options = await s.passkeys.registrationOptions({ realmId: 'home', settings: realm.settings, rp, user, boundTo: 'test:bootstrap', kind: 'passkey' });
    await s.passkeys.verifyRegistration({ realmId: 'home', settings: realm.settings, rp, user, boundTo: 'test:bootstrap', kind: 'passkey', response: await key.createCredential(options, home), name: 'Phone' });

    const phone = new Browser();
    await signInToAccount(phone, home, { email: FRANK, authenticator: key });
    const browser = new Browser();
    const page = await signInToAccount(browser, home, { email: FRANK, authenticator: key });
    expect(page.html).toContain('You sign in without a password.');
    expect(page.html).toContain('>Add a password</button>');
    // his only passkey, no password, no recovery codes: deleting it is refused
    expect(page.html).toContain('This is your only way to sign in');

    const { action, fields } = passwordForm(page, NEW_PASSWORD);
    delete fields.sign_out_others; // the box unticked: other devices stay signed in
    const done = await walk(browser, action, { form: fields });
    expect(done.url.searchParams.get('notice')).toBe('password-added');
    expect(flashText(done.html)).toBe('Password added. You can now also sign in with your email and this password.');
    expect((await walk(phone, `${home}/account`)).url.pathname).toBe('/account');
    expect(done.html).toContain('>Change password</button>');
    // with a password, the passkey can go without a warning
    expect(done.html).not.toContain('This is your only way to sign in');
    expect(done.html).not.toContain('name="confirm" type="checkbox"');
    expect(await passwordWorks('home', FRANK, NEW_PASSWORD)).toBe(true);
    expect(await eventsOf('account.password_added', frank.id)).toHaveLength(1);
  });

  it('latchkey user set-password: reads the password from standard input, checks the policy, names what was wrong', async () => {
    const set = await cli(['user', 'set-password', '--realm', 'home', '--email', HEIDI, '--password-stdin'], `${OTHER_PASSWORD}\n`);
    expect(set.code, set.stderr).toBe(0);
    expect(set.json).toMatchObject({ realm: 'home', email: HEIDI, disabled: false });
    expect(JSON.stringify(set.json)).not.toContain(OTHER_PASSWORD);
    expect(await passwordWorks('home', HEIDI, OTHER_PASSWORD)).toBe(true);
    expect(await passwordWorks('home', HEIDI, PASSWORD)).toBe(false);

    const before = (await userOf('home', HEIDI)).passwordHash;
    const weak = await cli(['user', 'set-password', '--realm', 'home', '--email', HEIDI, '--password-stdin'], 'short\n');
    expect(weak.code).not.toBe(0);
    expect(weak.stdout).toBe('');
    expect(weak.stderr).toContain('Password must be at least 15 characters.');
    const noStdin = await cli(['user', 'set-password', '--realm', 'home', '--email', HEIDI]);
    expect(noStdin.code).not.toBe(0);
    expect(noStdin.stderr).toContain('add --password-stdin');
    const empty = await cli(['user', 'set-password', '--realm', 'home', '--email', HEIDI, '--password-stdin'], '');
    expect(empty.code).not.toBe(0);
    expect(empty.stderr).toContain('standard input was empty');
    const unknown = await cli(['user', 'set-password', '--realm', 'home', '--email', 'nobody@home.test', '--password-stdin'], `${NEW_PASSWORD}\n`);
    expect(unknown.code).not.toBe(0);
    expect(unknown.stderr).toContain('nobody@home.test');
    expect((await userOf('home', HEIDI)).passwordHash).toBe(before);

    const help = await cli(['user', '--help']);
    expect(`${help.stdout}${help.stderr}`).toContain('latchkey user set-password --realm R --email E --password-stdin');
  });

  it('an operator signs a user out everywhere: latchkey user sign-out and POST /api/v1/users/{id}/sign-out', async () => {
    const app = await cli(['client', 'create', '--realm', 'home', '--name', 'Phone app', '--first-party', '--redirect-uri', 'http://phone.example.test/cb']);
    expect(app.code, app.stderr).toBe(0);
    const appConfig = await discover(home, app.json.client_id, { client_secret: app.json.client_secret });
    // the CLI's answer is the user's: heidi's password is whatever the tests before set; sign in with a fresh one
    expect((await cli(['user', 'set-password', '--realm', 'home', '--email', HEIDI, '--password-stdin'], `${PASSWORD}\n`)).code).toBe(0);
    const browser = new Browser();
    await signInToAccount(browser, home, { email: HEIDI, password: PASSWORD });
    const phone = await signInWithPassword(new Browser(), appConfig, 'http://phone.example.test/cb', HEIDI, { scope: 'openid offline_access' });

    const out = await cli(['user', 'sign-out', '--realm', 'home', '--email', HEIDI]);
    expect(out.code, out.stderr).toBe(0);
    expect(out.json).toMatchObject({ realm: 'home', email: HEIDI });
    // at least the account page's and the phone's (an earlier test signed heidi in too)
    expect(out.json.sessions_ended).toBeGreaterThanOrEqual(2);
    expect(out.json.grants_revoked).toBeGreaterThanOrEqual(2);
    expect((await walk(browser, `${home}/account`)).url.pathname).toMatch(/^\/interaction\//);
    await expect(oidc.refreshTokenGrant(appConfig, phone.refresh_token!)).rejects.toMatchObject({ error: 'invalid_grant' });
    const unknown = await cli(['user', 'sign-out', '--realm', 'home', '--email', 'nobody@home.test']);
    expect(unknown.code).not.toBe(0);
    expect(unknown.stderr).toContain('nobody@home.test');

    // the same through the admin API
    const again = await signInWithPassword(new Browser(), appConfig, 'http://phone.example.test/cb', HEIDI, { scope: 'openid offline_access' });
    const admin = await cli(['client', 'create', '--realm', 'home', '--name', 'Helpdesk', '--grant', 'client_credentials', '--admin-api']);
    const token = await postForm(`${home}/token`, { grant_type: 'client_credentials', resource: ADMIN, scope: 'admin' }, { id: admin.json.client_id, secret: admin.json.client_secret });
    const heidi = await userOf('home', HEIDI);
    const res = await testFetch(`${home}/api/v1/users/${heidi.id}/sign-out`, { method: 'POST', headers: { authorization: `Bearer ${token.body.access_token}` } });
    expect(res.status).toBe(200);
    // exactly what was left: the one sign-in since
    expect(await res.json()).toEqual({ user_id: heidi.id, sessions_ended: 1, grants_revoked: 1, logout_tokens: { delivered: 0, failed: 0 } });
    const none = await testFetch(`${home}/api/v1/users/${heidi.id}/sign-out`, { method: 'POST', headers: { authorization: `Bearer ${token.body.access_token}` } });
    expect(await none.json()).toEqual({ user_id: heidi.id, sessions_ended: 0, grants_revoked: 0, logout_tokens: { delivered: 0, failed: 0 } });
    await expect(oidc.refreshTokenGrant(appConfig, again.refresh_token!)).rejects.toMatchObject({ error: 'invalid_grant' });
    const missing = await testFetch(`${home}/api/v1/users/no-such-user/sign-out`, { method: 'POST', headers: { authorization: `Bearer ${token.body.access_token}` } });
    expect(missing.status).toBe(404);
  });

  it('admin API: PATCH /users/{id} sets a password, and a weak one is a 400 problem that changes nothing', async () => {
    const created = await cli(['client', 'create', '--realm', 'home', '--name', 'Provisioning', '--grant', 'client_credentials', '--admin-api']);
    expect(created.code, created.stderr).toBe(0);
    const token = await postForm(`${home}/token`, { grant_type: 'client_credentials', resource: ADMIN, scope: 'admin' }, { id: created.json.client_id, secret: created.json.client_secret });
    expect(token.status, JSON.stringify(token.body)).toBe(200);
    const heidi = await userOf('home', HEIDI);
    const patch = async (body: unknown) => {
      const res = await testFetch(`${home}/api/v1/users/${heidi.id}`, { method: 'PATCH', headers: { authorization: `Bearer ${token.body.access_token}`, 'content-type': 'application/json' }, body: JSON.stringify(body) });
      return { status: res.status, body: await res.json() };
    };

    const weak = await patch({ name: 'Heidi', password: 'aaaaaaaaaaaaaaaaaaaa' });
    expect(weak.status).toBe(400);
    expect(JSON.stringify(weak.body)).toContain('Password must not be a single repeated character.');
    const unchanged = await userOf('home', HEIDI);
    expect(unchanged.name).toBe(heidi.name); // the name in the same request was not written either
    expect(unchanged.passwordHash).toBe(heidi.passwordHash);

    const ok = await patch({ password: NEW_PASSWORD });
    expect(ok.status, JSON.stringify(ok.body)).toBe(200);
    expect(ok.body.email).toBe(HEIDI);
    expect(JSON.stringify(ok.body)).not.toContain(NEW_PASSWORD);
    expect(JSON.stringify(ok.body)).not.toContain('argon2');
    expect(await passwordWorks('home', HEIDI, NEW_PASSWORD)).toBe(true);
  });
});
