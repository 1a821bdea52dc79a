import * as oidc from 'openid-client';
import { jwtVerify } from 'jose';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { describeEachDatabase } from '../helpers/databases.js';
import { PASSWORD, remoteJwks, submitLogin } from '../helpers/flows.js';
import { Browser, testFetch } from '../helpers/http.js';
import { startTestServer, type TestServer } from '../helpers/server.js';

/** A desktop or mobile app (RFC 8252): private-use scheme and loopback redirect URIs. */
const APP_SCHEME = 'com.example.notes:/oauth2redirect';
const LOOPBACK = 'http://127.0.0.1/callback';
const EMAIL = 'nora@example.test';

describeEachDatabase('native apps (RFC 8252): public clients with private-use scheme and loopback redirects', (kind) => {
  let server: TestServer;
  let nativeId: string;
  let webId: string;
  let config: oidc.Configuration;

  const cli = (args: string[], stdin?: string) => server.cli(args, stdin);

  beforeAll(async () => {
    server = await startTestServer({ db: kind });
    const created = await cli(['client', 'create', '--realm', 'default', '--name', 'Notes for desktop', '--native', '--first-party', '--redirect-uri', APP_SCHEME, '--redirect-uri', LOOPBACK]);
    expect(created.code, created.stderr).toBe(0);
    nativeId = created.json.client_id;
    expect(created.json).toMatchObject({ application_type: 'native', public: true, token_endpoint_auth_method: 'none', redirect_uris: [APP_SCHEME, LOOPBACK] });
    expect(created.json).not.toHaveProperty('client_secret');
    const web = await cli(['client', 'create', '--realm', 'default', '--name', 'A web app on this machine', '--public', '--first-party', '--redirect-uri', LOOPBACK]);
    expect(web.code, web.stderr).toBe(0);
    expect(web.json.application_type).toBe('web');
    webId = web.json.client_id;
    const user = await cli(['user', 'create', '--realm', 'default', '--email', EMAIL, '--password-stdin'], `${PASSWORD}\n`);
    expect(user.code, user.stderr).toBe(0);
    config = await oidc.discovery(new URL(server.issuer), nativeId, { id_token_signed_response_alg: 'EdDSA' }, oidc.None(), {
      execute: [oidc.allowInsecureRequests],
      [oidc.customFetch]: testFetch,
    } as any);
  });
  afterAll(async () => server?.close());

  /** Signs in through the pages; returns the URL the browser hands to the app, and the PKCE verifier and state. */
  async function signIn(redirectUri: string) {
    const verifier = oidc.randomPKCECodeVerifier();
    const state = oidc.randomState();
    const url = oidc.buildAuthorizationUrl(config, { redirect_uri: redirectUri, scope: 'openid email', code_challenge: await oidc.calculatePKCECodeChallenge(verifier), code_challenge_method: 'S256', state });
    const browser = new Browser();
    const login = await browser.follow(url, {}, redirectUri);
    expect(login.res.status).toBe(200);
    const done = await submitLogin(browser, login, EMAIL, PASSWORD, redirectUri);
    return { callback: done.url, verifier, state };
  }

  it('hands the code to the app through its private-use scheme; the app redeems it with PKCE and no secret', async () => {
    const { callback, verifier, state } = await signIn(APP_SCHEME);
    expect(callback.protocol).toBe('com.example.notes:');
    expect(`${callback.protocol}${callback.pathname}`).toBe(APP_SCHEME);
    expect(callback.searchParams.get('iss')).toBe(server.issuer);
    const tokens = await oidc.authorizationCodeGrant(config, callback, { pkceCodeVerifier: verifier, expectedState: state });
    const { payload } = await jwtVerify(tokens.id_token!, remoteJwks(server.issuer), { issuer: server.issuer, audience: nativeId });
    expect(payload.email).toBe(EMAIL);
  });

  it('accepts the loopback redirect URI on whatever port the app listens on, and only that path and host', async () => {
    const onPort = 'http://127.0.0.1:49152/callback';
    const { callback, verifier, state } = await signIn(onPort);
    expect(callback.href.startsWith(`${onPort}?`)).toBe(true);
    const tokens = await oidc.authorizationCodeGrant(config, callback, { pkceCodeVerifier: verifier, expectedState: state });
    expect(tokens.access_token).toBeTruthy();

    // another path, another loopback name, https, another scheme path: refused before any sign-in, with no redirect
    for (const wrong of ['http://127.0.0.1:49152/other', 'http://localhost:49152/callback', 'https://127.0.0.1:49152/callback', 'com.example.notes:/elsewhere', 'com.example.Notes:/oauth2redirect']) {
      const url = oidc.buildAuthorizationUrl(config, { redirect_uri: wrong, scope: 'openid', code_challenge: await oidc.calculatePKCECodeChallenge(oidc.randomPKCECodeVerifier()), code_challenge_method: 'S256' });
      const res = await testFetch(url, { redirect: 'manual' });
      expect(res.status, wrong).toBe(400);
      expect(res.headers.get('location'), wrong).toBeNull();
      expect(await res.text()).toContain('redirect_uri');
    }
  });

  it('keeps exact matching for a web client registered with the same loopback URI', async () => {
    const webConfig = await oidc.discovery(new URL(server.issuer), webId, {}, oidc.None(), { execute: [oidc.allowInsecureRequests], [oidc.customFetch]: testFetch } as any);
    const challenge = await oidc.calculatePKCECodeChallenge(oidc.randomPKCECodeVerifier());
    const moved = await testFetch(oidc.buildAuthorizationUrl(webConfig, { redirect_uri: 'http://127.0.0.1:49152/callback', scope: 'openid', code_challenge: challenge, code_challenge_method: 'S256' }), { redirect: 'manual' });
    expect(moved.status).toBe(400);
    expect(moved.headers.get('location')).toBeNull();
    const exact = await testFetch(oidc.buildAuthorizationUrl(webConfig, { redirect_uri: LOOPBACK, scope: 'openid', code_challenge: challenge, code_challenge_method: 'S256' }), { redirect: 'manual' });
    // on to the sign-in (its page, or a redirect to it)
    expect([200, 303]).toContain(exact.status);
    if (exact.status === 303) expect(new URL(exact.headers.get('location')!, server.issuer).pathname).toMatch(/^\/interaction\//);
  });

  it('refuses what a native or a web client cannot register, naming what was wrong, and stores nothing', async () => {
    const cases: Array<{ args: string[]; message: string }> = [
      { args: ['--native', '--redirect-uri', 'http://app.example.test/cb'], message: 'only on the loopback interface' },
      { args: ['--native', '--redirect-uri', 'notes:/cb'], message: 'reverse domain name' },
      { args: ['--native', '--redirect-uri', 'javascript:alert(1)'], message: 'forbidden scheme' },
      { args: ['--native', '--auth-method', 'client_secret_basic', '--redirect-uri', APP_SCHEME], message: 'drop --auth-method' },
      { args: ['--redirect-uri', APP_SCHEME], message: 'needs a native client (--native)' },
    ];
    const before = await cli(['client', 'list', '--realm', 'default']);
    for (const c of cases) {
      const r = await cli(['client', 'create', '--realm', 'default', '--name', 'Refused', ...c.args]);
      expect(r.code, c.args.join(' ')).not.toBe(0);
      expect(r.stdout).toBe('');
      expect(r.stderr, c.args.join(' ')).toContain(c.message);
    }
    const after = await cli(['client', 'list', '--realm', 'default']);
    expect(after.json.clients).toHaveLength(before.json.clients.length);
    const listed = after.json.clients.find((c: { client_id: string }) => c.client_id === nativeId);
    expect(listed).toMatchObject({ application_type: 'native', public: true });
  });
});
