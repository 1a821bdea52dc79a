import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SoftAuthenticator } from '../helpers/authenticator.js';
import { authorizationRequest, discover, PASSWORD } from '../helpers/flows.js';
import { Browser } from '../helpers/http.js';
import { passkeyAssertion, readPage, submit } from '../helpers/passkey-flows.js';
import { startTestServer, type TestServer } from '../helpers/server.js';

const REDIRECT = 'http://app.example.test/cb';

/**
 * With related origins, a credential made for the realm's primary RP ID works on every domain of the
 * realm (in browsers with Related Origin Requests). The sign-in steps on a secondary domain must count
 * it as the user's: a security key there is a second factor, not a reason to set up another one.
 */
describe('related origins: credentials of the primary RP ID count on the secondary domains', () => {
  let server: TestServer;
  let primary: string;
  let secondary: string;
  let clientId: string;

  beforeAll(async () => {
    server = await startTestServer();
    const dir = mkdtempSync(join(tmpdir(), 'latchkey-ror-factors-'));
    writeFileSync(join(dir, 's.json'), JSON.stringify({ mfa: 'required', passkeys: { relatedOrigins: true } }));
    [primary, secondary] = ['g', 'h'].map((h) => `http://${h}.localhost:${server.port}`) as [string, string];
    expect((await server.cli(['realm', 'create', '--id', 'ror', '--issuer', primary, '--issuer', secondary, '--settings', join(dir, 's.json')])).code).toBe(0);
    const client = await server.cli(['client', 'create', '--realm', 'ror', '--name', 'App', '--redirect-uri', REDIRECT, '--first-party', '--public']);
    expect(client.code, client.stderr).toBe(0);
    clientId = client.json.client_id;
  });
  afterAll(async () => server?.close());

  /** A user with a password and a credential for the primary RP ID (made on any of the realm's domains). */
  async function userWith(email: string, kind: 'security-key' | 'passkey', authenticator: SoftAuthenticator) {
    expect((await server.cli(['user', 'create', '--realm', 'ror', '--email', email, '--password-stdin'], PASSWORD)).code).toBe(0);
    const s = server.services;
    const realm = (await s.realms.get('ror'))!;
    const user = (await s.users.findByEmail('ror', email))!;
    const rp = { rpId: 'g.localhost', origins: [primary, secondary], name: 'ROR' };
    const who = { id: user.id, email, name: null };
    const options = await s.passkeys.registrationOptions({ realmId: 'ror', settings: realm.settings, rp, user: who, boundTo: `setup:${email}`, kind });
    await s.passkeys.verifyRegistration({ realmId: 'ror', settings: realm.settings, rp, user: who, boundTo: `setup:${email}`, kind, response: await authenticator.createCredential(options, secondary) });
    return { user };
  }

  async function afterPassword(issuer: string, email: string) {
    const browser = new Browser();
    const config = await discover(issuer, clientId);
    const auth = await authorizationRequest(config, REDIRECT);
    const first = await readPage(await browser.follow(auth.url, {}, REDIRECT));
    const pw = await readPage(await submit(browser, first, '/identify', { email }, REDIRECT));
    expect(pw.html).toContain('name="password"');
    return { browser, page: await readPage(await submit(browser, pw, '/login', { email, password: PASSWORD }, REDIRECT)) };
  }

  it('a security key of the primary RP ID is the second factor on the secondary domain, not a reason to set up another', async () => {
    const key = new SoftAuthenticator({ backupEligible: false });
    await userWith('key@ror.test', 'security-key', key);
    const { browser, page } = await afterPassword(secondary, 'key@ror.test');
    expect(page.html).toContain('Verify it');
    expect(page.html).not.toContain('Add a second step');
    // a browser with Related Origin Requests uses it there
    const result = await passkeyAssertion(browser, page, key, 'second-factor', secondary, { relatedOrigins: true });
    expect(result.status, JSON.stringify(result.body)).toBe(200);
  });
});
