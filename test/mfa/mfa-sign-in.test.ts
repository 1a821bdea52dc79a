import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { decodeJwt } from 'jose';
import type * as oidc from 'openid-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SoftAuthenticator } from '../helpers/authenticator.js';
import { authorizationRequest, discover, exchangeCode, PASSWORD, skipPasskeyOffer } from '../helpers/flows.js';
import { Browser } from '../helpers/http.js';
import { passkeyAssertion, passkeyRegistration, readPage, submit, type SignInPage } from '../helpers/passkey-flows.js';
import { startTestServer, type TestServer } from '../helpers/server.js';
import { codeForStep, stepOf } from '../helpers/totp.js';

const REDIRECT = 'http://app.example.test/cb';

describe('second factors: TOTP, security keys, recovery codes, step-up', () => {
  let server: TestServer;
  const configs: Record<string, oidc.Configuration> = {};
  const issuers: Record<string, string> = {};
  const totpSecrets: Record<string, string> = {};
  const recoveryCodes: Record<string, string[]> = {};

  async function realm(id: string, settings: Record<string, unknown>) {
    const dir = mkdtempSync(join(tmpdir(), 'latchkey-mfa-'));
    writeFileSync(join(dir, 's.json'), JSON.stringify(settings));
    const issuer = `http://${id}.localhost:${server.port}`;
    const created = await server.cli(['realm', 'create', '--id', id, '--issuer', issuer, '--settings', join(dir, 's.json')]);
    expect(created.code, created.stderr).toBe(0);
    const client = await server.cli(['client', 'create', '--realm', id, '--name', 'App', '--redirect-uri', REDIRECT, '--first-party']);
    issuers[id] = issuer;
    configs[id] = await discover(issuer, client.json.client_id, { client_secret: client.json.client_secret });
  }

  const user = async (realmId: string, email: string, password = true) =>
    expect((await server.cli(['user', 'create', '--realm', realmId, '--email', email, ...(password ? ['--password-stdin'] : [])], password ? PASSWORD : undefined)).code).toBe(0);

  beforeAll(async () => {
    server = await startTestServer();
    await realm('strict', { mfa: 'required' });
    await realm('relaxed', { mfa: 'off' });
    await user('strict', 'totp@example.test');
    await user('strict', 'key@example.test');
    await user('strict', 'twice@example.test');
    await user('relaxed', 'step@example.test');
    await user('default', 'lost@example.test', false);
    const c = await server.cli(['client', 'create', '--realm', 'default', '--name', 'App', '--redirect-uri', REDIRECT, '--first-party']);
    issuers.default = server.issuer;
    configs.default = await discover(server.issuer, c.json.client_id, { client_secret: c.json.client_secret });
  });
  afterAll(async () => server?.close());

  async function begin(realmId: string, browser: Browser, params: Record<string, string> = {}) {
    const auth = await authorizationRequest(configs[realmId]!, REDIRECT, params);
    const first = await browser.follow(auth.url, {}, REDIRECT);
    return { auth, first };
  }

  async function password(browser: Browser, page: SignInPage, email: string): Promise<SignInPage> {
    const pw = await readPage(await submit(browser, page, '/identify', { email }, REDIRECT));
    return readPage(await submit(browser, pw, '/login', { email, password: PASSWORD }, REDIRECT));
  }

  async function land(realmId: string, browser: Browser, auth: any, step: { res: Response; url: URL }) {
    const done = await skipPasskeyOffer(browser, step, REDIRECT);
    expect(done.url.href.startsWith(REDIRECT), done.url.href).toBe(true);
    return decodeJwt((await exchangeCode(configs[realmId]!, auth, done.url)).id_token!);
  }

  it('MFA required: a user without a second factor is walked through TOTP enrolment, then shown recovery codes once', async () => {
    const browser = new Browser();
    const { auth, first } = await begin('strict', browser);
    const enrol = await password(browser, await readPage(first), 'totp@example.test');
    expect(enrol.html).toContain('<svg');
    const secret = /class="lk-secret"><code>([^<]+)<\/code>/.exec(enrol.html)?.[1]?.replace(/\s+/g, '');
    expect(secret).toMatch(/^[A-Z2-7]{16,}$/);
    totpSecrets.strict = secret!;
    const wrong = await readPage(await submit(browser, enrol, '/totp/enrol', { code: '000000' }, REDIRECT));
    expect(wrong.status).toBe(400);
    expect(wrong.html).toContain(secret!.slice(0, 4)); // the same secret again: no need to scan anew
    const codesPage = await readPage(await submit(browser, wrong, '/totp/enrol', { code: codeForStep(secret!, stepOf(Date.now())) }, REDIRECT));
    const codes = [...codesPage.html.matchAll(/<li><code>([a-z0-9-]+)<\/code><\/li>/g)].map((m) => m[1]!);
    expect(codes).toHaveLength(10);
    recoveryCodes.strict = codes;
    const again = await readPage(await browser.follow(codesPage.url, {}, REDIRECT));
    expect(again.html).not.toContain(codes[0]!); // shown once
    const claims = await land('strict', browser, auth, await submit(browser, codesPage, '/continue', {}, REDIRECT));
    expect(claims.amr).toEqual(expect.arrayContaining(['pwd', 'otp', 'mfa']));
    expect(claims.acr).toBe('urn:latchkey:loa:2');
  });

  it('an authenticator-app key being set up is shown only to the sign-in that started it, never to another one with the same password', async () => {
    const keyOf = (html: string) => /class="lk-secret"><code>([^<]+)<\/code>/.exec(html)?.[1]?.replace(/\s+/g, '') ?? '';
    const owner = new Browser();
    const mine = await begin('strict', owner);
    const ownerEnrol = await password(owner, await readPage(mine.first), 'twice@example.test');
    const ownerKey = keyOf(ownerEnrol.html);
    expect(ownerKey).toMatch(/^[A-Z2-7]{16,}$/);
    // a reload of the owner's page keeps the key just scanned
    expect(keyOf((await readPage(await owner.follow(ownerEnrol.url, {}, REDIRECT))).html)).toBe(ownerKey);

    // someone else with the password, meanwhile: a key of their own, not the owner's
    const other = new Browser();
    const theirs = await begin('strict', other);
    const otherEnrol = await password(other, await readPage(theirs.first), 'twice@example.test');
    const otherKey = keyOf(otherEnrol.html);
    expect(otherKey).toMatch(/^[A-Z2-7]{16,}$/);
    expect(otherKey).not.toBe(ownerKey);

    // the owner's next look (a reload, a mistyped code) does not show the other's key either: a new one
    const wrong = await readPage(await submit(owner, ownerEnrol, '/totp/enrol', { code: '000000' }, REDIRECT));
    expect(wrong.status).toBe(400);
    const ownerNewKey = keyOf(wrong.html);
    expect(ownerNewKey).toMatch(/^[A-Z2-7]{16,}$/);
    expect([ownerKey, otherKey]).not.toContain(ownerNewKey);
    // and that key works
    const codesPage = await readPage(await submit(owner, wrong, '/totp/enrol', { code: codeForStep(ownerNewKey, stepOf(Date.now())) }, REDIRECT));
    expect(codesPage.html).toContain('Save your recovery codes');
  });

  it('TOTP as second factor: a used code is refused, a code outside the window is refused, the next one works', async () => {
    const secret = totpSecrets.strict!;
    const row = await server.services.db('totp_factors').first();
    expect(row.secret).not.toContain(secret); // sealed at rest
    const used = Number(row.last_used_step);
    const browser = new Browser();
    const { auth, first } = await begin('strict', browser);
    const mfa = await password(browser, await readPage(first), 'totp@example.test');
    expect(mfa.html).toContain('/totp"');
    const reused = await readPage(await submit(browser, mfa, '/totp"', { code: codeForStep(secret, used) }, REDIRECT));
    expect(reused.status).toBe(401);
    expect(reused.html).toContain('already used');
    const outside = await readPage(await submit(browser, reused, '/totp"', { code: codeForStep(secret, stepOf(Date.now()) + 3) }, REDIRECT));
    expect(outside.status).toBe(401);
    const ok = await submit(browser, outside, '/totp"', { code: codeForStep(secret, Math.max(used + 1, stepOf(Date.now()))) }, REDIRECT);
    const claims = await land('strict', browser, auth, ok);
    expect(claims.amr).toEqual(expect.arrayContaining(['pwd', 'otp', 'mfa']));
  });

  it('a recovery code works once as the second factor', async () => {
    const code = recoveryCodes.strict![0]!;
    const browser = new Browser();
    const { auth, first } = await begin('strict', browser);
    const mfa = await password(browser, await readPage(first), 'totp@example.test');
    const claims = await land('strict', browser, auth, await submit(browser, mfa, '/recovery', { code: code.toUpperCase() }, REDIRECT));
    expect(claims.amr).toEqual(expect.arrayContaining(['pwd', 'otp', 'mfa']));
    const b2 = new Browser();
    const second = await begin('strict', b2);
    const mfa2 = await password(b2, await readPage(second.first), 'totp@example.test');
    const refused = await readPage(await submit(b2, mfa2, '/recovery', { code }, REDIRECT));
    expect(refused.status).toBe(401);
    expect(refused.html).toContain('That recovery code is not valid or was already used.');
    // the whole second-factor page again, the recovery form open: the app's code is still offered, and Cancel
    expect(refused.html).toMatch(/action="\/interaction\/[^"]+\/totp"/);
    expect(refused.html).toMatch(/action="\/interaction\/[^"]+\/recovery"/);
    expect(refused.html).toMatch(/action="\/interaction\/[^"]+\/abort"/);
    expect(refused.html).toContain('to sign in to App');
  });

  it('a security key enrolled as the required second factor, then used as one', async () => {
    const key = new SoftAuthenticator({ backupEligible: false, attachment: 'cross-platform', userVerification: false });
    const browser = new Browser();
    const { auth, first } = await begin('strict', browser);
    const enrol = await password(browser, await readPage(first), 'key@example.test');
    const registered = await passkeyRegistration(browser, enrol, key, issuers.strict);
    expect(registered.status, JSON.stringify(registered.body)).toBe(200);
    const codesPage = await readPage(await browser.follow(new URL(registered.body.redirect, issuers.strict), {}, REDIRECT));
    expect(codesPage.html).toContain('lk-codes');
    const claims = await land('strict', browser, auth, await submit(browser, codesPage, '/continue', {}, REDIRECT));
    expect(claims.amr).toEqual(expect.arrayContaining(['pwd', 'hwk', 'mfa']));

    const b2 = new Browser();
    const next = await begin('strict', b2);
    const mfa = await password(b2, await readPage(next.first), 'key@example.test');
    expect(mfa.html).toContain('lk-passkey-button');
    const result = await passkeyAssertion(b2, mfa, key, 'second-factor', issuers.strict);
    expect(result.status, JSON.stringify(result.body)).toBe(200);
    const claims2 = await land('strict', b2, next.auth, await b2.follow(new URL(result.body.redirect, issuers.strict), {}, REDIRECT));
    expect(claims2.amr).toEqual(expect.arrayContaining(['pwd', 'hwk', 'mfa']));
    // a security key (not discoverable) cannot sign anyone in on its own
    const b3 = new Browser();
    const alone = await begin('strict', b3);
    const solo = await passkeyAssertion(b3, await readPage(alone.first), key, 'button', issuers.strict);
    expect(solo.status).toBe(400);
  });

  it('a passkey-only user who lost every device signs in with a recovery code and is led to a new passkey', async () => {
    const s = server.services;
    const lost = (await s.users.findByEmail('default', 'lost@example.test'))!;
    expect(lost.passwordHash).toBeNull();
    const old = new SoftAuthenticator();
    const rp = { rpId: 'localhost', origins: [server.issuer], name: 'Latchkey' };
    const realm = await s.realms.get('default');
    const options = await s.passkeys.registrationOptions({ realmId: 'default', settings: realm.settings, rp, user: { id: lost.id, email: lost.email, name: null }, boundTo: 'test:setup', kind: 'passkey' });
    await s.passkeys.verifyRegistration({ realmId: 'default', settings: realm.settings, rp, user: { id: lost.id, email: lost.email, name: null }, boundTo: 'test:setup', kind: 'passkey', response: await old.createCredential(options, server.issuer) });
    const [code] = await s.recovery.generate('default', lost.id);

    const browser = new Browser();
    const { auth, first } = await begin('default', browser);
    const passkeyPage = await readPage(await submit(browser, await readPage(first), '/identify', { email: 'lost@example.test' }, REDIRECT));
    expect(passkeyPage.html).not.toContain('name="password"');
    expect(passkeyPage.html).not.toContain('method=password'); // no password to fall back to
    const recoveryPage = await readPage(await browser.follow(new URL(`/interaction/${passkeyPage.uid}?method=recovery`, server.issuer), {}, REDIRECT));
    const offer = await readPage(await submit(browser, recoveryPage, '/recovery', { code: code! }, REDIRECT));
    expect(offer.html).toContain('/offer/skip');
    expect(offer.html).not.toContain('/offer/never');
    const fresh = new SoftAuthenticator();
    const registered = await passkeyRegistration(browser, offer, fresh, server.issuer);
    expect(registered.status).toBe(200);
    const done = await browser.follow(new URL(registered.body.redirect, server.issuer), {}, REDIRECT);
    const claims = decodeJwt((await exchangeCode(configs.default!, auth, done.url)).id_token!);
    expect(claims.amr).toEqual(['otp']);
    expect(await s.passkeys.credentials('default', lost.id)).toHaveLength(2);
  });

  it('step-up of a session that began without a password: amr tells the methods really used, never pwd', async () => {
    const s = server.services;
    await user('default', 'nopw@example.test', false);
    const u = (await s.users.findByEmail('default', 'nopw@example.test'))!;
    const key = new SoftAuthenticator();
    const rp = { rpId: 'localhost', origins: [server.issuer], name: 'Latchkey' };
    const realm = await s.realms.get('default');
    const who = { id: u.id, email: u.email, name: null };
    const options = await s.passkeys.registrationOptions({ realmId: 'default', settings: realm.settings, rp, user: who, boundTo: 'test:setup', kind: 'passkey' });
    await s.passkeys.verifyRegistration({ realmId: 'default', settings: realm.settings, rp, user: who, boundTo: 'test:setup', kind: 'passkey', response: await key.createCredential(options, server.issuer) });
    const [code] = await s.recovery.generate('default', u.id);

    // signed in with a recovery code (the passkey left at home), "Not now" on the passkey offer
    const browser = new Browser();
    const { auth, first } = await begin('default', browser);
    const passkeyPage = await readPage(await submit(browser, await readPage(first), '/identify', { email: u.email }, REDIRECT));
    const recoveryPage = await readPage(await browser.follow(new URL(`/interaction/${passkeyPage.uid}?method=recovery`, server.issuer), {}, REDIRECT));
    const single = await land('default', browser, auth, await submit(browser, recoveryPage, '/recovery', { code: code! }, REDIRECT));
    expect(single.amr).toEqual(['otp']);

    // the application asks for multi-factor: the live session is the first factor, the key the second
    const stepUp = await begin('default', browser, { acr_values: 'urn:latchkey:loa:2' });
    const mfa = await readPage(stepUp.first);
    expect(mfa.html).toContain('lk-passkey-button');
    const result = await passkeyAssertion(browser, mfa, key, 'second-factor');
    expect(result.status, JSON.stringify(result.body)).toBe(200);
    const claims = await land('default', browser, stepUp.auth, await browser.follow(new URL(result.body.redirect, server.issuer), {}, REDIRECT));
    expect(claims.sub).toBe(single.sub);
    expect(claims.acr).toBe('urn:latchkey:loa:2');
    expect(claims.amr).toEqual(expect.arrayContaining(['otp', 'mfa']));
    expect(claims.amr).not.toContain('pwd'); // this user has no password
  });

  it('step-up: acr_values asking for multi-factor forces the second factor inside a live session', async () => {
    const s = server.services;
    const stepUser = (await s.users.findByEmail('relaxed', 'step@example.test'))!;
    const enrolment = await s.totp.startEnrolment('relaxed', stepUser.id, stepUser.email, 'Relaxed');
    const enrolStep = stepOf(Date.now());
    expect(await s.totp.confirmEnrolment('relaxed', stepUser.id, codeForStep(enrolment.secret, enrolStep))).toBe(true);

    const browser = new Browser();
    const firstRun = await begin('relaxed', browser);
    const afterPassword = await password(browser, await readPage(firstRun.first), 'step@example.test');
    const single = await land('relaxed', browser, firstRun.auth, { res: new Response(afterPassword.html, { status: afterPassword.status }), url: afterPassword.url });
    expect(single.amr).toEqual(['pwd']);
    expect(single.acr).toBe('urn:latchkey:loa:1');

    const stepUp = await begin('relaxed', browser, { acr_values: 'urn:latchkey:loa:2' });
    const mfa = await readPage(stepUp.first);
    expect(mfa.html).not.toContain('name="password"');
    expect(mfa.html).toContain('name="code"');
    const claims = await land('relaxed', browser, stepUp.auth, await submit(browser, mfa, '/totp"', { code: codeForStep(enrolment.secret, enrolStep + 1) }, REDIRECT));
    expect(claims.acr).toBe('urn:latchkey:loa:2');
    expect(claims.amr).toEqual(expect.arrayContaining(['pwd', 'otp', 'mfa'])); // the session's password, then the code
    expect(claims.sub).toBe(single.sub);

    // max_age=0: the live session is not enough, the user signs in again
    const again = await begin('relaxed', browser, { max_age: '0' });
    expect(again.first.url.href.startsWith(REDIRECT)).toBe(false);
    const singleFactor = await readPage(again.first);
    expect(singleFactor.html).toContain('name="password"');

    // a new sign-in asked for (prompt=login, max_age=0) along with multi-factor is not a step-up of the old
    // session: the password first, then the second factor, in the same interaction
    expect((await land('relaxed', browser, again.auth, await submit(browser, singleFactor, '/login', { email: 'step@example.test', password: PASSWORD }, REDIRECT))).amr).toEqual(['pwd']);
    // (the second factor below is a recovery code: the authenticator's next codes are minutes away)
    const codes = await s.recovery.generate('relaxed', stepUser.id);
    for (const [round, params] of ([{ prompt: 'login' }, { max_age: '0' }] as Array<Record<string, string>>).entries()) {
      const fresh = await begin('relaxed', browser, { ...params, acr_values: 'urn:latchkey:loa:2' });
      const pw = await readPage(fresh.first);
      expect(pw.html, JSON.stringify(params)).toContain('name="password"');
      expect(pw.html, JSON.stringify(params)).not.toContain('/totp"');
      const second = await readPage(await submit(browser, pw, '/login', { email: 'step@example.test', password: PASSWORD }, REDIRECT));
      expect(second.html, JSON.stringify(params)).toContain('/totp"');
      expect(second.uid, 'the second factor is asked within the same sign-in').toBe(pw.uid);
      const renewed = await land('relaxed', browser, fresh.auth, await submit(browser, second, '/recovery', { code: codes[round]! }, REDIRECT));
      expect(renewed.acr).toBe('urn:latchkey:loa:2');
      expect(renewed.amr).toEqual(expect.arrayContaining(['pwd', 'otp', 'mfa']));
      // and back to a single-factor session for the next round
      const plain = await begin('relaxed', browser, { prompt: 'login' });
      await land('relaxed', browser, plain.auth, await submit(browser, await readPage(plain.first), '/login', { email: 'step@example.test', password: PASSWORD }, REDIRECT));
    }
  });
  it('a recovery code is never the only factor of an account with a password: the passkey step offers none, and one posted anyway is refused', async () => {
    const s = server.services;
    await user('strict', 'both@example.test');
    const u = (await s.users.findByEmail('strict', 'both@example.test'))!;
    const enrolment = await s.totp.startEnrolment('strict', u.id, u.email, 'Strict');
    expect(await s.totp.confirmEnrolment('strict', u.id, codeForStep(enrolment.secret, stepOf(Date.now())))).toBe(true);
    const [code] = await s.recovery.generate('strict', u.id);
    const realm = await s.realms.get('strict');
    const host = new URL(issuers.strict!).hostname;
    const rp = { rpId: host, origins: [new URL(issuers.strict!).origin], name: 'Strict' };
    const who = { id: u.id, email: u.email, name: null };
    const options = await s.passkeys.registrationOptions({ realmId: 'strict', settings: realm.settings, rp, user: who, boundTo: 'test:setup', kind: 'passkey' });
    await s.passkeys.verifyRegistration({ realmId: 'strict', settings: realm.settings, rp, user: who, boundTo: 'test:setup', kind: 'passkey', response: await new SoftAuthenticator().createCredential(options, issuers.strict!) });

    // someone holding the recovery codes (not the password, not the passkey)
    const browser = new Browser();
    const { first } = await begin('strict', browser);
    const passkeyPage = await readPage(await submit(browser, await readPage(first), '/identify', { email: u.email }, REDIRECT));
    expect(passkeyPage.html).toContain('method=password');
    expect(passkeyPage.html).not.toContain('method=recovery');
    const recoveryPage = await readPage(await browser.follow(new URL(`/interaction/${passkeyPage.uid}?method=recovery`, issuers.strict), {}, REDIRECT));
    const form = /action="([^"]*\/recovery)"/.exec(recoveryPage.html)?.[1] ?? `/interaction/${passkeyPage.uid}/recovery`;
    const posted = await browser.follow(new URL(form, issuers.strict), { form: { csrf: passkeyPage.csrf, code: code! } }, REDIRECT);
    expect(posted.url.href.startsWith(REDIRECT), posted.url.href).toBe(false);
    const page = await readPage(posted);
    expect(page.status).toBe(400);
    expect(page.html).not.toContain('lk-passkey-create');
    expect(await s.recovery.remaining('strict', u.id)).toBe(10); // the code was not used up

    // with the password, the same code is the second factor
    const b2 = new Browser();
    const second = await begin('strict', b2);
    const step = await readPage(await submit(b2, await readPage(second.first), '/identify', { email: u.email }, REDIRECT));
    const pw = await readPage(await b2.follow(new URL(`/interaction/${step.uid}?method=password`, issuers.strict), {}, REDIRECT));
    const mfa = await readPage(await submit(b2, pw, '/login', { email: u.email, password: PASSWORD }, REDIRECT));
    const claims = await land('strict', b2, second.auth, await submit(b2, mfa, '/recovery', { code: code! }, REDIRECT));
    expect(claims.amr).toEqual(expect.arrayContaining(['pwd', 'otp', 'mfa']));
  });
});
