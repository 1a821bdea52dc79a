import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { authorizationRequest, discover } from '../helpers/flows.js';
import { Browser } from '../helpers/http.js';
import { readPage, submit } from '../helpers/passkey-flows.js';
import { startTestServer, type TestServer } from '../helpers/server.js';
import type * as oidc from 'openid-client';

const REDIRECT = 'http://app.example.test/cb';

/**
 * The recovery-code page of a passkey-only user ("Lost your passkey?" on the passkey step) offers the
 * same way out as every other sign-in step: Cancel, which returns access_denied to the application.
 */
describe('the passkey-only recovery page', () => {
  let server: TestServer;
  let config: oidc.Configuration;

  beforeAll(async () => {
    server = await startTestServer();
    const client = await server.cli(['client', 'create', '--realm', 'default', '--name', 'Notes', '--redirect-uri', REDIRECT, '--first-party']);
    expect(client.code, client.stderr).toBe(0);
    config = await discover(server.issuer, client.json.client_id, { client_secret: client.json.client_secret });
    expect((await server.cli(['user', 'create', '--realm', 'default', '--email', 'nopass@example.test'])).code).toBe(0);
  });
  afterAll(async () => server?.close());

  it('has Cancel, which ends the sign-in with access_denied at the application', async () => {
    const browser = new Browser();
    const auth = await authorizationRequest(config, REDIRECT);
    const first = await readPage(await browser.follow(auth.url, {}, REDIRECT));
    const passkeyPage = await readPage(await submit(browser, first, '/identify', { email: 'nopass@example.test' }, REDIRECT));
    expect(passkeyPage.html).toContain('method=recovery');
    const recoveryPage = await readPage(await browser.follow(new URL(`/interaction/${passkeyPage.uid}?method=recovery`, server.issuer), {}, REDIRECT));
    expect(recoveryPage.status).toBe(200);
    expect(recoveryPage.html).toContain('name="code"');
    expect(recoveryPage.html).toContain(`/interaction/${passkeyPage.uid}/abort"`);
    const cancelled = await submit(browser, recoveryPage, '/abort', {}, REDIRECT);
    expect(cancelled.url.href.startsWith(REDIRECT), cancelled.url.href).toBe(true);
    expect(cancelled.url.searchParams.get('error')).toBe('access_denied');
  });
});
