import { afterAll, beforeAll, expect, it } from 'vitest';
import { describeEachDatabase } from '../helpers/databases.js';
import { authorizationRequest, discover, exchangeCode, PASSWORD, signIn, submitLogin } from '../helpers/flows.js';
import { Browser } from '../helpers/http.js';
import { startTestServer, type TestServer } from '../helpers/server.js';

const REDIRECT = 'http://app.example.test/callback';

// A first-party client asking for offline_access gets `consent` added to its prompt (no page is shown);
// with prompt=login as well, the login step's result must carry through the consent step, or the
// provider asks for the login again and again.
describeEachDatabase('prompt=login with offline_access on a first-party client', (kind) => {
  let server: TestServer;
  let client: { id: string; secret: string };

  beforeAll(async () => {
    server = await startTestServer({ db: kind });
    const c = await server.services.clients.create({ realmId: 'default', name: 'web', redirectUris: [REDIRECT], firstParty: true, grants: ['authorization_code', 'refresh_token'] });
    client = { id: c.client_id, secret: c.client_secret! };
    await server.services.users.create({ realmId: 'default', email: 'pat@example.test', password: PASSWORD });
  });
  afterAll(async () => server?.close());

  it('signs in again once and returns a code with a refresh token', async () => {
    const config = await discover(server.issuer, client.id, {}, (await import('openid-client')).ClientSecretBasic(client.secret));
    const browser = new Browser();
    const first = await signIn(browser, config, REDIRECT, 'pat@example.test', { scope: 'openid offline_access' });
    expect(first.refresh_token).toBeTruthy();

    const auth = await authorizationRequest(config, REDIRECT, { scope: 'openid offline_access', prompt: 'login' });
    const login = await browser.follow(auth.url, {}, REDIRECT);
    expect(login.url.pathname).toMatch(/^\/interaction\//);
    const done = await submitLogin(browser, login, 'pat@example.test', PASSWORD, REDIRECT);
    expect(done.url.href.startsWith(REDIRECT), `ended at ${done.url.href}`).toBe(true);
    const tokens = await exchangeCode(config, auth, done.url);
    expect(tokens.refresh_token).toBeTruthy();
    expect(tokens.claims()!.auth_time).toBeGreaterThanOrEqual(first.claims()!.auth_time as number);
  });
});
