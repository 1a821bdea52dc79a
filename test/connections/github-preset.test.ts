import { jwtVerify } from 'jose';
import type * as oidc from 'openid-client';
import { writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { authorizationRequest, discover, exchangeCode, PASSWORD, remoteJwks } from '../helpers/flows.js';
import { startGitHubStub, type OAuthStub, type StubAccount } from '../helpers/github-stub.js';
import { SoftAuthenticator } from '../helpers/authenticator.js';
import { Browser } from '../helpers/http.js';
import { passkeyAssertion, passkeyRegistration, readPage, submit } from '../helpers/passkey-flows.js';
import { startTestServer, type TestServer } from '../helpers/server.js';

const REDIRECT = 'http://app.example.test/callback';

const octocat = (): StubAccount => ({
  user: { login: 'octocat', id: 583231, name: 'The Octocat', email: 'public@octo.test', avatar_url: 'https://avatars.githubusercontent.com/u/583231?v=4' },
  emails: [
    { email: 'old@octo.test', primary: false, verified: true, visibility: null },
    { email: 'unconfirmed@octo.test', primary: false, verified: false, visibility: null },
    { email: 'octocat@work.test', primary: true, verified: true, visibility: 'public' },
  ],
});

// The GitHub preset (OAuth 2.0, no OIDC) against a local stub of GitHub's documented endpoints.
describe('the GitHub preset', () => {
  let server: TestServer;
  let stub: OAuthStub;
  let config: oidc.Configuration;
  let clientId: string;

  const count = async (table: string, where: Record<string, unknown> = {}) => {
    const [row] = await server.services.db(table).where(where).count({ n: '*' });
    return Number((row as { n: number | string }).n);
  };

  beforeAll(async () => {
    server = await startTestServer();
    stub = await startGitHubStub(octocat());
    const created = await server.cli(
      ['connection', 'create', '--realm', 'default', '--id', 'github', '--preset', 'github', '--base-url', stub.url, '--client-id', stub.clientId, '--client-secret-stdin'],
      `${stub.clientSecret}\n`,
    );
    expect(created.code, created.stderr).toBe(0);
    expect(created.json).toMatchObject({
      id: 'github',
      type: 'oauth2',
      preset: 'github',
      name: 'GitHub',
      authorization_endpoint: `${stub.url}/login/oauth/authorize`,
      token_endpoint: `${stub.url}/login/oauth/access_token`,
      userinfo_endpoint: `${stub.url}/api/v3/user`,
      emails_endpoint: `${stub.url}/api/v3/user/emails`,
      has_client_secret: true,
      redirect_uris: [`${server.issuer}/connections/callback`],
    });
    expect(created.stdout).not.toContain(stub.clientSecret);
    // stored encrypted: the secret is not in the row
    const row = await server.services.db('connections').where({ realm_id: 'default', id: 'github' }).first();
    expect(row.client_secret).toMatch(/^v1\./);
    expect(row.client_secret).not.toContain(stub.clientSecret);
    const rp = await server.cli(['client', 'create', '--realm', 'default', '--name', 'App', '--redirect-uri', REDIRECT, '--first-party']);
    expect(rp.code, rp.stderr).toBe(0);
    clientId = rp.json.client_id;
    config = await discover(server.issuer, clientId, { client_secret: rp.json.client_secret });
  });
  afterAll(async () => {
    await server?.close();
    await stub?.close();
  });

  async function viaGitHub(browser: Browser) {
    const auth = await authorizationRequest(config, REDIRECT);
    const page = await browser.follow(auth.url, {}, REDIRECT);
    const html = await page.res.text();
    const link = /<a class="[^"]*lk-connection" href="([^"]+)"><img class="lk-connection-icon" src="([^"]+)"[^>]*>Continue with GitHub<\/a>/.exec(html);
    expect(link, 'a "Continue with GitHub" button').not.toBeNull();
    expect(link![2]).toBe('/assets/connections/github.svg');
    const done = await browser.follow(new URL(link![1]!, page.url), {}, REDIRECT);
    return { auth, done };
  }

  it('signs in with the primary verified email; the avatar from a host off the allow-list is dropped', async () => {
    stub.requests.length = 0;
    const { auth, done } = await viaGitHub(new Browser());
    expect(done.url.href.startsWith(REDIRECT), `ended at ${done.url.href}`).toBe(true);
    const tokens = await exchangeCode(config, auth, done.url);
    const { payload } = await jwtVerify(tokens.id_token!, remoteJwks(server.issuer), { issuer: server.issuer, audience: clientId });
    expect(payload.email).toBe('octocat@work.test');
    expect(payload.email_verified).toBe(true);
    expect(payload.name).toBe('The Octocat');
    expect(payload.picture).toBeUndefined();
    const links = await server.services.linking.identitiesOf('default', String(payload.sub));
    expect(links).toEqual([expect.objectContaining({ connectionId: 'github', subject: '583231', email: 'octocat@work.test' })]);
    expect(links[0]!.profile).not.toHaveProperty('picture');

    // what the stub saw: PKCE, the JSON token request with the client secret, API calls with a token and a User-Agent
    const authorize = stub.requests.find((r) => r.path === '/login/oauth/authorize')!;
    expect(authorize).toBeDefined();
    const token = stub.requests.find((r) => r.path === '/login/oauth/access_token')!;
    expect(token.headers.accept).toContain('application/json');
    expect(token.body?.get('client_secret')).toBe(stub.clientSecret);
    expect(token.body?.get('code_verifier')).toMatch(/^[A-Za-z0-9_-]{43,128}$/);
    expect(token.body?.get('redirect_uri')).toBe(`${server.issuer}/connections/callback`);
    for (const path of ['/api/v3/user', '/api/v3/user/emails']) {
      const r = stub.requests.find((x) => x.path === path)!;
      expect(r.headers.authorization).toMatch(/^Bearer gho_/);
      expect(r.headers['user-agent']).toBeTruthy();
    }
  });

  it('the next sign-in finds the same user by GitHub id, even when the email changed upstream', async () => {
    const first = await server.services.users.findByEmail('default', 'octocat@work.test');
    stub.account = { ...octocat(), emails: [{ email: 'new-address@octo.test', primary: true, verified: true }] };
    try {
      const { auth, done } = await viaGitHub(new Browser());
      const tokens = await exchangeCode(config, auth, done.url);
      expect(tokens.claims()!.sub).toBe(first!.id);
      expect(await count('users', { realm_id: 'default' })).toBe(1);
    } finally {
      stub.account = octocat();
    }
  });

  it('a GitHub account without a verified email cannot sign in: a clear page, nothing written', async () => {
    stub.account = { user: { login: 'ghost', id: 10137, name: null, email: 'public@ghost.test' }, emails: [{ email: 'ghost@ghost.test', primary: true, verified: false }] };
    try {
      const users = await count('users');
      const { done } = await viaGitHub(new Browser());
      expect(done.res.status).toBe(409);
      const html = await done.res.text();
      expect(html).toContain('No email address was shared');
      expect(html).toContain('email_missing');
      expect(await count('users')).toBe(users);
      expect(await count('federated_identities', { subject: '10137' })).toBe(0);
    } finally {
      stub.account = octocat();
    }
  });

  it('the realm\'s MFA policy still applies: with MFA required, a GitHub sign-in continues to second-factor enrolment', async () => {
    const strict = `http://strict.localhost:${server.port}`;
    const settings = join(tmpdir(), `strict-${Date.now()}.json`);
    writeFileSync(settings, JSON.stringify({ mfa: 'required' }));
    expect((await server.cli(['realm', 'create', '--id', 'strict', '--issuer', strict, '--settings', settings])).code).toBe(0);
    const created = await server.cli(['connection', 'create', '--realm', 'strict', '--id', 'github', '--preset', 'github', '--base-url', stub.url, '--client-id', stub.clientId, '--client-secret-stdin'], stub.clientSecret);
    expect(created.code, created.stderr).toBe(0);
    const rp = await server.cli(['client', 'create', '--realm', 'strict', '--name', 'App', '--redirect-uri', REDIRECT, '--first-party']);
    const strictConfig = await discover(strict, rp.json.client_id, { client_secret: rp.json.client_secret });
    const browser = new Browser();
    const auth = await authorizationRequest(strictConfig, REDIRECT);
    const page = await browser.follow(auth.url, {}, REDIRECT);
    const href = /href="([^"]+\/connection\/github)"/.exec(await page.res.text())![1]!;
    const done = await browser.follow(new URL(href, page.url), {}, REDIRECT);
    expect(done.url.href.startsWith(REDIRECT), 'no code before a second factor').toBe(false);
    expect(done.res.status).toBe(200);
    const html = await done.res.text();
    expect(html).toContain('/totp/enrol');
    // a realm user of its own, linked in that realm
    const user = await server.services.users.findByEmail('strict', 'octocat@work.test');
    expect((await server.services.linking.identitiesOf('strict', user!.id)).map((l) => l.connectionId)).toEqual(['github']);
  });

  it('a connection limited to a tenant is offered, and usable, only in a sign-in for that tenant', async () => {
    // tenants belong to another capability: a row, and the sign-in's tenant as tenant-aware login records it
    await server.services.db('tenants').insert({ realm_id: 'default', id: 'acme', display_name: 'Acme', created_at: Date.now(), updated_at: Date.now() });
    const created = await server.cli(
      ['connection', 'create', '--realm', 'default', '--id', 'acme-github', '--name', 'Acme GitHub', '--preset', 'github', '--base-url', stub.url, '--client-id', stub.clientId, '--client-secret-stdin', '--tenant', 'acme'],
      stub.clientSecret,
    );
    expect(created.code, created.stderr).toBe(0);
    const browser = new Browser();
    const auth = await authorizationRequest(config, REDIRECT);
    const page = await browser.follow(auth.url, {}, REDIRECT);
    const html = await page.res.text();
    expect(html).toContain('Continue with GitHub');
    expect(html).not.toContain('Acme GitHub');
    const uid = /^\/interaction\/([^/]+)/.exec(page.url.pathname)![1]!;
    const start = new URL(`/interaction/${uid}/connection/acme-github`, page.url);
    const refused = await browser.request(start);
    expect(refused.status).toBe(404);
    expect(await refused.text()).toContain('unknown_connection');

    await server.services.progress.put('default', { uid }, { stage: 'identify', amr: [], tenantId: 'acme' });
    stub.account = { user: { login: 'wile', id: 7007, name: 'Wile E.' }, emails: [{ email: 'wile@acme.test', primary: true, verified: true }] };
    const tenantPage = await browser.follow(page.url, {}, REDIRECT);
    expect(await tenantPage.res.text()).toContain('Continue with Acme GitHub');
    const done = await browser.follow(start, {}, REDIRECT);
    expect(done.url.href.startsWith(REDIRECT), `ended at ${done.url.href}`).toBe(true);
    const tokens = await exchangeCode(config, auth, done.url);
    const links = await server.services.linking.identitiesOf('default', String(tokens.claims()!.sub));
    expect(links.map((l) => [l.connectionId, l.subject])).toEqual([['acme-github', '7007']]);
    // signing in through the tenant's own connection makes the new user a member (just-in-time), and the tokens say which tenant
    expect(tokens.claims()!.tenant_id).toBe('acme');
    expect(await server.services.tenants.isMember('default', 'acme', String(tokens.claims()!.sub))).toBe(true);
    stub.account = octocat();
  });

  it('an SSO-enforced tenant is signed in for through its own connection only: another connection of the realm gets no sign-in for it', async () => {
    await server.services.db('tenants').insert({ realm_id: 'default', id: 'initrode', display_name: 'Initrode', sso_enforced: true, created_at: Date.now(), updated_at: Date.now() });
    const created = await server.cli(
      ['connection', 'create', '--realm', 'default', '--id', 'initrode-github', '--name', 'Initrode GitHub', '--preset', 'github', '--base-url', stub.url, '--client-id', stub.clientId, '--client-secret-stdin', '--tenant', 'initrode'],
      stub.clientSecret,
    );
    expect(created.code, created.stderr).toBe(0);

    // through the tenant's own connection: signed in for the tenant (and made a member on the way)
    stub.account = { user: { login: 'milton', id: 8008, name: 'Milton' }, emails: [{ email: 'milton@initrode.test', primary: true, verified: true }] };
    const own = new Browser();
    const ownAuth = await authorizationRequest(config, REDIRECT, { tenant_id: 'initrode' });
    const ownDone = await own.follow(ownAuth.url, {}, REDIRECT);
    expect(ownDone.url.href.startsWith(REDIRECT), `ended at ${ownDone.url.href}`).toBe(true);
    expect((await exchangeCode(config, ownAuth, ownDone.url)).claims()!.tenant_id).toBe('initrode');

    // a member whose account is linked to the realm-wide GitHub connection
    stub.account = { user: { login: 'peter', id: 8009, name: 'Peter' }, emails: [{ email: 'peter@initrode.test', primary: true, verified: true }] };
    const first = await viaGitHub(new Browser());
    expect(first.done.url.href.startsWith(REDIRECT), `ended at ${first.done.url.href}`).toBe(true);
    const peter = String((await exchangeCode(config, first.auth, first.done.url)).claims()!.sub);
    await server.services.tenants.addMember('default', 'initrode', { userId: peter });

    // a sign-in for the tenant, taken through the realm-wide connection instead of the tenant's: refused
    const browser = new Browser();
    const auth = await authorizationRequest(config, REDIRECT, { tenant_id: 'initrode' });
    const toOwn = await browser.request(auth.url);
    let at = new URL(toOwn.headers.get('location')!, auth.url);
    for (let i = 0; i < 5 && !at.pathname.includes('/connection/'); i++) at = new URL((await browser.request(at)).headers.get('location')!, at);
    expect(at.pathname).toMatch(/\/connection\/initrode-github$/);
    const done = await browser.follow(new URL(at.pathname.replace(/initrode-github$/, 'github'), at), {}, REDIRECT);
    expect(done.url.href.startsWith(REDIRECT), `ended at ${done.url.href}`).toBe(true);
    expect(done.url.searchParams.get('code')).toBeNull();
    expect(done.url.searchParams.get('error')).toBe('access_denied');
    expect(done.url.searchParams.get('error_description')).toContain('requires single sign-on');

    // and without a tenant named, the realm-wide connection signs peter in without the SSO-enforced tenant in the tokens
    const plain = await viaGitHub(new Browser());
    expect(plain.done.url.href.startsWith(REDIRECT), `ended at ${plain.done.url.href}`).toBe(true);
    expect((await exchangeCode(config, plain.auth, plain.done.url)).claims()!.tenant_id).toBeUndefined();
    stub.account = octocat();
  });

  it('an existing member of an SSO-enforced tenant links the tenant\'s connection by proving the account with a passkey, and is signed in for the tenant', async () => {
    // lumbergh has a local account with a passkey, made a member of Initrode (SSO-enforced, see above) by an operator
    const created = await server.cli(['user', 'create', '--realm', 'default', '--email', 'lumbergh@initrode.test', '--password-stdin'], `${PASSWORD}\n`);
    expect(created.code, created.stderr).toBe(0);
    const authenticator = new SoftAuthenticator();
    const setup = new Browser();
    const setupAuth = await authorizationRequest(config, REDIRECT);
    const first = await readPage(await setup.follow(setupAuth.url, {}, REDIRECT));
    const passwordPage = await readPage(await submit(setup, first, '/identify', { email: 'lumbergh@initrode.test' }, REDIRECT));
    const offer = await readPage(await submit(setup, passwordPage, '/login', { email: 'lumbergh@initrode.test', password: PASSWORD }, REDIRECT));
    expect((await passkeyRegistration(setup, offer, authenticator, server.issuer)).status).toBe(200);
    await server.services.tenants.addMember('default', 'initrode', { userId: created.json.id });

    // the first sign-in through the tenant's connection asks for the account's proof, and links
    stub.account = { user: { login: 'bill', id: 8010, name: 'Bill' }, emails: [{ email: 'lumbergh@initrode.test', primary: true, verified: true }] };
    const browser = new Browser();
    const auth = await authorizationRequest(config, REDIRECT, { tenant_id: 'initrode' });
    const page = await readPage(await browser.follow(auth.url, {}, REDIRECT));
    expect(page.html).toContain('To connect your Initrode GitHub account');
    const proof = await passkeyAssertion(browser, page, authenticator, 'identified');
    expect(proof.status, JSON.stringify(proof.body)).toBe(200);
    const back = await browser.follow(new URL(proof.body.redirect, server.issuer), {}, REDIRECT);
    expect(back.url.searchParams.get('error_description')).toBeNull();
    const tokens = await exchangeCode(config, auth, back.url);
    expect(tokens.claims()!.sub).toBe(created.json.id);
    expect(tokens.claims()!.tenant_id).toBe('initrode');
    expect((await server.services.linking.identitiesOf('default', created.json.id)).map((l) => [l.connectionId, l.subject])).toEqual([['initrode-github', '8010']]);
    stub.account = octocat();
  });

  it('an account that only signs in through GitHub proves itself through GitHub when a second connection with its verified email arrives', async () => {
    const created = await server.cli(
      ['connection', 'create', '--realm', 'default', '--id', 'github-two', '--name', 'GitHub Two', '--preset', 'github', '--base-url', stub.url, '--client-id', stub.clientId, '--client-secret-stdin'],
      stub.clientSecret,
    );
    expect(created.code, created.stderr).toBe(0);
    const octo = await server.services.users.findByEmail('default', 'octocat@work.test');
    const browser = new Browser();
    const auth = await authorizationRequest(config, REDIRECT);
    const page = await browser.follow(auth.url, {}, REDIRECT);
    const two = /href="([^"]+\/connection\/github-two)"/.exec(await page.res.text())![1]!;
    const proofPage = await browser.follow(new URL(two, page.url), {}, REDIRECT);
    expect(proofPage.res.status).toBe(200);
    const html = await proofPage.res.text();
    expect(html).toContain('To connect your GitHub Two account to this account, confirm it is yours.');
    expect(html).not.toContain('Continue with GitHub Two');
    const viaLinked = /href="([^"]+\/connection\/github)"[^>]*>(?:<img[^>]*>)?Continue with GitHub</.exec(html)?.[1];
    expect(viaLinked, 'the already linked connection is offered as proof').toBeTruthy();
    expect(await server.services.linking.identitiesOf('default', octo!.id)).toHaveLength(1);
    const done = await browser.follow(new URL(viaLinked!, proofPage.url), {}, REDIRECT);
    expect(done.url.href.startsWith(REDIRECT), `ended at ${done.url.href}`).toBe(true);
    expect((await exchangeCode(config, auth, done.url)).claims()!.sub).toBe(octo!.id);
    expect((await server.services.linking.identitiesOf('default', octo!.id)).map((l) => l.connectionId).sort()).toEqual(['github', 'github-two']);
  });

  it('the user denying access at GitHub ends on a clear page', async () => {
    stub.deny = true;
    try {
      const { done } = await viaGitHub(new Browser());
      expect(done.res.status).toBe(400);
      expect(await done.res.text()).toContain('GitHub sign-in was cancelled');
    } finally {
      stub.deny = false;
    }
  });

  it('a wrong client secret (GitHub answers 200 with an error) is an upstream failure page, not a 500', async () => {
    const secret = stub.clientSecret;
    stub.clientSecret = 'rotated-elsewhere';
    try {
      const users = await count('users');
      const { done } = await viaGitHub(new Browser());
      expect(done.res.status).toBe(502);
      const html = await done.res.text();
      expect(html).toContain('GitHub sign-in failed');
      expect(html).toContain('upstream_failed');
      expect(html).not.toContain(secret);
      expect(await count('users')).toBe(users);
    } finally {
      stub.clientSecret = secret;
    }
  });
});
