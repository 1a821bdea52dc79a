import { decodeJwt } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SoftAuthenticator } from '../helpers/authenticator.js';
import { authorizationRequest, discover, exchangeCode, PASSWORD } from '../helpers/flows.js';
import { Browser } from '../helpers/http.js';
import { passkeyAssertion, passkeyRegistration, postJson, readPage, submit, type SignInPage } from '../helpers/passkey-flows.js';
import { startTestServer, type TestServer } from '../helpers/server.js';
import type * as oidc from 'openid-client';

const REDIRECT = 'http://app.example.test/cb';

describe('passkey sign-in over HTTP with a software authenticator', () => {
  let server: TestServer;
  let config: oidc.Configuration;
  const authenticator = new SoftAuthenticator();
  const email = 'grace@example.test';

  beforeAll(async () => {
    server = await startTestServer();
    const client = await server.cli(['client', 'create', '--realm', 'default', '--name', 'App', '--redirect-uri', REDIRECT, '--first-party']);
    expect(client.code, client.stderr).toBe(0);
    config = await discover(server.issuer, client.json.client_id, { client_secret: client.json.client_secret });
    expect((await server.cli(['user', 'create', '--realm', 'default', '--email', email, '--password-stdin'], PASSWORD)).code).toBe(0);
  });
  afterAll(async () => server?.close());

  async function start(browser: Browser, params: Record<string, string> = {}) {
    const auth = await authorizationRequest(config, REDIRECT, params);
    const first = await browser.follow(auth.url, {}, REDIRECT);
    return { auth, page: await readPage(first) };
  }

  async function complete(browser: Browser, auth: Awaited<ReturnType<typeof start>>['auth'], redirect: string) {
    const done = await browser.follow(new URL(redirect, server.issuer), {}, REDIRECT);
    expect(done.url.href.startsWith(REDIRECT), done.url.href).toBe(true);
    return exchangeCode(config, auth, done.url);
  }

  it('offers a passkey after a password sign-in and enrols it', async () => {
    const browser = new Browser();
    const { auth, page } = await start(browser);
    expect(page.html).toContain('autocomplete="username webauthn"');
    const passwordPage = await readPage(await submit(browser, page, '/identify', { email }, REDIRECT));
    expect(passwordPage.html).toContain('name="password"');
    const offer = await readPage(await submit(browser, passwordPage, '/login', { email, password: PASSWORD }, REDIRECT));
    expect(offer.status).toBe(200);
    expect(offer.html).toContain('/offer/skip');
    const registered = await passkeyRegistration(browser, offer, authenticator, server.issuer, 'Work laptop');
    expect(registered.status, JSON.stringify(registered.body)).toBe(200);
    // the passkey is now asked for after the password: recovery codes come first, shown once, so that
    // losing the device does not lock the account out
    expect(registered.body.redirect).toBe(`/interaction/${offer.uid}`);
    const codesPage = await readPage(await browser.follow(new URL(registered.body.redirect, server.issuer), {}, REDIRECT));
    expect(codesPage.html).toContain('Save your recovery codes');
    const user = (await server.services.users.findByEmail('default', email))!;
    expect(await server.services.recovery.remaining('default', user.id)).toBe(10);
    const done = await submit(browser, codesPage, '/continue', {}, REDIRECT);
    expect(done.url.href.startsWith(REDIRECT), done.url.href).toBe(true);
    const tokens = await exchangeCode(config, auth, done.url);
    const claims = decodeJwt(tokens.id_token!);
    expect(claims.amr).toEqual(['pwd']);
    const rows = await server.services.db('webauthn_credentials').where({ name: 'Work laptop' });
    expect(rows).toHaveLength(1);
    expect(rows[0].rp_id).toBe('localhost');
  });

  for (const mode of ['button', 'conditional'] as const) {
    it(`signs in usernameless with the passkey (${mode === 'button' ? '"Sign in with a passkey" button' : 'autofill / conditional UI'})`, async () => {
      const browser = new Browser();
      const { auth, page } = await start(browser);
      const result = await passkeyAssertion(browser, page, authenticator, mode);
      expect(result.status, JSON.stringify(result.body)).toBe(200);
      const tokens = await complete(browser, auth, result.body.redirect);
      const claims = decodeJwt(tokens.id_token!);
      expect(claims.email).toBe(email);
      expect(claims.amr).toEqual(expect.arrayContaining(['swk', 'user', 'mfa']));
      expect(claims.acr).toBe('urn:latchkey:loa:2');
    });
  }

  it('identifier-first: a user with a passkey is offered it before any password', async () => {
    const browser = new Browser();
    const { auth, page } = await start(browser);
    const next = await readPage(await submit(browser, page, '/identify', { email }, REDIRECT));
    expect(next.html).toContain('lk-passkey-button');
    expect(next.html).not.toContain('name="password"');
    expect(next.html).toContain('method=password'); // they also have a password: offered as the other way
    const options = await postJson(browser, next, '/passkey/options', { mode: 'identified' });
    expect(options.body.allowCredentials).toHaveLength(1);
    const result = await passkeyAssertion(browser, next, authenticator, 'identified');
    expect(result.status).toBe(200);
    await complete(browser, auth, result.body.redirect);
  });

  it('the passkey options of the password step answer alike for an account without a passkey and an unknown email (no enumeration)', async () => {
    expect((await server.cli(['user', 'create', '--realm', 'default', '--email', 'ada@example.test', '--password-stdin'], PASSWORD)).code).toBe(0);
    const answers: Array<{ status: number; allow: unknown }> = [];
    for (const who of ['ada@example.test', 'nobody@example.test']) {
      const browser = new Browser();
      const { page } = await start(browser);
      const passwordPage = await readPage(await submit(browser, page, '/identify', { email: who }, REDIRECT));
      expect(passwordPage.html).toContain('name="password"'); // the same step for both
      const options = await postJson(browser, passwordPage, '/passkey/options', { mode: 'identified' });
      answers.push({ status: options.status, allow: options.body.allowCredentials ?? options.body.error });
    }
    expect(answers[0]).toEqual(answers[1]);
    expect(answers[0]!.status).toBe(200);
  });

  it('refuses a replayed assertion and a reused challenge', async () => {
    const first = new Browser();
    const { page } = await start(first);
    const ok = await passkeyAssertion(first, page, authenticator, 'button');
    expect(ok.status).toBe(200);
    // the same response again, in the same sign-in: that sign-in is complete (resumed within the verify
    // request) and its interaction gone
    const again = await postJson(first, page, '/passkey/verify', { response: ok.assertion });
    expect(again.status).toBe(400);
    expect(again.body.error).toBe('interaction_expired');
    // a sign-in the browser resumes itself (form_post) keeps its interaction until then: its challenge refuses the replay
    const formPost = new Browser();
    const { page: formPostPage } = await start(formPost, { response_mode: 'form_post' });
    const verified = await passkeyAssertion(formPost, formPostPage, authenticator, 'button');
    expect(verified.status).toBe(200);
    expect(new URL(verified.body.redirect, server.issuer).pathname).toBe(`/auth/${formPostPage.uid}`);
    const replayed = await postJson(formPost, formPostPage, '/passkey/verify', { response: verified.assertion });
    expect(replayed.status).toBe(400);
    expect(replayed.body.error).toBe('challenge_invalid');
    // and in another sign-in, which has challenges of its own
    const other = new Browser();
    const { page: otherPage } = await start(other);
    await postJson(other, otherPage, '/passkey/options', { mode: 'button' });
    const replay = await postJson(other, otherPage, '/passkey/verify', { response: ok.assertion });
    expect(replay.status).toBe(400);
    expect(replay.body.error).toBe('challenge_invalid');
  });

  it('refuses an expired challenge', async () => {
    const browser = new Browser();
    const { page } = await start(browser);
    const options = await postJson(browser, page, '/passkey/options', { mode: 'button' });
    await server.services.db('webauthn_challenges').where({ challenge: options.body.challenge }).update({ expires_at: Date.now() - 1 });
    const assertion = await authenticator.getAssertion(options.body, server.issuer);
    const res = await postJson(browser, page, '/passkey/verify', { response: assertion });
    expect(res.status).toBe(400);
    expect(res.body.error).toBe('challenge_invalid');
  });

  it('a registration challenge cannot complete a sign-in', async () => {
    const browser = new Browser();
    const other = new SoftAuthenticator();
    const { page } = await start(browser);
    const passwordPage = await readPage(await submit(browser, page, '/identify', { email: 'new@example.test' }, REDIRECT));
    expect(passwordPage.html).toContain('name="password"');
    // a registration challenge issued to this very sign-in (as on the offer page) ...
    expect((await server.cli(['user', 'create', '--realm', 'default', '--email', 'reg@example.test', '--password-stdin'], PASSWORD)).code).toBe(0);
    const b2 = new Browser();
    const { page: p2 } = await start(b2);
    const pw2 = await readPage(await submit(b2, p2, '/identify', { email: 'reg@example.test' }, REDIRECT));
    const offer = await readPage(await submit(b2, pw2, '/login', { email: 'reg@example.test', password: PASSWORD }, REDIRECT));
    const reg = await postJson(b2, offer, '/passkey/register/options', {});
    expect(reg.status).toBe(200);
    await other.createCredential(reg.body, server.issuer);
    // ... answered as if it were a sign-in challenge
    const forged = await other.getAssertion({ rpId: 'localhost', challenge: reg.body.challenge, allowCredentials: [] } as any, server.issuer);
    const res = await postJson(b2, offer, '/passkey/verify', { response: forged });
    expect(res.status).toBe(400);
    expect(['challenge_invalid', 'wrong_step']).toContain(res.body.error);
    // and on a fresh sign-in page the registration challenge is unknown to the authentication ceremony
    const b3 = new Browser();
    const { page: p3 } = await start(b3);
    const res3 = await postJson(b3, p3, '/passkey/verify', { response: forged });
    expect(res3.status).toBe(400);
    expect(res3.body.error).toBe('challenge_invalid');
  });

  it('refuses a response made for another origin or another RP ID', async () => {
    for (const overrides of [{ origin: 'http://evil.localhost:1' }, { rpId: 'evil.localhost' }]) {
      const browser = new Browser();
      const { page } = await start(browser);
      const options = await postJson(browser, page, '/passkey/options', { mode: 'button' });
      const assertion = await authenticator.getAssertion(options.body, overrides.origin ?? server.issuer, overrides.rpId ? { rpId: overrides.rpId } : undefined);
      const res = await postJson(browser, page, '/passkey/verify', { response: assertion });
      expect(res.status, JSON.stringify(overrides)).toBe(400);
      expect(res.body.error).toBe('assertion_failed');
    }
  });

  it('refuses a counter that goes backwards and records a security event', async () => {
    const counting = new SoftAuthenticator({ backupEligible: false });
    expect((await server.cli(['user', 'create', '--realm', 'default', '--email', 'count@example.test', '--password-stdin'], PASSWORD)).code).toBe(0);
    const browser = new Browser();
    const { page } = await start(browser);
    const pw = await readPage(await submit(browser, page, '/identify', { email: 'count@example.test' }, REDIRECT));
    const offer = await readPage(await submit(browser, pw, '/login', { email: 'count@example.test', password: PASSWORD }, REDIRECT));
    expect((await passkeyRegistration(browser, offer, counting, server.issuer)).status).toBe(200);
    for (let i = 0; i < 2; i++) {
      const b = new Browser();
      const { page: p } = await start(b);
      expect((await passkeyAssertion(b, p, counting, 'button')).status).toBe(200);
    }
    const b = new Browser();
    const { page: p } = await start(b);
    const options = await postJson(b, p, '/passkey/options', { mode: 'button' });
    const cloned = await counting.getAssertion(options.body, server.issuer, { counter: 1 });
    const res = await postJson(b, p, '/passkey/verify', { response: cloned });
    expect(res.status).toBe(400);
    expect(res.body.error).toBe('counter_regression');
    const events = await server.services.db('security_events').where({ type: 'passkey.counter_regression' });
    expect(events.length).toBeGreaterThanOrEqual(1);
  });

  it('the passkey endpoints need the page\'s CSRF token', async () => {
    const browser = new Browser();
    const { page } = await start(browser);
    const res = await postJson(browser, page, '/passkey/options', { mode: 'button' }, 'forged');
    expect(res.status).toBe(403);
  });
});

export type { SignInPage };
