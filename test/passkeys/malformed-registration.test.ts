import { afterAll, beforeAll, expect, it } from 'vitest';
import { SoftAuthenticator } from '../helpers/authenticator.js';
import { describeEachDatabase } from '../helpers/databases.js';
import { discover } from '../helpers/flows.js';
import type { Browser } from '../helpers/http.js';
import { newUserAtPasskeyOffer, postJson, storedPasskeys, type SignInPage } from '../helpers/passkey-flows.js';
import { startTestServer, type TestServer } from '../helpers/server.js';
import type * as oidc from 'openid-client';

const REDIRECT = 'http://app.example.test/cb';

/**
 * Registration on the sign-in pages (the passkey offer after a password) with a body of the wrong
 * shape: a clear 400 naming what was wrong, no credential written, and the offer still works after.
 */
describeEachDatabase('malformed passkey registrations at sign-in', (kind) => {
  let server: TestServer;
  let config: oidc.Configuration;
  let n = 0;

  beforeAll(async () => {
    server = await startTestServer({ db: kind });
    const client = await server.cli(['client', 'create', '--realm', 'default', '--name', 'App', '--redirect-uri', REDIRECT, '--first-party']);
    expect(client.code, client.stderr).toBe(0);
    config = await discover(server.issuer, client.json.client_id, { client_secret: client.json.client_secret });
  });
  afterAll(async () => server?.close());

  /** A new user at the passkey offer that follows their password. */
  async function offer(): Promise<{ browser: Browser; page: SignInPage; email: string }> {
    const email = `reg${++n}@example.test`;
    return { ...(await newUserAtPasskeyOffer(server, config, REDIRECT, email)), email };
  }
  const credentialsOf = (email: string) => storedPasskeys(server, email);

  const cases: Array<[string, (r: any) => Record<string, unknown>, RegExp]> = [
    ['a name with a text-direction override', (r) => ({ response: r, name: 'Phone \u202eenohP' }), /name/i],
    ['a name holding a NUL character', (r) => ({ response: r, name: 'Work\u0000laptop' }), /name/i],
    ['a name that is not text', (r) => ({ response: r, name: 42 }), /name/i],
    ['transports that are a string, not a list', (r) => ({ response: { ...r, response: { ...r.response, transports: 'usb' } } }), /transports/i],
    ['transports that are not strings', (r) => ({ response: { ...r, response: { ...r.response, transports: [1, { usb: true }] } } }), /transports/i],
    ['a huge list of transports', (r) => ({ response: { ...r, response: { ...r.response, transports: Array.from({ length: 2000 }, (_, i) => `t${i}`) } } }), /transports/i],
  ];

  for (const [label, body, message] of cases) {
    it(`${label}: a clear 400, no credential, and the offer still works`, async () => {
      const { browser, page, email } = await offer();
      const authenticator = new SoftAuthenticator();
      const options = await postJson(browser, page, '/passkey/register/options', {});
      expect(options.status).toBe(200);
      const response = await authenticator.createCredential(options.body, server.issuer);
      const res = await postJson(browser, page, '/passkey/register/verify', body(response));
      expect(res.status, JSON.stringify(res.body)).toBe(400);
      expect(res.body.error_description).toMatch(message);
      expect(await credentialsOf(email)).toHaveLength(0);
      // a well-formed registration in the same sign-in still succeeds
      const again = await postJson(browser, page, '/passkey/register/options', {});
      const good = await postJson(browser, page, '/passkey/register/verify', { response: await new SoftAuthenticator().createCredential(again.body, server.issuer), name: 'Laptop' });
      expect(good.status, JSON.stringify(good.body)).toBe(200);
      const stored = await credentialsOf(email);
      expect(stored).toHaveLength(1);
      expect(stored[0].name).toBe('Laptop');
      expect(Array.isArray(JSON.parse(stored[0].transports))).toBe(true);
    });
  }
});
