import { afterAll, beforeAll, expect, it } from 'vitest';
import { SoftAuthenticator } from '../helpers/authenticator.js';
import { describeEachDatabase } from '../helpers/databases.js';
import { authorizationRequest, discover, PASSWORD } from '../helpers/flows.js';
import { Browser } from '../helpers/http.js';
import { passkeyRegistration, postJson, readPage, submit, type SignInPage } from '../helpers/passkey-flows.js';
import { startTestServer, type TestServer } from '../helpers/server.js';
import type * as oidc from 'openid-client';

const REDIRECT = 'http://app.example.test/cb';
const EMAIL = 'malformed@example.test';

/**
 * Passkey responses of the wrong shape, as a broken or hostile script posts them: each is a clear 4xx
 * naming the problem (never a 500), on both databases, and nothing is signed in or written.
 */
describeEachDatabase('malformed passkey responses at sign-in', (kind) => {
  let server: TestServer;
  let config: oidc.Configuration;
  const authenticator = new SoftAuthenticator();

  beforeAll(async () => {
    server = await startTestServer({ db: kind });
    const client = await server.cli(['client', 'create', '--realm', 'default', '--name', 'App', '--redirect-uri', REDIRECT, '--first-party']);
    expect(client.code, client.stderr).toBe(0);
    config = await discover(server.issuer, client.json.client_id, { client_secret: client.json.client_secret });
    expect((await server.cli(['user', 'create', '--realm', 'default', '--email', EMAIL, '--password-stdin'], PASSWORD)).code).toBe(0);
    // the user's passkey, so that a response can name a real credential
    const browser = new Browser();
    const page = await start(browser);
    const pw = await readPage(await submit(browser, page, '/identify', { email: EMAIL }, REDIRECT));
    const offer = await readPage(await submit(browser, pw, '/login', { email: EMAIL, password: PASSWORD }, REDIRECT));
    expect((await passkeyRegistration(browser, offer, authenticator)).status).toBe(200);
  });
  afterAll(async () => server?.close());

  async function start(browser: Browser): Promise<SignInPage> {
    const auth = await authorizationRequest(config, REDIRECT);
    return readPage(await browser.follow(auth.url, {}, REDIRECT));
  }

  const clientData = (value: Record<string, unknown>) => Buffer.from(JSON.stringify(value)).toString('base64url');

  const cases: Array<[string, (a: any) => unknown, string]> = [
    ['a user handle that is a number', (a) => ({ ...a, response: { ...a.response, userHandle: 12 } }), 'invalid_response'],
    ['a user handle that is an object', (a) => ({ ...a, response: { ...a.response, userHandle: { id: 'x' } } }), 'invalid_response'],
    ['a credential id holding a NUL character', (a) => ({ ...a, id: `${a.id}\u0000`, rawId: `${a.id}\u0000` }), 'unknown_credential'],
    ['a credential id that is not base64url', (a) => ({ ...a, id: 'not base64url!', rawId: 'not base64url!' }), 'unknown_credential'],
    ['a challenge holding a NUL character', (a) => ({ ...a, response: { ...a.response, clientDataJSON: clientData({ type: 'webauthn.get', challenge: 'abc\u0000' }) } }), 'invalid_response'],
    ['a huge challenge', (a) => ({ ...a, response: { ...a.response, clientDataJSON: clientData({ type: 'webauthn.get', challenge: 'A'.repeat(20_000) }) } }), 'invalid_response'],
  ];

  for (const [label, mutate, code] of cases) {
    it(`${label}: ${code}, a clear 400`, async () => {
      const browser = new Browser();
      const page = await start(browser);
      const options = await postJson(browser, page, '/passkey/options', { mode: 'button' });
      expect(options.status).toBe(200);
      const assertion = await authenticator.getAssertion(options.body, server.issuer);
      const res = await postJson(browser, page, '/passkey/verify', { response: mutate(assertion) });
      expect(res.status, JSON.stringify(res.body)).toBe(400);
      expect(res.body.error).toBe(code);
      expect(res.body.error_description).toMatch(/passkey/i);
    });
  }
});
