import { createHash, randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { describeEachDatabase } from '../helpers/databases.js';
import { Browser, parseForm, testFetch } from '../helpers/http.js';
import { PASSWORD, submitLogin } from '../helpers/flows.js';
import { startTestServer, type TestServer } from '../helpers/server.js';

const REDIRECT = 'http://app.example.test/callback';
const EMAIL = 'grace@example.test';

interface Client {
  id: string;
  secret?: string;
}

const b64url = (buf: Buffer) => buf.toString('base64url');
const newVerifier = () => b64url(randomBytes(32));
const challengeOf = (verifier: string) => b64url(createHash('sha256').update(verifier).digest());

describeEachDatabase('bad input is refused with a clear OAuth error', (kind) => {
  let server: TestServer;
  let confidential: Client;
  let other: Client;
  let pub: Client;

  beforeAll(async () => {
    server = await startTestServer({ db: kind });
    const { clients, users } = server.services;
    const make = async (name: string, isPublic = false): Promise<Client> => {
      const c = await clients.create({ realmId: 'default', name, redirectUris: [REDIRECT], public: isPublic, firstParty: true });
      return { id: c.client_id, secret: c.client_secret };
    };
    confidential = await make('Confidential App');
    other = await make('Other App');
    pub = await make('Public App', true);
    await users.create({ realmId: 'default', email: EMAIL, name: 'Grace Hopper', password: PASSWORD });
  });
  afterAll(async () => server?.close());

  const authUrl = (params: Record<string, string>) => `${server.issuer}/auth?${new URLSearchParams(params).toString()}`;

  async function payloadCount(): Promise<number> {
    const [row] = await server.services.db('oidc_payloads').count({ n: '*' });
    return Number((row as { n: number | string }).n);
  }

  const basic = (c: Client, secret = c.secret!) =>
    `Basic ${Buffer.from(`${encodeURIComponent(c.id)}:${encodeURIComponent(secret)}`).toString('base64')}`;

  async function tokenRequest(body: Record<string, string>, client?: Client, secret?: string) {
    const headers: Record<string, string> = { 'content-type': 'application/x-www-form-urlencoded' };
    if (client?.secret) headers.authorization = basic(client, secret);
    else if (client) body = { ...body, client_id: client.id };
    const res = await testFetch(`${server.issuer}/token`, { method: 'POST', headers, body: new URLSearchParams(body).toString() });
    expect(res.headers.get('content-type')).toContain('application/json');
    return { status: res.status, json: (await res.json()) as Record<string, string> };
  }

  /** The request ends on our HTML error page: 400, no Location, nothing stored. */
  async function expectErrorPage(url: string, code: string) {
    const before = await payloadCount();
    const res = await testFetch(url, { redirect: 'manual' });
    expect(res.status).toBe(400);
    expect(res.headers.get('location')).toBeNull();
    expect(res.headers.get('content-type')).toContain('text/html');
    const html = await res.text();
    expect(html).toContain('This sign-in request cannot continue');
    expect(html).toContain(code);
    expect(html).not.toMatch(/http-equiv="refresh"/i);
    expect(await payloadCount()).toBe(before);
  }

  /** The request is sent back to the registered redirect URI, with an error and no code. */
  async function expectErrorRedirect(url: string, code: string, descriptionPattern?: RegExp) {
    const before = await payloadCount();
    const res = await testFetch(url, { redirect: 'manual' });
    expect(res.status).toBeGreaterThanOrEqual(300);
    expect(res.status).toBeLessThan(400);
    const location = new URL(res.headers.get('location')!);
    expect(`${location.origin}${location.pathname}`).toBe(REDIRECT);
    expect(location.searchParams.get('error')).toBe(code);
    if (descriptionPattern) expect(location.searchParams.get('error_description')).toMatch(descriptionPattern);
    expect(location.searchParams.get('code')).toBeNull();
    expect(location.searchParams.get('iss')).toBe(server.issuer);
    expect(await payloadCount()).toBe(before);
  }

  /** Runs the authorization request through the sign-in pages (email, password, "Not now" on the passkey offer); returns the callback URL with the code. */
  async function authorize(client: Client, params: Record<string, string> = {}, browser = new Browser()): Promise<URL> {
    const start = await browser.follow(
      authUrl({ client_id: client.id, response_type: 'code', redirect_uri: REDIRECT, scope: 'openid offline_access', state: 'st-1', ...params }),
      {},
      REDIRECT,
    );
    if (start.url.href.startsWith(REDIRECT)) return start.url;
    const done = await submitLogin(browser, start, EMAIL, PASSWORD, REDIRECT);
    expect(done.url.href.startsWith(REDIRECT), `ended at ${done.url.href}`).toBe(true);
    expect(done.url.searchParams.get('code')).toBeTruthy();
    return done.url;
  }

  describe('the sign-in forms', () => {
    /** A fresh authorization request stopped on the email step: its URL and the email form. */
    async function emailStep() {
      const browser = new Browser();
      const start = await browser.follow(
        authUrl({ client_id: confidential.id, response_type: 'code', redirect_uri: REDIRECT, scope: 'openid', state: 'st-2' }),
        {},
        REDIRECT,
      );
      expect(start.res.status).toBe(200);
      const html = await start.res.text();
      expect(html).toContain('/identify"');
      const form = parseForm(html, '/identify"');
      return { browser, url: start.url, action: new URL(form.action, start.url), fields: form.fields };
    }

    it('a malformed email on the email step is 400 with a clear message, no redirect and nothing stored', async () => {
      const step = await emailStep();
      for (const email of ['grace', 'grace@', 'grace@example', 'gr ace@example.test', '']) {
        const before = await payloadCount();
        const res = await step.browser.request(step.action, { form: { ...step.fields, email } });
        expect(res.status, JSON.stringify(email)).toBe(400);
        expect(res.headers.get('location')).toBeNull();
        expect(res.headers.get('content-type')).toContain('text/html');
        const html = await res.text();
        expect(html).toContain('Enter a valid email address, like name@example.com.');
        expect(html).not.toContain('name="password"');
        expect(await payloadCount()).toBe(before);
      }
      // the same sign-in still completes with a well-formed email
      const page = await step.browser.follow(step.url, {}, REDIRECT);
      const done = await submitLogin(step.browser, page, EMAIL, PASSWORD, REDIRECT);
      expect(done.url.searchParams.get('code')).toBeTruthy();
    });

    it('a malformed email form body is a clear 4xx: a repeated field, the wrong content type, an oversized body', async () => {
      const step = await emailStep();
      const post = (contentType: string, body: string) =>
        testFetch(step.action, { method: 'POST', headers: { 'content-type': contentType, cookie: step.browser.cookieHeader(step.action) }, body, redirect: 'manual' });
      const csrf = encodeURIComponent(step.fields.csrf!);
      for (const [res, status, code] of [
        [await post('application/x-www-form-urlencoded', `csrf=${csrf}&email=grace%40example.test&email=other%40example.test`), 400, 'invalid_request'],
        [await post('application/json', JSON.stringify({ csrf: step.fields.csrf, email: EMAIL })), 415, 'unsupported_media_type'],
        [await post('application/x-www-form-urlencoded', `csrf=${csrf}&email=${'a'.repeat(20 * 1024)}%40example.test`), 413, 'request_too_large'],
      ] as const) {
        expect(res.status).toBe(status);
        expect(res.headers.get('location')).toBeNull();
        expect(((await res.json()) as any).error).toBe(code);
      }
      // none of them moved the sign-in on: the interaction still shows the email step
      const page = await step.browser.follow(step.url, {}, REDIRECT);
      const html = await page.res.text();
      expect(html).toContain('/identify"');
      expect(html).not.toContain('name="password"');
    });
  });

  describe('redirect_uri', () => {
    const base = () => ({ client_id: confidential.id, response_type: 'code', scope: 'openid', state: 'xyz' });

    it('an unregistered redirect_uri gets the error page, not a redirect', async () => {
      await expectErrorPage(authUrl({ ...base(), redirect_uri: 'https://evil.example.test/steal' }), 'invalid_redirect_uri');
    });

    for (const variant of [
      'http://app.example.test/Callback',
      'http://app.example.test/callback?x=1',
      'http://app.example.test/callback/..;/evil',
      'http://user@app.example.test/callback',
      'http://app.example.test/callback/',
      'http://APP.example.test/callback',
      'http://app.example.test:80/callback',
      'https://app.example.test/callback',
      'http://app.example.test/callback#frag',
    ]) {
      it(`an altered variant of the registered URI is refused: ${variant}`, async () => {
        const res = await testFetch(authUrl({ ...base(), redirect_uri: variant }), { redirect: 'manual' });
        expect(res.headers.get('location')).toBeNull();
        expect(res.status).toBe(400);
        const html = await res.text();
        expect(html).toMatch(/invalid_redirect_uri|invalid_request/);
      });
    }

    it('the registered redirect_uri with an unknown client_id gets the error page', async () => {
      await expectErrorPage(authUrl({ ...base(), client_id: 'no-such-client', redirect_uri: REDIRECT }), 'invalid_client');
    });
  });

  describe('PKCE at the authorization endpoint', () => {
    it('a public client without code_challenge is refused (PKCE required)', async () => {
      await expectErrorRedirect(
        authUrl({ client_id: pub.id, response_type: 'code', redirect_uri: REDIRECT, scope: 'openid', state: 's' }),
        'invalid_request',
        /PKCE/,
      );
    });

    it('code_challenge_method=plain is refused', async () => {
      const verifier = newVerifier();
      await expectErrorRedirect(
        authUrl({
          client_id: pub.id,
          response_type: 'code',
          redirect_uri: REDIRECT,
          scope: 'openid',
          state: 's',
          code_challenge: verifier,
          code_challenge_method: 'plain',
        }),
        'invalid_request',
        /code_challenge_method/,
      );
    });
  });

  describe('token endpoint', () => {
    it('a wrong code_verifier is invalid_grant', async () => {
      const verifier = newVerifier();
      const cb = await authorize(pub, { code_challenge: challengeOf(verifier), code_challenge_method: 'S256' });
      const bad = await tokenRequest({ grant_type: 'authorization_code', code: cb.searchParams.get('code')!, redirect_uri: REDIRECT, code_verifier: newVerifier() }, pub);
      expect(bad.status).toBe(400);
      expect(bad.json.error).toBe('invalid_grant');
      // a missing verifier is no better
      const cb2 = await authorize(pub, { code_challenge: challengeOf(verifier), code_challenge_method: 'S256' });
      const none = await tokenRequest({ grant_type: 'authorization_code', code: cb2.searchParams.get('code')!, redirect_uri: REDIRECT }, pub);
      expect(none.status).toBe(400);
      expect(none.json.error).toBe('invalid_grant');
    });

    it('the right code_verifier works (control)', async () => {
      const verifier = newVerifier();
      const cb = await authorize(pub, { code_challenge: challengeOf(verifier), code_challenge_method: 'S256' });
      const ok = await tokenRequest({ grant_type: 'authorization_code', code: cb.searchParams.get('code')!, redirect_uri: REDIRECT, code_verifier: verifier }, pub);
      expect(ok.status, JSON.stringify(ok.json)).toBe(200);
      expect(ok.json.access_token).toBeTruthy();
    });

    it('a code_verifier for an authorization that had no challenge is refused', async () => {
      const cb = await authorize(confidential);
      const res = await tokenRequest({ grant_type: 'authorization_code', code: cb.searchParams.get('code')!, redirect_uri: REDIRECT, code_verifier: newVerifier() }, confidential);
      expect(res.status).toBe(400);
      expect(res.json.error).toBe('invalid_grant');
    });

    it('a code used twice is invalid_grant, and the tokens of its first use are revoked', async () => {
      const cb = await authorize(confidential);
      const code = cb.searchParams.get('code')!;
      const first = await tokenRequest({ grant_type: 'authorization_code', code, redirect_uri: REDIRECT }, confidential);
      expect(first.status, JSON.stringify(first.json)).toBe(200);
      const userinfo = (token: string) => testFetch(`${server.issuer}/me`, { headers: { authorization: `Bearer ${token}` } });
      expect((await userinfo(first.json.access_token!)).status).toBe(200);

      const second = await tokenRequest({ grant_type: 'authorization_code', code, redirect_uri: REDIRECT }, confidential);
      expect(second.status).toBe(400);
      expect(second.json.error).toBe('invalid_grant');

      const after = await userinfo(first.json.access_token!);
      expect(after.status).toBe(401);
      expect(((await after.json()) as any).error).toBe('invalid_token');
      const refresh = await tokenRequest({ grant_type: 'refresh_token', refresh_token: first.json.refresh_token! }, confidential);
      expect(refresh.status).toBe(400);
      expect(refresh.json.error).toBe('invalid_grant');
    });

    it('a refresh token presented by another client is invalid_grant', async () => {
      const cb = await authorize(confidential);
      const tokens = await tokenRequest({ grant_type: 'authorization_code', code: cb.searchParams.get('code')!, redirect_uri: REDIRECT }, confidential);
      expect(tokens.status, JSON.stringify(tokens.json)).toBe(200);
      expect(tokens.json.refresh_token).toBeTruthy();
      const before = await payloadCount();
      const stolen = await tokenRequest({ grant_type: 'refresh_token', refresh_token: tokens.json.refresh_token! }, other);
      expect(stolen.status).toBe(400);
      expect(stolen.json.error).toBe('invalid_grant');
      expect(await payloadCount()).toBeLessThanOrEqual(before);
      // the same code is not redeemable by another client either
      const cb2 = await authorize(confidential);
      const wrongClient = await tokenRequest({ grant_type: 'authorization_code', code: cb2.searchParams.get('code')!, redirect_uri: REDIRECT }, other);
      expect(wrongClient.status).toBe(400);
      expect(wrongClient.json.error).toBe('invalid_grant');
    });

    it('an unknown client_id is invalid_client (401) at /token', async () => {
      const before = await payloadCount();
      const res = await tokenRequest({ grant_type: 'client_credentials' }, { id: 'no-such-client', secret: 'x'.repeat(43) });
      expect(res.status).toBe(401);
      expect(res.json.error).toBe('invalid_client');
      const pubStyle = await tokenRequest({ grant_type: 'authorization_code', code: 'abc', redirect_uri: REDIRECT }, { id: 'no-such-client' });
      expect(pubStyle.status).toBe(401);
      expect(pubStyle.json.error).toBe('invalid_client');
      expect(await payloadCount()).toBe(before);
    });

    it('a wrong client secret is invalid_client', async () => {
      const before = await payloadCount();
      const cb = await authorize(confidential);
      const afterAuth = await payloadCount();
      const res = await tokenRequest({ grant_type: 'authorization_code', code: cb.searchParams.get('code')!, redirect_uri: REDIRECT }, confidential, `${confidential.secret}x`);
      expect(res.status).toBe(401);
      expect(res.json.error).toBe('invalid_client');
      const empty = await tokenRequest({ grant_type: 'authorization_code', code: cb.searchParams.get('code')!, redirect_uri: REDIRECT }, confidential, 'short');
      expect(empty.status).toBe(401);
      expect(empty.json.error).toBe('invalid_client');
      expect(afterAuth).toBeGreaterThan(before);
      expect(await payloadCount()).toBe(afterAuth);
      // the code was not consumed by the failed attempts
      const ok = await tokenRequest({ grant_type: 'authorization_code', code: cb.searchParams.get('code')!, redirect_uri: REDIRECT }, confidential);
      expect(ok.status, JSON.stringify(ok.json)).toBe(200);
    });

    it('a malformed body is 400 invalid_request', async () => {
      const before = await payloadCount();
      const post = (contentType: string, body: string) =>
        testFetch(`${server.issuer}/token`, { method: 'POST', headers: { 'content-type': contentType, authorization: basic(confidential) }, body });
      for (const res of [
        await post('application/json', '{bad'),
        await post('application/json', '{"grant_type":"client_credentials"}'),
        await post('application/x-www-form-urlencoded', '%%%&&=&=%zz&grant_type'),
        await post('application/x-www-form-urlencoded', 'grant_type=authorization_code&grant_type=refresh_token'),
        await post('text/plain', 'grant_type=client_credentials'),
      ]) {
        expect(res.status).toBe(400);
        expect(res.headers.get('content-type')).toContain('application/json');
        expect(((await res.json()) as any).error).toBe('invalid_request');
      }
      expect(await payloadCount()).toBe(before);
    });

    it('an oversized body is 413 with a JSON error', async () => {
      const before = await payloadCount();
      const body = `grant_type=client_credentials&padding=${'a'.repeat(200 * 1024)}`;
      const res = await testFetch(`${server.issuer}/token`, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: basic(confidential) },
        body,
      });
      expect(res.status).toBe(413);
      expect(res.headers.get('content-type')).toContain('application/json');
      expect(((await res.json()) as any).error).toBe('request_too_large');
      expect(await payloadCount()).toBe(before);
    });

    it('an oversized chunked body (no Content-Length) gets a JSON 4xx, and the connection keeps working', async () => {
      const res = await testFetch(`${server.issuer}/token`, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: basic(confidential) },
        body: Readable.toWeb(Readable.from([Buffer.from('grant_type=client_credentials&padding='), Buffer.alloc(200 * 1024, 'a')])) as any,
        duplex: 'half',
        signal: AbortSignal.timeout(10_000),
      } as any);
      // node-oidc-provider stops reading at its own limit and answers invalid_request
      expect([400, 413]).toContain(res.status);
      expect(res.headers.get('content-type')).toContain('application/json');
      expect(['invalid_request', 'request_too_large']).toContain(((await res.json()) as any).error);
      // the half-read body must not wedge the keep-alive connection for the requests that follow
      for (let i = 0; i < 3; i++) {
        const next = await testFetch(`${server.issuer}/healthz`, { signal: AbortSignal.timeout(5_000) });
        expect(next.status).toBe(200);
      }
    });
  });

  describe('a NUL character (PostgreSQL stores no such text) is a clear 4xx or a miss, never a 500', () => {
    const NUL = '\u0000';

    it('in the sign-in: login_hint, tenant_id, connection_id, and the email posted to the email and password steps', async () => {
      for (const extra of [{ login_hint: `grace${NUL}@example.test` }, { tenant_id: `acme${NUL}` }, { connection_id: `corp${NUL}` }] as Array<Record<string, string>>) {
        const res = await new Browser().request(authUrl({ client_id: confidential.id, response_type: 'code', redirect_uri: REDIRECT, scope: 'openid', state: 's', ...extra }), { headers: { 'sec-fetch-dest': 'document' } });
        expect(res.status, JSON.stringify(extra)).toBeLessThan(500);
        expect(res.headers.get('content-type'), JSON.stringify(extra)).toContain('text/html');
      }
      const browser = new Browser();
      const start = await browser.follow(authUrl({ client_id: confidential.id, response_type: 'code', redirect_uri: REDIRECT, scope: 'openid', state: 's' }), {}, REDIRECT);
      const form = parseForm(await start.res.text(), '/identify"');
      const at = (path: string) => new URL(form.action.replace(/\/identify$/, path), start.url);
      const identify = await browser.request(at('/identify'), { form: { ...form.fields, email: `grace${NUL}@example.test` } });
      expect(identify.status).toBe(400);
      expect(await identify.text()).toContain('Enter a valid email address');
      const login = await browser.request(at('/login'), { form: { csrf: form.fields.csrf!, email: `grace${NUL}@example.test`, password: PASSWORD } });
      expect(login.status).toBe(400);
      expect(await login.text()).toContain('Enter a valid email address');
    });

    it('in a self-service sign-up: the name or email is refused with the form again, and no account is written', async () => {
      const issuer = `http://signup.localhost:${server.port}`;
      await server.services.realms.create({ id: 'signup', issuers: [issuer], settings: { signup: true } });
      const client = await server.services.clients.create({ realmId: 'signup', name: 'App', redirectUris: [REDIRECT], firstParty: true });
      const browser = new Browser();
      const query = new URLSearchParams({ client_id: client.client_id, response_type: 'code', redirect_uri: REDIRECT, scope: 'openid', state: 's' });
      const start = await browser.follow(`${issuer}/auth?${query}`, {}, REDIRECT);
      const identify = parseForm(await start.res.text(), '/identify"');
      const signupUrl = new URL(identify.action.replace(/\/identify$/, '/signup'), start.url);
      for (const fields of [{ email: 'nul-name@example.test', name: `Ada${NUL}` }, { email: `nul${NUL}@example.test`, name: 'Ada' }]) {
        const res = await browser.request(signupUrl, { form: { csrf: identify.fields.csrf!, ...fields, password: PASSWORD } });
        expect(res.status, JSON.stringify(fields)).toBe(400);
        expect(res.headers.get('content-type')).toContain('text/html');
        expect(await res.text()).toContain('Create your account');
      }
      expect(await server.services.users.findByEmail('signup', 'nul-name@example.test')).toBeUndefined();
      await expect(server.services.users.create({ realmId: 'signup', email: 'nul-name@example.test', name: `Ada${NUL}` })).rejects.toMatchObject({ code: 'invalid_input' });
    });

    it('at the provider endpoints: client_id, code, refresh token, introspection, revocation, logout', async () => {
      const auth = await testFetch(authUrl({ client_id: `x${NUL}`, response_type: 'code', redirect_uri: REDIRECT, scope: 'openid' }), { redirect: 'manual' });
      expect(auth.status).toBe(400);
      expect(await auth.text()).toContain('invalid_client');
      const code = await tokenRequest({ grant_type: 'authorization_code', code: `c${NUL}`, redirect_uri: REDIRECT }, confidential);
      expect(code.status).toBe(400);
      expect(code.json.error).toBe('invalid_grant');
      const refresh = await tokenRequest({ grant_type: 'refresh_token', refresh_token: `r${NUL}` }, confidential);
      expect(refresh.status).toBe(400);
      expect(refresh.json.error).toBe('invalid_grant');
      const unknownClient = await tokenRequest({ grant_type: 'client_credentials', client_id: `x${NUL}`, client_secret: 'x' });
      expect(unknownClient.status).toBe(401);
      expect(unknownClient.json.error).toBe('invalid_client');
      const headers = { 'content-type': 'application/x-www-form-urlencoded', authorization: basic(confidential) };
      const introspection = await testFetch(`${server.issuer}/token/introspection`, { method: 'POST', headers, body: `token=t%00` });
      expect(introspection.status).toBe(200);
      expect(((await introspection.json()) as any).active).toBe(false);
      const revocation = await testFetch(`${server.issuer}/token/revocation`, { method: 'POST', headers, body: `token=t%00` });
      expect(revocation.status).toBe(200);
      const logout = await testFetch(`${server.issuer}/session/end?client_id=x%00`, { redirect: 'manual' });
      expect(logout.status).toBeLessThan(500);
    });
  });

  describe('client authentication at /auth', () => {
    it('an unknown client_id gets the error page and no redirect, even with a registered-looking redirect_uri', async () => {
      await expectErrorPage(
        authUrl({ client_id: 'no-such-client', response_type: 'code', redirect_uri: 'https://evil.example.test/cb', scope: 'openid', state: 's' }),
        'invalid_client',
      );
    });

    it('a missing client_id gets the error page', async () => {
      await expectErrorPage(authUrl({ response_type: 'code', redirect_uri: REDIRECT, scope: 'openid' }), 'invalid_request');
    });
  });
});
