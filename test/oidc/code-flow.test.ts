import * as oidc from 'openid-client';
import { createRemoteJWKSet, customFetch, jwtVerify } from 'jose';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { describeEachDatabase } from '../helpers/databases.js';
import { submitLogin } from '../helpers/flows.js';
import { Browser, parseForm, testFetch } from '../helpers/http.js';
import { startTestServer, type TestServer } from '../helpers/server.js';

const REDIRECT = 'http://app.example.test/callback';
const PASSWORD = 'plum-orbit-cactus-velvet-91';

describeEachDatabase('authorization code + PKCE with openid-client', (kind) => {
  let server: TestServer;
  let clientId: string;
  let clientSecret: string;
  let config: oidc.Configuration;

  beforeAll(async () => {
    server = await startTestServer({ db: kind });
    const created = await server.cli([
      'client', 'create', '--realm', 'default', '--name', 'Demo App', '--redirect-uri', REDIRECT,
      '--post-logout-redirect-uri', 'http://app.example.test/bye', '--first-party',
    ]);
    expect(created.code, created.stderr).toBe(0);
    clientId = created.json.client_id;
    clientSecret = created.json.client_secret;
    const user = await server.cli(['user', 'create', '--realm', 'default', '--email', 'ada@example.test', '--name', 'Ada Lovelace', '--password-stdin'], `${PASSWORD}\n`);
    expect(user.code, user.stderr).toBe(0);
    config = await oidc.discovery(new URL(server.issuer), clientId, { client_secret: clientSecret, id_token_signed_response_alg: 'EdDSA' }, undefined, {
      execute: [oidc.allowInsecureRequests],
      [oidc.customFetch]: testFetch,
    } as any);
  });
  afterAll(async () => server?.close());

  async function signIn(browser: Browser, scope = 'openid email profile offline_access') {
    const verifier = oidc.randomPKCECodeVerifier();
    const state = oidc.randomState();
    const url = oidc.buildAuthorizationUrl(config, {
      redirect_uri: REDIRECT,
      scope,
      code_challenge: await oidc.calculatePKCECodeChallenge(verifier),
      code_challenge_method: 'S256',
      state,
    });
    const login = await browser.follow(url, {}, REDIRECT);
    expect(login.res.status).toBe(200);
    const done = await submitLogin(browser, login, 'ada@example.test', PASSWORD, REDIRECT);
    expect(done.url.href.startsWith(REDIRECT)).toBe(true);
    expect(done.url.searchParams.get('iss')).toBe(server.issuer); // RFC 9207
    const tokens = await oidc.authorizationCodeGrant(config, done.url, { pkceCodeVerifier: verifier, expectedState: state });
    return tokens;
  }

  it('signs in through the HTML form, verifies tokens against the JWKS, reads userinfo, rotates refresh tokens and logs out', async () => {
    const browser = new Browser();
    const tokens = await signIn(browser);
    const jwks = createRemoteJWKSet(new URL(`${server.issuer}/jwks`), { [customFetch]: testFetch } as any);
    const { payload, protectedHeader } = await jwtVerify(tokens.id_token!, jwks, { issuer: server.issuer, audience: clientId });
    expect(protectedHeader.alg).toBe('EdDSA');
    expect(payload.email).toBe('ada@example.test');
    expect(payload.name).toBe('Ada Lovelace');

    const info = await oidc.fetchUserInfo(config, tokens.access_token, payload.sub!);
    expect(info.email).toBe('ada@example.test');

    expect(tokens.refresh_token).toBeTruthy();
    const refreshed = await oidc.refreshTokenGrant(config, tokens.refresh_token!);
    expect(refreshed.refresh_token).toBeTruthy();
    expect(refreshed.refresh_token).not.toBe(tokens.refresh_token);
    // reuse of the rotated token fails and revokes the chain
    await expect(oidc.refreshTokenGrant(config, tokens.refresh_token!)).rejects.toMatchObject({ error: 'invalid_grant' });
    await expect(oidc.refreshTokenGrant(config, refreshed.refresh_token!)).rejects.toMatchObject({ error: 'invalid_grant' });

    const logoutUrl = oidc.buildEndSessionUrl(config, { id_token_hint: tokens.id_token!, post_logout_redirect_uri: 'http://app.example.test/bye' });
    const logoutPage = await browser.follow(logoutUrl);
    expect(logoutPage.res.status).toBe(200);
    const logoutForm = parseForm(await logoutPage.res.text(), 'session/end');
    const out = await browser.follow(new URL(logoutForm.action, logoutPage.url), { form: { ...logoutForm.fields, logout: 'yes' } }, 'http://app.example.test/bye');
    expect(out.url.href.startsWith('http://app.example.test/bye')).toBe(true);
  });

  it('a rotated refresh token keeps the end of life of the first token of its chain', async () => {
    const tokens = await signIn(new Browser());
    const first = await oidc.tokenIntrospection(config, tokens.refresh_token!);
    expect(first.active).toBe(true);
    expect(first.exp! - first.iat!).toBeGreaterThan(60);
    // long enough that a lifetime counted from the rotation would end at least 2 s later
    await new Promise((resolve) => setTimeout(resolve, 2500));
    const refreshed = await oidc.refreshTokenGrant(config, tokens.refresh_token!);
    const second = await oidc.tokenIntrospection(config, refreshed.refresh_token!);
    expect(second.active).toBe(true);
    expect(second.iat!).toBeGreaterThanOrEqual(first.iat! + 2);
    expect(Math.abs(second.exp! - first.exp!)).toBeLessThanOrEqual(1);
  });
});
