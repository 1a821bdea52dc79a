import * as oidc from 'openid-client';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { describeEachDatabase } from '../helpers/databases.js';
import { authorizationRequest, discover, PASSWORD, postForm, signIn, submitLogin } from '../helpers/flows.js';
import { Browser } from '../helpers/http.js';
import { startTestServer, type TestServer } from '../helpers/server.js';

const REDIRECT = 'http://app.example.test/callback';
const ATTEMPTS = 8;

// node-oidc-provider reads a code or refresh token, checks that it is unused, then marks it used: requests
// presenting the same one at the same moment must not all pass that check (RFC 6749 §4.1.2, §10.5; OAuth
// 2.0 Security BCP §4.14.2). Only one may get tokens; the others are a reuse, which revokes the grant.
describeEachDatabase('codes and refresh tokens are single-use under concurrent requests', (kind) => {
  let server: TestServer;
  let client: { id: string; secret: string };
  let config: oidc.Configuration;

  beforeAll(async () => {
    server = await startTestServer({ db: kind });
    const created = await server.cli(['client', 'create', '--realm', 'default', '--name', 'App', '--redirect-uri', REDIRECT, '--first-party']);
    expect(created.code, created.stderr).toBe(0);
    client = { id: created.json.client_id, secret: created.json.client_secret };
    const user = await server.cli(['user', 'create', '--realm', 'default', '--email', 'ada@example.test', '--password-stdin'], `${PASSWORD}\n`);
    expect(user.code, user.stderr).toBe(0);
    config = await discover(server.issuer, client.id, { client_secret: client.secret });
  });
  afterAll(async () => server?.close());

  const token = (form: Record<string, string>) => postForm(`${server.issuer}/token`, form, client);

  it('an authorization code sent several times at once yields tokens once, and the winner\'s refresh token is revoked', async () => {
    const browser = new Browser();
    const auth = await authorizationRequest(config, REDIRECT, { scope: 'openid offline_access' });
    const login = await browser.follow(auth.url, {}, REDIRECT);
    const done = await submitLogin(browser, login, 'ada@example.test', PASSWORD, REDIRECT);
    const code = done.url.searchParams.get('code')!;
    expect(code).toBeTruthy();
    const form = { grant_type: 'authorization_code', code, redirect_uri: REDIRECT, code_verifier: auth.verifier };
    const results = await Promise.all(Array.from({ length: ATTEMPTS }, () => token(form)));
    const won = results.filter((r) => r.status === 200);
    expect(won, JSON.stringify(results.map((r) => r.body))).toHaveLength(1);
    for (const r of results.filter((x) => x.status !== 200)) {
      expect(r.status).toBe(400);
      expect(r.body.error).toBe('invalid_grant');
    }
    // the code was used more than once: the grant is revoked, the tokens of its first use with it
    const refreshed = await token({ grant_type: 'refresh_token', refresh_token: won[0]!.body.refresh_token });
    expect(refreshed.status).toBe(400);
    expect(refreshed.body.error).toBe('invalid_grant');
  });

  it('a refresh token sent several times at once is rotated once; the reuse revokes the family', async () => {
    const tokens = await signIn(new Browser(), config, REDIRECT, 'ada@example.test', { scope: 'openid offline_access' });
    const form = { grant_type: 'refresh_token', refresh_token: tokens.refresh_token! };
    const results = await Promise.all(Array.from({ length: ATTEMPTS }, () => token(form)));
    const won = results.filter((r) => r.status === 200);
    expect(won, JSON.stringify(results.map((r) => r.body))).toHaveLength(1);
    for (const r of results.filter((x) => x.status !== 200)) expect(r.body.error).toBe('invalid_grant');
    const next = await token({ grant_type: 'refresh_token', refresh_token: won[0]!.body.refresh_token });
    expect(next.status).toBe(400);
    expect(next.body.error).toBe('invalid_grant');
  });

  it('one use at a time still rotates as before (control)', async () => {
    const tokens = await signIn(new Browser(), config, REDIRECT, 'ada@example.test', { scope: 'openid offline_access' });
    const first = await token({ grant_type: 'refresh_token', refresh_token: tokens.refresh_token! });
    expect(first.status).toBe(200);
    const second = await token({ grant_type: 'refresh_token', refresh_token: first.body.refresh_token });
    expect(second.status).toBe(200);
  });
});
