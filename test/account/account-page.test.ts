import { createHmac } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { relyingParty } from '../../src/passkeys/relying-party.js';
import { SoftAuthenticator } from '../helpers/authenticator.js';
import { describeEachDatabase } from '../helpers/databases.js';
import { PASSWORD, until } from '../helpers/flows.js';
import { alertText, codesOf, completeSignIn, csrfOf, flashText, postJson, secretOf, signInToAccount, walk } from '../helpers/account-pages.js';
import { Browser, parseForm, testFetch } from '../helpers/http.js';
import { startTestServer, type TestServer } from '../helpers/server.js';

const ICLOUD = 'fbfc3007-154e-4ecc-8c0b-6e020557d7bd';

// ---- RFC 6238 (TOTP, HMAC-SHA1, 6 digits, 30 s), written here independently of the server's code ----

function base32Decode(input: string): Buffer {
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';
  const out: number[] = [];
  let bits = 0;
  let value = 0;
  for (const ch of input.replace(/[\s=]+/g, '').toUpperCase()) {
    const index = alphabet.indexOf(ch);
    if (index < 0) throw new Error(`not base32: ${ch}`);
    value = (value << 5) | index;
    bits += 5;
    if (bits >= 8) {
      bits -= 8;
      out.push((value >>> bits) & 0xff);
      value &= (1 << bits) - 1;
    }
  }
  return Buffer.from(out);
}

function totpAt(secret: string, step: number): string {
  const counter = Buffer.alloc(8);
  counter.writeBigUInt64BE(BigInt(step));
  const mac = createHmac('sha1', base32Decode(secret)).update(counter).digest();
  const offset = mac[mac.length - 1]! & 0x0f;
  const binary = ((mac[offset]! & 0x7f) << 24) | (mac[offset + 1]! << 16) | (mac[offset + 2]! << 8) | mac[offset + 3]!;
  return String(binary % 1_000_000).padStart(6, '0');
}

const currentStep = () => Math.floor(Date.now() / 1000 / 30);


describeEachDatabase('the account page', (kind) => {
  let server: TestServer;
  let home: string;
  let quick: string;
  const ALICE = 'alice@home.test';
  const BOB = 'bob@home.test';
  const CAROL = 'carol@quick.test';
  const DAVE = 'dave@home.test';
  const ERIN = 'erin@quick.test';
  const FRANK = 'frank@home.test';
  const GRACE = 'grace@home.test';

  const alice = new Browser();
  const aliceKey = new SoftAuthenticator({ aaguid: ICLOUD });
  const aliceDeviceKey = new SoftAuthenticator({ backupEligible: false });

  const userId = async (realm: string, email: string) => (await server.services.users.findByEmail(realm, email))!.id;
  const credentialsOf = async (realm: string, email: string) => server.services.passkeys.credentials(realm, await userId(realm, email));

  beforeAll(async () => {
    server = await startTestServer({ db: kind });
    home = `http://home.localhost:${server.port}`;
    quick = `http://quick.localhost:${server.port}`;
    const dir = mkdtempSync(join(tmpdir(), 'latchkey-account-'));
    writeFileSync(join(dir, 'quick.json'), JSON.stringify({ reauthWindowSeconds: 1 }));
    for (const args of [
      ['realm', 'create', '--id', 'home', '--name', 'Home', '--issuer', home],
      ['realm', 'create', '--id', 'quick', '--name', 'Quick', '--issuer', quick, '--settings', join(dir, 'quick.json')],
    ]) {
      const r = await server.cli(args);
      expect(r.code, r.stderr).toBe(0);
    }
    for (const [realm, email, password] of [
      ['home', ALICE, PASSWORD],
      ['home', BOB, PASSWORD],
      ['quick', CAROL, PASSWORD],
      ['home', DAVE, undefined],
      ['quick', ERIN, PASSWORD],
      ['home', FRANK, PASSWORD],
      ['home', GRACE, PASSWORD],
    ] as const) {
      const r = await server.cli(['user', 'create', '--realm', realm, '--email', email, '--name', email.split('@')[0]!, ...(password ? ['--password-stdin'] : [])], password ? `${password}\n` : undefined);
      expect(r.code, r.stderr).toBe(0);
    }
    // the server learns about the new realms through its refresh loop
    await until(async () => ((await testFetch(`${quick}/.well-known/openid-configuration`)).status === 200 ? true : undefined), 'the new realms');
  });
  afterAll(async () => server?.close());

  it('has a synthetic latchkey-account client in every realm, not stored and not listed', async () => {
    expect(await server.services.clients.providerMetadata('home', 'latchkey-account')).toEqual({
      client_id: 'latchkey-account',
      client_name: 'Your account',
      token_endpoint_auth_method: 'none',
      grant_types: ['authorization_code'],
      response_types: ['code'],
      redirect_uris: [`${home}/account/callback`],
      post_logout_redirect_uris: [`${home}/account/signed-out`],
      first_party: true,
    });
    expect(await server.services.clients.isFirstParty('quick', 'latchkey-account')).toBe(true);
    const listed = await server.cli(['client', 'list', '--realm', 'home']);
    expect(listed.code, listed.stderr).toBe(0);
    expect(listed.stdout).not.toContain('latchkey-account');
  });

  it('signs in through /account (a code flow redeemed in-process) and lists no passkeys', async () => {
    const start = await walk(alice, `${home}/account`);
    const first = start.trail[0]!.res;
    expect(first.status).toBe(303);
    const auth = new URL(first.headers.get('location')!, home);
    expect(auth.pathname).toBe('/auth');
    expect(auth.searchParams.get('client_id')).toBe('latchkey-account');
    expect(auth.searchParams.get('redirect_uri')).toBe(`${home}/account/callback`);
    expect(auth.searchParams.get('code_challenge_method')).toBe('S256');
    expect(auth.searchParams.get('scope')).toBe('openid');
    expect(auth.searchParams.get('state')).toBeTruthy();
    expect(auth.searchParams.has('max_age')).toBe(false);

    const done = await completeSignIn(alice, start, { email: ALICE, password: PASSWORD });
    expect(done.url.pathname).toBe('/account');
    expect(done.res.status).toBe(200);
    expect(done.res.headers.get('cache-control')).toBe('no-store');
    expect(done.html).toContain('Your account');
    expect(done.html).toContain(ALICE);
    expect(done.html).toContain('You have no passkeys yet.');
    expect(parseForm(done.html, '/account/sign-out').fields.csrf).toBe(csrfOf(done.html));

    const callback = done.trail.find((h) => h.url.pathname === '/account/callback');
    expect(callback, 'the sign-in came back through the callback').toBeTruthy();
    const cookies = (callback!.res.headers as unknown as { getSetCookie(): string[] }).getSetCookie();
    const session = cookies.find((c) => c.startsWith('lk_account='));
    expect(session).toBeTruthy();
    expect(session).toMatch(/; HttpOnly/);
    expect(session).toMatch(/; SameSite=Lax/);
    expect(session).toMatch(/; Path=\/account/);
    expect(session).toMatch(/; Max-Age=3600/);
    expect(session).not.toMatch(/Secure/); // http issuer

    // the code was used once: the same callback again is refused and signs nobody in
    const replay = await new Browser().request(callback!.url);
    expect(replay.status).toBe(400);
    expect(replay.headers.getSetCookie().some((c) => c.startsWith('lk_account=') && !c.startsWith('lk_account=;'))).toBe(false);
  });

  it('refuses a callback whose state does not match', async () => {
    const browser = new Browser();
    const first = await browser.request(`${home}/account`);
    expect(first.status).toBe(303);
    const res = await browser.request(`${home}/account/callback?code=made-up&state=not-the-state`);
    expect(res.status).toBe(400);
    expect(await res.text()).toContain('This sign-in has expired');
  });

  it('does not accept an altered account cookie', async () => {
    const browser = new Browser();
    await signInToAccount(browser, home, { email: ALICE, password: PASSWORD });
    const jar = browser.cookies.get(new URL(home).host)!;
    const value = jar.get('lk_account')!;
    const [body, mac] = value.split('.');
    const payload = JSON.parse(Buffer.from(body!, 'base64url').toString('utf8'));
    expect(payload.sub).toBe(await userId('home', ALICE));
    // another account, same MAC
    jar.set('lk_account', `${Buffer.from(JSON.stringify({ ...payload, sub: await userId('home', BOB) })).toString('base64url')}.${mac}`);
    const res = await browser.request(`${home}/account`);
    expect(res.status).toBe(303);
    expect(new URL(res.headers.get('location')!, home).pathname).toBe('/auth');
  });

  it('uses up a code that reaches the callback without its sign-in (another browser, wrong state)', async () => {
    const browser = new Browser();
    await signInToAccount(browser, home, { email: ALICE, password: PASSWORD });
    browser.cookies.get(new URL(home).host)!.delete('lk_account');
    // the realm session signs in again without a page: /account -> /auth -> the callback, with a code
    const start = await browser.request(`${home}/account`);
    expect(start.status).toBe(303);
    const auth = await browser.request(new URL(start.headers.get('location')!, home));
    expect(auth.status).toBe(303);
    const callback = new URL(auth.headers.get('location')!, home);
    expect(callback.pathname).toBe('/account/callback');
    expect(callback.searchParams.get('code')).toBeTruthy();
    // presented in a browser without the flow cookie: refused, and the code is used up
    expect((await new Browser().request(callback)).status).toBe(400);
    const own = await browser.request(callback);
    expect(own.status).toBe(400);
    expect(own.headers.getSetCookie().some((c) => c.startsWith('lk_account=') && !c.startsWith('lk_account=;'))).toBe(false);
  });

  it('adds passkeys through the JSON endpoints, shows name, device label and provider, and renames', async () => {
    let page = await walk(alice, `${home}/account`);
    const csrf = csrfOf(page.html);
    expect(page.html).toContain('data-lk-register-options="/account/passkeys/options"');
    expect(page.html).toContain('data-lk-register-verify="/account/passkeys/verify"');

    const options = await postJson(alice, `${home}/account/passkeys/options`, {}, csrf);
    expect(options.status, JSON.stringify(options.body)).toBe(200);
    expect(options.body.rp.id).toBe('home.localhost');
    expect(options.body.user.name).toBe(ALICE);
    expect(options.body.authenticatorSelection.residentKey).toBe('required');
    const response = await aliceKey.createCredential(options.body, home);
    const verified = await postJson(alice, `${home}/account/passkeys/verify`, { response, name: 'Laptop' }, csrf);
    expect(verified.status, JSON.stringify(verified.body)).toBe(200);
    // alice had no recovery codes: her first passkey (asked for after her password from now on) leads to
    // them, shown once; the page does not show (or replace) them a second time
    expect(verified.body).toEqual({ redirect: '/account/recovery-codes/first' });
    const user = (await server.services.users.findByEmail('home', ALICE))!;
    expect(await server.services.recovery.remaining('home', user.id)).toBe(0);
    const codesPage = await walk(alice, `${home}/account/recovery-codes/first`);
    expect(codesPage.html).toContain('Save your recovery codes');
    expect(codesOf(codesPage.html)).toHaveLength(10);
    expect(await server.services.recovery.remaining('home', user.id)).toBe(10);
    const again = await alice.request(`${home}/account/recovery-codes/first`);
    expect(again.status).toBe(303);
    expect(again.headers.get('location')).toBe('/account');
    expect(await server.services.recovery.remaining('home', user.id)).toBe(10);

    // a device-bound one, named by the server
    const options2 = await postJson(alice, `${home}/account/passkeys/options`, {}, csrf);
    expect(options2.body.excludeCredentials).toHaveLength(1);
    const verified2 = await postJson(alice, `${home}/account/passkeys/verify`, { response: await aliceDeviceKey.createCredential(options2.body, home) }, csrf);
    expect(verified2.status, JSON.stringify(verified2.body)).toBe(200);
    expect(verified2.body).toEqual({ reload: true }); // she has her codes now

    page = await walk(alice, `${home}/account`);
    expect(page.html).toContain('Laptop');
    expect(page.html).toContain('Synced passkey');
    expect(page.html).toContain('This device only');
    expect(page.html).toContain('iCloud Keychain');
    expect(page.html).toContain('Never'); // not used yet
    // alice has a password: no credential needs the lock-out confirmation
    expect(page.html).not.toContain('name="confirm"');

    const [laptop] = await credentialsOf('home', ALICE);
    expect(laptop!.name).toBe('Laptop');
    const rename = parseForm(page.html, `/account/passkeys/${laptop!.id}/rename`);
    expect(rename.action).toBe(`/account/passkeys/${laptop!.id}/rename`);
    const renamed = await walk(alice, new URL(rename.action, home), { form: { ...rename.fields, name: 'Work laptop' } });
    expect(renamed.trail[0]!.res.status).toBe(303);
    expect(renamed.url.pathname).toBe('/account');
    expect(flashText(renamed.html)).toBe('Passkey renamed.');
    expect(renamed.html).toContain('Work laptop');
    expect((await credentialsOf('home', ALICE))[0]!.name).toBe('Work laptop');
  });

  it('says in words whether each passkey is backed up (not by the badge colour alone)', async () => {
    const page = await walk(alice, `${home}/account`);
    const items = [...page.html.matchAll(/<li class="lk-credential">([\s\S]*?)<\/li>/g)].map((m) => m[1]!);
    expect(items).toHaveLength(2);
    const backedUp = (item: string) => /<dt>Backed up<\/dt><dd>([^<]*)<\/dd>/.exec(item)?.[1];
    const synced = items.find((i) => i.includes('Work laptop'))!;
    const device = items.find((i) => i.includes('This device only'))!;
    expect(backedUp(synced)).toBe('Yes');
    expect(backedUp(device)).toBe('No');
  });

  it('answers bad input with a clear message and changes nothing', async () => {
    const page = await walk(alice, `${home}/account`);
    const csrf = csrfOf(page.html);
    const [laptop] = await credentialsOf('home', ALICE);
    for (const name of ['', '   ', 'x'.repeat(65), 'tab\there', 'Phone \u202eenohP', '\u200b\u200d\u2060', 'a\u2066b']) {
      const res = await walk(alice, `${home}/account/passkeys/${laptop!.id}/rename`, { form: { csrf, name } });
      expect(res.res.status, JSON.stringify(name)).toBe(400);
      expect(alertText(res.html)).toMatch(/name/i);
    }
    expect((await credentialsOf('home', ALICE))[0]!.name).toBe('Work laptop');

    // not JSON, not an object, no response
    const notJson = await alice.request(`${home}/account/passkeys/verify`, { method: 'POST', headers: { 'x-csrf-token': csrf, 'content-type': 'text/plain' } });
    expect(notJson.status).toBe(415);
    const noResponse = await postJson(alice, `${home}/account/passkeys/verify`, { name: 'x' }, csrf);
    expect(noResponse.status).toBe(400);
    expect(noResponse.body.error_description).toMatch(/passkey response/);
    const array = await postJson(alice, `${home}/account/passkeys/verify`, [1, 2], csrf);
    expect(array.status).toBe(400);
    // a response to no challenge of this session
    const stray = await postJson(alice, `${home}/account/passkeys/verify`, { response: { id: 'x', response: { clientDataJSON: 'e30' } } }, csrf);
    expect(stray.status).toBe(400);
    expect(await credentialsOf('home', ALICE)).toHaveLength(2);
  });

  it('ties a rename or delete error to the field it is about, keeping what was typed', async () => {
    const page = await walk(alice, `${home}/account`);
    const csrf = csrfOf(page.html);
    const [laptop, device] = await credentialsOf('home', ALICE);
    const inputOf = (html: string, i: number) => new RegExp(`<input id="lk-cred-${i}-rename"[^>]*>`).exec(html)?.[0] ?? '';
    // every Rename button says which passkey it renames, like its Delete button
    expect(page.html).toContain(`aria-label="Rename ${device!.name}"`);
    expect(page.html).toContain('aria-label="Rename Work laptop"');
    const typed = 'y'.repeat(65);
    const res = await walk(alice, `${home}/account/passkeys/${device!.id}/rename`, { form: { csrf, name: typed } });
    expect(res.res.status).toBe(400);
    expect(alertText(res.html)).toMatch(/at most 64/);
    const wrong = inputOf(res.html, 1);
    expect(wrong).toContain('aria-invalid="true"');
    expect(wrong).toMatch(/aria-describedby="[^"]*lk-error/);
    expect(wrong).toContain(`value="${typed}"`);
    expect(wrong).toContain('autofocus');
    // the other passkey's field is untouched
    const other = inputOf(res.html, 0);
    expect(other).not.toContain('aria-invalid');
    expect(other).toContain('value="Work laptop"');
    expect(laptop!.name).toBe('Work laptop');
    expect((await credentialsOf('home', ALICE))[1]!.name).toBe(device!.name);
  });

  it('changes the name: saved and shown, a bad one refused on its field as typed, blank removes it, a forged post changes nothing', async () => {
    const email = 'hanna@home.test';
    expect((await server.cli(['user', 'create', '--realm', 'home', '--email', email, '--name', 'Hanna', '--password-stdin'], PASSWORD)).code).toBe(0);
    const hanna = new Browser();
    const page = await signInToAccount(hanna, home, { email, password: PASSWORD });
    const nameInput = (html: string) => /<input id="lk-profile-name"[^>]*>/.exec(html)?.[0] ?? '';
    expect(nameInput(page.html)).toContain('value="Hanna"');
    const csrf = csrfOf(page.html);
    const nameOf = async () => (await server.services.users.findByEmail('home', email))!.name;

    const saved = await walk(hanna, `${home}/account/name`, { form: { csrf, name: '  Hanna Arendt ' } });
    expect(saved.res.status).toBe(200);
    expect(flashText(saved.html)).toMatch(/^Name saved/);
    expect(nameInput(saved.html)).toContain('value="Hanna Arendt"');
    expect(await nameOf()).toBe('Hanna Arendt');

    const typed = 'Hanna\u202eadrenA';
    const refused = await walk(hanna, `${home}/account/name`, { form: { csrf, name: typed } });
    expect(refused.res.status).toBe(400);
    expect(alertText(refused.html)).toMatch(/^Your name must not contain text-direction control characters/);
    const marked = nameInput(refused.html);
    expect(marked).toContain('aria-invalid="true"');
    expect(marked).toMatch(/aria-describedby="[^"]*lk-error/);
    expect(marked).toContain('autofocus');
    expect(await nameOf()).toBe('Hanna Arendt');
    const tooLong = await walk(hanna, `${home}/account/name`, { form: { csrf, name: 'n'.repeat(201) } });
    expect(tooLong.res.status).toBe(400);
    expect(alertText(tooLong.html)).toMatch(/at most 200/);

    // a post without this session's token changes nothing
    const forged = await walk(hanna, `${home}/account/name`, { form: { csrf: csrfOf((await signInToAccount(new Browser(), home, { email: BOB, password: PASSWORD })).html), name: 'Forged' } });
    expect(forged.res.status).toBe(403);
    expect(await nameOf()).toBe('Hanna Arendt');

    const removed = await walk(hanna, `${home}/account/name`, { form: { csrf, name: '   ' } });
    expect(flashText(removed.html)).toBe('Name removed.');
    expect(await nameOf()).toBeNull();
  });

  it('refuses posts without the CSRF token (403) and changes nothing', async () => {
    const [laptop] = await credentialsOf('home', ALICE);
    const form = await walk(alice, `${home}/account/passkeys/${laptop!.id}/rename`, { form: { name: 'Hijacked' } });
    expect(form.res.status).toBe(403);
    const wrong = await walk(alice, `${home}/account/passkeys/${laptop!.id}/delete`, { form: { csrf: 'not-the-token' } });
    expect(wrong.res.status).toBe(403);
    const codes = await walk(alice, `${home}/account/recovery-codes`, { method: 'POST', form: {} });
    expect(codes.res.status).toBe(403);
    const json = await postJson(alice, `${home}/account/passkeys/options`, {});
    expect(json.status).toBe(403);
    expect(json.body.error).toBe('csrf_failed');
    // another session's token does not fit this one
    const bob = new Browser();
    const bobPage = await signInToAccount(bob, home, { email: BOB, password: PASSWORD });
    const foreign = await walk(alice, `${home}/account/passkeys/${laptop!.id}/rename`, { form: { csrf: csrfOf(bobPage.html), name: 'Hijacked' } });
    expect(foreign.res.status).toBe(403);
    expect((await credentialsOf('home', ALICE)).map((c) => c.name)).not.toContain('Hijacked');
    expect(await credentialsOf('home', ALICE)).toHaveLength(2);
  });

  it('shows an upstream picture only while its host is on the safe image hosts list', async () => {
    const bob = new Browser();
    await server.services.db('users').where({ realm_id: 'home', email_normalized: BOB }).update({ picture: 'https://lh3.googleusercontent.com/a/bob.png' });
    const page = await signInToAccount(bob, home, { email: BOB, password: PASSWORD });
    expect(page.html).toContain('<img class="lk-avatar" src="https://lh3.googleusercontent.com/a/bob.png" alt=""');
    // a picture from anywhere else (stored before the list changed, say) is not shown
    await server.services.db('users').where({ realm_id: 'home', email_normalized: BOB }).update({ picture: 'https://tracker.example.net/pixel.png' });
    const again = await walk(bob, `${home}/account`);
    expect(again.res.status).toBe(200);
    expect(again.html).toContain(BOB);
    expect(again.html).not.toContain('tracker.example.net');
    expect(again.html).not.toContain('lk-avatar');
    await server.services.db('users').where({ realm_id: 'home', email_normalized: BOB }).update({ picture: null });
  });

  it("does not let another user rename or delete someone's credential (404)", async () => {
    const bob = new Browser();
    const page = await signInToAccount(bob, home, { email: BOB, password: PASSWORD });
    const csrf = csrfOf(page.html);
    const [laptop] = await credentialsOf('home', ALICE);
    const rename = await walk(bob, `${home}/account/passkeys/${laptop!.id}/rename`, { form: { csrf, name: 'Mine now' } });
    expect(rename.res.status).toBe(404);
    expect(alertText(rename.html)).toMatch(/does not exist/);
    const del = await walk(bob, `${home}/account/passkeys/${laptop!.id}/delete`, { form: { csrf, confirm: 'yes' } });
    expect(del.res.status).toBe(404);
    const after = await credentialsOf('home', ALICE);
    expect(after).toHaveLength(2);
    expect(after[0]!.name).toBe('Work laptop');
  });

  it('enrols an authenticator app (QR, confirm with a TOTP code) and shows the first recovery codes once', async () => {
    // the codes her first passkey brought (above) are dropped: here the app is the first factor to bring them
    await server.services.recovery.removeAll('home', await userId('home', ALICE));
    const setup = await walk(alice, `${home}/account/totp`);
    expect(setup.res.status).toBe(200);
    expect(setup.html).toContain('<svg');
    const secret = secretOf(setup.html);
    expect(secret).toMatch(/^[A-Z2-7]{32}$/);
    const form = parseForm(setup.html, '/account/totp');
    expect(form.action).toBe('/account/totp');

    // a wrong code: the same secret is shown again with a message
    const step = currentStep();
    const valid = new Set([step - 1, step, step + 1].map((s) => totpAt(secret, s)));
    let wrongCode = '000000';
    for (let n = 1; valid.has(wrongCode); n++) wrongCode = String(n).padStart(6, '0');
    const wrong = await walk(alice, new URL(form.action, home), { form: { ...form.fields, code: wrongCode } });
    expect(wrong.res.status).toBe(400);
    expect(alertText(wrong.html)).toMatch(/not right/);
    expect(secretOf(wrong.html)).toBe(secret);
    expect(await server.services.totp.isEnrolled('home', await userId('home', ALICE))).toBe(false);

    const confirmed = await walk(alice, new URL(form.action, home), { form: { ...form.fields, code: totpAt(secret, currentStep()) } });
    expect(confirmed.res.status).toBe(200);
    expect(confirmed.res.headers.get('cache-control')).toBe('no-store');
    const codes = codesOf(confirmed.html);
    expect(codes).toHaveLength(10);
    expect(await server.services.totp.isEnrolled('home', await userId('home', ALICE))).toBe(true);
    const saved = parseForm(confirmed.html, '/account/recovery-codes/done');
    const back = await walk(alice, new URL(saved.action, home), { form: saved.fields });
    expect(back.url.pathname).toBe('/account');
    expect(back.html).toContain('10 recovery codes left.');
    expect(back.html).toMatch(/Authenticator app: <span class="lk-strong">on<\/span>/);

    // set up already: the set-up page sends back with a message
    const again = await walk(alice, `${home}/account/totp`);
    expect(again.url.pathname).toBe('/account');
    expect(alertText(again.html)).toMatch(/already set up/);
  });

  it('regenerates recovery codes: new ones shown once, the old ones stop working', async () => {
    const id = await userId('home', ALICE);
    const oldCodes = await server.services.recovery.generate('home', id);
    const page = await walk(alice, `${home}/account`);
    const form = parseForm(page.html, '/account/recovery-codes');
    const shown = await walk(alice, new URL(form.action, home), { form: form.fields });
    expect(shown.res.status).toBe(200);
    const codes = codesOf(shown.html);
    expect(codes).toHaveLength(10);
    expect(codes.some((c) => oldCodes.includes(c))).toBe(false);
    expect(await server.services.recovery.consume('home', id, oldCodes[0]!)).toBe(false);
    expect(await server.services.recovery.consume('home', id, codes[0]!)).toBe(true);
    const done = await walk(alice, new URL(parseForm(shown.html, '/done').action, home), { form: parseForm(shown.html, '/done').fields });
    expect(flashText(done.html)).toMatch(/new recovery codes/);
    expect(done.html).toContain('9 recovery codes left.');
  });

  it('turns the authenticator app off', async () => {
    const page = await walk(alice, `${home}/account`);
    const form = parseForm(page.html, '/account/totp/remove');
    const off = await walk(alice, new URL(form.action, home), { form: form.fields });
    expect(off.url.pathname).toBe('/account');
    expect(flashText(off.html)).toBe('Authenticator app turned off.');
    expect(await server.services.totp.isEnrolled('home', await userId('home', ALICE))).toBe(false);
  });

  it('asks for a new sign-in (max_age=0) before changes once the sign-in is older than reauthWindowSeconds', async () => {
    const carol = new Browser();
    let page = await signInToAccount(carol, quick, { email: CAROL, password: PASSWORD });
    const id = await userId('quick', CAROL);
    let csrf = csrfOf(page.html);
    const fresh = await walk(carol, `${quick}/account/recovery-codes`, { form: { csrf } });
    expect(fresh.res.status).toBe(200);
    const codes = codesOf(fresh.html);
    expect(codes).toHaveLength(10);

    await new Promise((r) => setTimeout(r, 2200));

    // viewing needs no new sign-in
    page = await walk(carol, `${quick}/account`);
    expect(page.res.status).toBe(200);
    csrf = csrfOf(page.html);

    // a form post: 303 to a new authorization request that forces the sign-in
    const stale = await carol.request(`${quick}/account/recovery-codes`, { form: { csrf } });
    expect(stale.status).toBe(303);
    const auth = new URL(stale.headers.get('location')!, quick);
    expect(auth.pathname).toBe('/auth');
    expect(auth.searchParams.get('max_age')).toBe('0');
    expect(auth.searchParams.get('client_id')).toBe('latchkey-account');
    // nothing was changed: the codes shown before still work
    expect(await server.services.recovery.remaining('quick', id)).toBe(10);

    // a JSON endpoint: 401 with where to go
    const json = await postJson(carol, `${quick}/account/passkeys/options`, {}, csrf);
    expect(json.status).toBe(401);
    expect(json.body.error).toBe('reauthentication_required');
    const redirect = new URL(json.body.redirect, quick);
    expect(redirect.pathname).toBe('/auth');
    expect(redirect.searchParams.get('max_age')).toBe('0');

    // the sign-in really is asked for again (straight to the password: the user is known), then comes back
    const signIn = await walk(carol, redirect);
    expect(signIn.url.pathname).toMatch(/^\/interaction\//);
    expect(signIn.html).toContain('name="password"');
    const back = await completeSignIn(carol, signIn, { email: CAROL, password: PASSWORD });
    expect(back.url.pathname).toBe('/account');
    expect(back.url.searchParams.get('notice')).toBe('reauthenticated');
    expect(flashText(back.html)).toMatch(/signed in again/);

    const now = await walk(carol, `${quick}/account/recovery-codes`, { form: { csrf: csrfOf(back.html) } });
    expect(now.res.status).toBe(200);
    expect(codesOf(now.html)).toHaveLength(10);
    expect(codesOf(now.html).some((c) => codes.includes(c))).toBe(false);
  });

  it('keeps the authenticator app secret being set up across a reload and a new sign-in, in this browser only', async () => {
    const erin = new Browser();
    await signInToAccount(erin, quick, { email: ERIN, password: PASSWORD });
    const setup = await walk(erin, `${quick}/account/totp`);
    expect(setup.url.pathname).toBe('/account/totp');
    const secret = secretOf(setup.html);
    expect(secret).toMatch(/^[A-Z2-7]{32}$/);
    // a reload shows the key the user may already have scanned, not a new one
    const reload = await walk(erin, `${quick}/account/totp`);
    expect(reload.url.pathname).toBe('/account/totp');
    expect(secretOf(reload.html)).toBe(secret);

    await new Promise((r) => setTimeout(r, 2200));
    // the code is typed after the sign-in got too old: sign in again, and come back to the same key
    const form = parseForm(reload.html, '/account/totp');
    const stale = await erin.request(new URL(form.action, quick), { form: { ...form.fields, code: totpAt(secret, currentStep()) } });
    expect(stale.status).toBe(303);
    expect(new URL(stale.headers.get('location')!, quick).searchParams.get('max_age')).toBe('0');
    const again = await completeSignIn(erin, await walk(erin, new URL(stale.headers.get('location')!, quick)), { email: ERIN, password: PASSWORD });
    expect(again.url.pathname).toBe('/account/totp');
    expect(secretOf(again.html)).toBe(secret);
    const confirmed = await walk(erin, new URL(form.action, quick), { form: { csrf: csrfOf(again.html), code: totpAt(secret, currentStep()) } });
    expect(confirmed.res.status).toBe(200);
    expect(codesOf(confirmed.html)).toHaveLength(10);
    expect(await server.services.totp.isEnrolled('quick', await userId('quick', ERIN))).toBe(true);

    // a pending key is never shown to another browser: it gets a key of its own
    await server.services.totp.remove('quick', await userId('quick', ERIN));
    const mine = secretOf((await walk(erin, `${quick}/account/totp`)).html);
    expect(mine).toMatch(/^[A-Z2-7]{32}$/);
    const other = new Browser();
    await signInToAccount(other, quick, { email: ERIN, password: PASSWORD });
    const theirs = await walk(other, `${quick}/account/totp`);
    expect(theirs.url.pathname).toBe('/account/totp');
    expect(secretOf(theirs.html)).not.toBe(mine);
    // nor after a mistyped code in the first browser: its set-up was replaced, so it starts again with a key of its own
    const setupForm = parseForm(theirs.html, '/account/totp');
    const mistyped = await erin.request(new URL(setupForm.action, quick), { form: { csrf: csrfOf((await walk(erin, `${quick}/account`)).html), code: '000000' } });
    expect(mistyped.status).toBe(303);
    expect(mistyped.headers.get('location')).toBe('/account/totp');
    const restarted = await walk(erin, `${quick}/account/totp`);
    expect(secretOf(restarted.html)).toMatch(/^[A-Z2-7]{32}$/);
    expect([mine, secretOf(theirs.html)]).not.toContain(secretOf(restarted.html));
  });

  it('says so when too many wrong codes have locked the authenticator app set-up, rather than calling a right code wrong', async () => {
    const frank = new Browser();
    await signInToAccount(frank, home, { email: FRANK, password: PASSWORD });
    const setup = await walk(frank, `${home}/account/totp`);
    const secret = secretOf(setup.html);
    const form = parseForm(setup.html, '/account/totp');
    const valid = new Set([-2, -1, 0, 1, 2].map((d) => totpAt(secret, currentStep() + d)));
    let wrongCode = '000000';
    for (let n = 1; valid.has(wrongCode); n++) wrongCode = String(n).padStart(6, '0');
    for (let i = 0; i < 5; i++) {
      const wrong = await walk(frank, new URL(form.action, home), { form: { ...form.fields, code: wrongCode } });
      expect(wrong.res.status).toBe(400);
      expect(alertText(wrong.html)).toMatch(/not right/);
    }
    // the right code now: refused for the wait, and the page says that is why
    const locked = await walk(frank, new URL(form.action, home), { form: { ...form.fields, code: totpAt(secret, currentStep()) } });
    expect(locked.res.status).toBe(429);
    expect(alertText(locked.html)).toMatch(/Too many wrong codes/);
    expect(alertText(locked.html)).toMatch(/Wait about \d+ minutes/);
    expect(alertText(locked.html)).not.toMatch(/not right/);
    expect(secretOf(locked.html)).toBe(secret);
    expect(await server.services.totp.isEnrolled('home', await userId('home', FRANK))).toBe(false);
  });

  it('a double-submitted authenticator app code: the page the browser keeps says to create new recovery codes if unseen', async () => {
    const grace = new Browser();
    await signInToAccount(grace, home, { email: GRACE, password: PASSWORD });
    const setup = await walk(grace, `${home}/account/totp`);
    const secret = secretOf(setup.html);
    const form = parseForm(setup.html, '/account/totp');
    const fields = { ...form.fields, code: totpAt(secret, currentStep()) };
    // a double click: two posts of the same form; the browser shows the answer to the second one
    const [a, b] = await Promise.all([grace.request(new URL(form.action, home), { form: fields }), grace.request(new URL(form.action, home), { form: fields })]);
    const statuses = [a.status, b.status].sort();
    expect(statuses).toEqual([200, 303]);
    const shown = a.status === 200 ? a : b;
    expect(codesOf(await shown.text())).toHaveLength(10);
    const other = a.status === 303 ? a : b;
    const page = await walk(grace, new URL(other.headers.get('location')!, home));
    expect(page.url.pathname).toBe('/account');
    expect(flashText(page.html)).toMatch(/Authenticator app turned on/);
    expect(flashText(page.html)).toMatch(/did not see .*recovery codes.*create new ones/i);
    expect(await server.services.recovery.remaining('home', await userId('home', GRACE))).toBe(10);
  });

  it('answers the JSON endpoints with 401 and a sign-in URL without an account session', async () => {
    const res = await postJson(new Browser(), `${home}/account/passkeys/options`, {}, 'whatever');
    expect(res.status).toBe(401);
    expect(res.body.error).toBe('login_required');
    expect(new URL(res.body.redirect, home).pathname).toBe('/auth');
    const form = await new Browser().request(`${home}/account/totp/remove`, { form: { csrf: 'x' } });
    expect(form.status).toBe(303);
    expect(new URL(form.headers.get('location')!, home).pathname).toBe('/auth');
  });

  it('warns before the last passkey of a passwordless user goes, and deletes it only when confirmed', async () => {
    const s = server.services;
    const realm = await s.realms.get('home');
    const dave = (await s.users.findByEmail('home', DAVE))!;
    expect(dave.passwordHash).toBeNull();
    // dave's first passkey comes out of band (an administrator's enrolment): he has no password to sign in with
    const first = new SoftAuthenticator();
    const rp = relyingParty(realm, home);
    const bootstrap = await s.passkeys.registrationOptions({ realmId: 'home', settings: realm.settings, rp, user: { id: dave.id, email: dave.email, name: dave.name }, boundTo: 'test:bootstrap', kind: 'passkey' });
    await s.passkeys.verifyRegistration({
      realmId: 'home',
      settings: realm.settings,
      rp,
      user: { id: dave.id, email: dave.email, name: dave.name },
      boundTo: 'test:bootstrap',
      kind: 'passkey',
      response: await first.createCredential(bootstrap, home),
      name: 'Phone',
    });

    // signed in with the passkey through the account page
    const browser = new Browser();
    let page = await signInToAccount(browser, home, { email: DAVE, authenticator: first });
    expect(page.html).toContain('Phone');
    expect(page.html).toContain('This is your only way to sign in'); // the only passkey of a passwordless user without recovery codes

    // a second passkey, added on the account page
    const second = new SoftAuthenticator({ backupEligible: false });
    const csrf = csrfOf(page.html);
    const options = await postJson(browser, `${home}/account/passkeys/options`, {}, csrf);
    expect(options.status).toBe(200);
    const added = await postJson(browser, `${home}/account/passkeys/verify`, { response: await second.createCredential(options.body, home), name: 'Desk key' }, csrf);
    expect(added.status, JSON.stringify(added.body)).toBe(200);
    page = await walk(browser, `${home}/account`);
    expect(page.html).toContain('Desk key');
    expect(page.html).not.toContain('name="confirm"'); // two passkeys: either can go

    const [phone, desk] = await credentialsOf('home', DAVE);
    const removed = await walk(browser, `${home}${`/account/passkeys/${phone!.id}/delete`}`, { form: { csrf } });
    expect(removed.url.pathname).toBe('/account');
    expect(flashText(removed.html)).toBe('Passkey deleted.');

    // now the last one, and dave has no recovery codes either: deleting it would lock him out for good,
    // so the page says so and the deletion is refused, confirmed or not
    expect(await s.recovery.remaining('home', dave.id)).toBe(0);
    expect(removed.html).toContain('This is your only way to sign in');
    expect(removed.html).not.toContain('name="confirm"');
    for (const fields of [{ csrf }, { csrf, confirm: 'yes' }] as Array<Record<string, string>>) {
      const locked = await walk(browser, `${home}/account/passkeys/${desk!.id}/delete`, { form: fields });
      expect(locked.res.status).toBe(400);
      expect(alertText(locked.html)).toMatch(/lock you out/);
      expect(alertText(locked.html)).toMatch(/recovery codes/);
    }
    expect(await credentialsOf('home', DAVE)).toHaveLength(1);

    // with recovery codes (created on the page), a confirmation is enough
    const codesForm = parseForm(removed.html, '/account/recovery-codes');
    const codes = await walk(browser, new URL(codesForm.action, home), { form: codesForm.fields });
    expect(codesOf(codes.html)).toHaveLength(10);
    const withCodes = await walk(browser, `${home}/account`);
    expect(withCodes.html).toContain('name="confirm"');
    expect(withCodes.html).not.toContain('This is your only way to sign in');

    // without the confirmation: refused with a clear message, nothing deleted
    const deleteForm = parseForm(withCodes.html, `/account/passkeys/${desk!.id}/delete`);
    expect(deleteForm.fields.confirm).toBe('yes'); // the checkbox is in the form
    const refused = await walk(browser, new URL(deleteForm.action, home), { form: { csrf: deleteForm.fields.csrf! } });
    expect(refused.res.status).toBe(400);
    expect(alertText(refused.html)).toMatch(/only passkey/);
    // the checkbox the message is about is marked invalid and described by it
    const checkbox = /<input id="lk-cred-0-confirm"[^>]*>/.exec(refused.html)?.[0] ?? '';
    expect(checkbox).toContain('aria-invalid="true"');
    expect(checkbox).toMatch(/aria-describedby="lk-cred-0-warning lk-error"/);
    expect(await credentialsOf('home', DAVE)).toHaveLength(1);

    // with it: deleted
    const confirmed = await walk(browser, new URL(deleteForm.action, home), { form: { csrf: deleteForm.fields.csrf!, confirm: 'yes' } });
    expect(confirmed.url.pathname).toBe('/account');
    expect(await credentialsOf('home', DAVE)).toHaveLength(0);
    expect(confirmed.html).toContain('You have no passkeys yet.');
  });

  it('signs out: the account cookie goes, the realm session ends, the next visit signs in again', async () => {
    const signOut = parseForm((await walk(alice, `${home}/account`)).html, '/account/sign-out');
    const out = await alice.request(new URL(signOut.action, home), { form: signOut.fields });
    expect(out.status).toBe(303);
    expect(out.headers.getSetCookie().some((c) => c.startsWith('lk_account=;') && /Max-Age=0/.test(c))).toBe(true);
    const end = new URL(out.headers.get('location')!, home);
    expect(end.pathname).toBe('/session/end');
    expect(end.searchParams.get('client_id')).toBe('latchkey-account');
    expect(end.searchParams.get('post_logout_redirect_uri')).toBe(`${home}/account/signed-out`);
    const confirm = await walk(alice, end);
    expect(confirm.res.status).toBe(200);
    const form = parseForm(confirm.html, 'session/end');
    const done = await walk(alice, new URL(form.action, home), { form: { ...form.fields, logout: 'yes' } });
    expect(done.url.pathname).toBe('/account/signed-out');
    expect(done.html).toContain('You have signed out');
    const again = await walk(alice, `${home}/account`);
    expect(again.url.pathname).toMatch(/^\/interaction\//);
    expect(again.html).toContain('/identify');
  });

  it('ends the account session of a disabled user', async () => {
    const bob = new Browser();
    await signInToAccount(bob, home, { email: BOB, password: PASSWORD });
    const disabled = await server.cli(['user', 'disable', '--realm', 'home', '--email', BOB]);
    expect(disabled.code, disabled.stderr).toBe(0);
    const res = await bob.request(`${home}/account`);
    expect(res.status).toBe(303);
    expect(new URL(res.headers.get('location')!, home).pathname).toBe('/auth');
    expect(res.headers.getSetCookie().some((c) => c.startsWith('lk_account=;'))).toBe(true);
  });
});
