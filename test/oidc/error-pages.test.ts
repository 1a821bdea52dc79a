import { createHash, randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { testFetch } from '../helpers/http.js';
import { startTestServer, type TestServer } from '../helpers/server.js';

const REDIRECT = 'http://app.example.test/callback';
const challenge = createHash('sha256').update(randomBytes(32).toString('base64url')).digest('base64url');

/** The error pages a person meets when node-oidc-provider refuses what an application sent them with. */
describe('the provider error page says what happened in words, with the code and description below', () => {
  let server: TestServer;
  let clientId: string;

  beforeAll(async () => {
    server = await startTestServer();
    const c = await server.services.clients.create({ realmId: 'default', name: 'Photos', redirectUris: [REDIRECT], postLogoutRedirectUris: [REDIRECT], firstParty: true });
    clientId = c.client_id;
  });
  afterAll(async () => server?.close());

  async function errorPage(path: string) {
    const res = await testFetch(`${server.issuer}${path}`, { redirect: 'manual', headers: { accept: 'text/html,application/xhtml+xml' } });
    expect(res.status).toBe(400);
    expect(res.headers.get('location')).toBeNull();
    expect(res.headers.get('content-type')).toContain('text/html');
    const html = await res.text();
    const h1 = /<h1[^>]*>([^<]*)<\/h1>/.exec(html)?.[1];
    const title = /<title>([^<]*)<\/title>/.exec(html)?.[1];
    return { html, h1, title };
  }

  const auth = (params: Record<string, string>) =>
    `/auth?${new URLSearchParams({ response_type: 'code', scope: 'openid', code_challenge: challenge, code_challenge_method: 'S256', ...params }).toString()}`;

  it('an unknown client: the application is not registered (invalid_client, "client is invalid" kept as the detail)', async () => {
    const page = await errorPage(auth({ client_id: 'no-such-app', redirect_uri: REDIRECT }));
    expect(page.h1).toBe('This sign-in request cannot continue');
    expect(page.title).toContain('This sign-in request cannot continue');
    expect(page.html).toMatch(/The application that sent you here is not registered with Latchkey\. Go back to it and try again/);
    expect(page.html).toContain('<code>invalid_client</code>');
    expect(page.html).toContain('Details: client is invalid');
  });

  it('a redirect URI the client has not registered: the page says the address is not registered, and goes nowhere', async () => {
    const page = await errorPage(auth({ client_id: clientId, redirect_uri: `${REDIRECT}/elsewhere` }));
    expect(page.h1).toBe('This sign-in request cannot continue');
    expect(page.html).toMatch(/to send you back to an address it has not registered/);
    expect(page.html).toContain('<code>invalid_redirect_uri</code>');
  });

  it('an authorization request without client_id: the general sentence, and the provider description as detail', async () => {
    const page = await errorPage(`/auth?${new URLSearchParams({ redirect_uri: REDIRECT, response_type: 'code', scope: 'openid' }).toString()}`);
    expect(page.h1).toBe('This sign-in request cannot continue');
    expect(page.html).toMatch(/The application sent a request Latchkey cannot accept\. Go back to it and try again/);
    expect(page.html).toContain('<code>invalid_request</code>');
    expect(page.html).toContain('Details: missing required parameter &#39;client_id&#39;');
  });

  it('a resume of a sign-in that does not exist (finished, expired or from another browser): "This sign-in has expired"', async () => {
    const page = await errorPage(`/auth/${randomBytes(16).toString('base64url')}`);
    expect(page.h1).toBe('This sign-in has expired');
    expect(page.title).toContain('This sign-in has expired');
    expect(page.html).toContain('Go back to the application and sign in again.');
    expect(page.html).toContain('<code>invalid_request</code>');
  });

  it('a sign-out request with an unregistered post_logout_redirect_uri: a sign-out heading, not a sign-in one', async () => {
    const page = await errorPage(`/session/end?${new URLSearchParams({ client_id: clientId, post_logout_redirect_uri: 'http://evil.example.test/' }).toString()}`);
    expect(page.h1).toBe('This sign-out request cannot continue');
    expect(page.html).toMatch(/The application sent a sign-out request [^.<]+ cannot accept/);
    expect(page.html).toContain('<code>invalid_request</code>');
    expect(page.html).toContain('post_logout_redirect_uri');
  });
});
