import { jwtVerify } from 'jose';
import type * as oidc from 'openid-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { authorizationRequest, discover, exchangeCode, PASSWORD, remoteJwks, submitLogin } from '../helpers/flows.js';
import { Browser, testFetch } from '../helpers/http.js';
import { startTestServer, type TestServer } from '../helpers/server.js';

const REDIRECT = 'http://app.example.test/callback';
const UPSTREAM_EMAIL = 'ada@upstream.test';

// One running Latchkey, two realms: `default` on a.localhost signs people in through `upstream` on
// up.localhost, a real OpenID Connect provider reached over HTTP.
describe('an OpenID Connect connection to another realm', () => {
  let server: TestServer;
  let a: string;
  let up: string;
  let rpClientId: string;
  let rpSecret: string;
  let config: oidc.Configuration;

  const count = async (table: string, where: Record<string, unknown> = {}) => {
    const [row] = await server.services.db(table).where(where).count({ n: '*' });
    return Number((row as { n: number | string }).n);
  };

  beforeAll(async () => {
    server = await startTestServer();
    a = `http://a.localhost:${server.port}`;
    up = `http://up.localhost:${server.port}`;
    const ok = (r: Awaited<ReturnType<TestServer['cli']>>) => {
      expect(r.code, r.stderr).toBe(0);
      return r.json;
    };
    ok(await server.cli(['realm', 'add-issuer', '--realm', 'default', '--issuer', a]));
    ok(await server.cli(['realm', 'create', '--id', 'upstream', '--name', 'Upstream Corp', '--issuer', up]));
    const upstreamClient = ok(await server.cli(['client', 'create', '--realm', 'upstream', '--name', 'Downstream', '--redirect-uri', `${a}/connections/callback`, '--first-party']));
    ok(await server.cli(['user', 'create', '--realm', 'upstream', '--email', UPSTREAM_EMAIL, '--name', 'Ada Lovelace', '--password-stdin'], `${PASSWORD}\n`));
    const connection = ok(
      await server.cli(
        ['connection', 'create', '--realm', 'default', '--id', 'upcorp', '--type', 'oidc', '--issuer', up, '--client-id', upstreamClient.client_id, '--client-secret-stdin', '--name', 'Upstream Corp'],
        `${upstreamClient.client_secret}\n`,
      ),
    );
    expect(connection.redirect_uris).toContain(`${a}/connections/callback`);
    expect(JSON.stringify(connection)).not.toContain(upstreamClient.client_secret);
    const rp = ok(await server.cli(['client', 'create', '--realm', 'default', '--name', 'App', '--redirect-uri', REDIRECT, '--first-party']));
    rpClientId = rp.client_id;
    rpSecret = rp.client_secret;
    config = await discover(a, rpClientId, { client_secret: rpSecret });
  });
  afterAll(async () => server?.close());

  /** Authorization request at a.localhost; returns the login page and the "Continue with" link. */
  async function loginPage(browser: Browser) {
    const auth = await authorizationRequest(config, REDIRECT);
    const page = await browser.follow(auth.url, {}, REDIRECT);
    expect(page.res.status).toBe(200);
    const html = await page.res.text();
    const link = /<a class="[^"]*lk-connection"[^>]*href="([^"]+)"[^>]*>(?:<img[^>]*>)?([^<]*)<\/a>/.exec(html);
    expect(link, 'a connection button on the login page').not.toBeNull();
    return { auth, page, html, start: new URL(link![1]!.replace(/&amp;/g, '&'), page.url), label: link![2]! };
  }

  async function signInThroughUpstream(browser: Browser) {
    const { auth, start, label } = await loginPage(browser);
    expect(label).toBe('Continue with Upstream Corp');
    // the button leads to the upstream realm's own login page
    const upstreamPage = await browser.follow(start, {}, REDIRECT);
    expect(upstreamPage.url.host).toBe(new URL(up).host);
    const done = await submitLogin(browser, upstreamPage, UPSTREAM_EMAIL, PASSWORD, REDIRECT);
    expect(done.url.href.startsWith(REDIRECT), `ended at ${done.url.href}`).toBe(true);
    const tokens = await exchangeCode(config, auth, done.url);
    const { payload } = await jwtVerify(tokens.id_token!, remoteJwks(a), { issuer: a, audience: rpClientId });
    return payload;
  }

  it('shows the connection as a "Continue with" button whose icon is served locally', async () => {
    const { html, start } = await loginPage(new Browser());
    expect(html).toContain('aria-label="Other ways to sign in"');
    expect(start.pathname).toMatch(/^\/interaction\/[^/]+\/connection\/upcorp$/);
    const icon = /<img class="lk-connection-icon" src="([^"]+)" alt=""/.exec(html)![1]!;
    expect(icon).toBe('/assets/connections/generic.svg');
    const res = await testFetch(new URL(icon, a));
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('image/svg+xml');
  });

  it('signs in through the upstream: a new realm user linked to the upstream subject, and the same user next time', async () => {
    const before = await count('users', { realm_id: 'default' });
    const first = await signInThroughUpstream(new Browser());
    expect(first.email).toBe(UPSTREAM_EMAIL);
    expect(first.email_verified).toBe(true);
    expect(first.name).toBe('Ada Lovelace');
    expect(await count('users', { realm_id: 'default' })).toBe(before + 1);
    const user = await server.services.users.findById('default', String(first.sub));
    expect(user?.email).toBe(UPSTREAM_EMAIL);
    expect(user?.passwordHash).toBeNull();
    const upstreamUser = await server.services.users.findByEmail('upstream', UPSTREAM_EMAIL);
    const links = await server.services.linking.identitiesOf('default', String(first.sub));
    expect(links.map((l) => [l.connectionId, l.subject])).toEqual([['upcorp', upstreamUser!.id]]);
    // the downstream user is not the upstream one: its own id, in its own realm
    expect(first.sub).not.toBe(upstreamUser!.id);

    const second = await signInThroughUpstream(new Browser());
    expect(second.sub).toBe(first.sub);
    expect(await count('users', { realm_id: 'default' })).toBe(before + 1);
    expect(await count('federated_identities', { realm_id: 'default' })).toBe(1);
  });

  it('re-authentication (prompt=login) of a user who only signs in through the connection offers the connection again', async () => {
    const browser = new Browser();
    const first = await signInThroughUpstream(browser);
    const auth = await authorizationRequest(config, REDIRECT, { prompt: 'login' });
    const page = await browser.follow(auth.url, {}, REDIRECT);
    expect(page.res.status).toBe(200);
    const html = await page.res.text();
    expect(html).toContain(UPSTREAM_EMAIL);
    const href = /href="([^"]+\/connection\/upcorp)"[^>]*>(?:<img[^>]*>)?Continue with Upstream Corp</.exec(html)?.[1];
    expect(href, 'a "Continue with Upstream Corp" link on the re-authentication page').toBeTruthy();
    // still signed in upstream: straight back, no upstream page
    const done = await browser.follow(new URL(href!, page.url), {}, REDIRECT);
    expect(done.url.href.startsWith(REDIRECT), `ended at ${done.url.href}`).toBe(true);
    const tokens = await exchangeCode(config, auth, done.url);
    expect(tokens.claims()!.sub).toBe(first.sub);
    expect(tokens.claims()!.amr).toEqual(['fed']);
  });

  it('emits federated sign-in events naming the connection', async () => {
    const seen: any[] = [];
    const off = server.services.events.on('signin.success', (e) => seen.push(e));
    try {
      const claims = await signInThroughUpstream(new Browser());
      const mine = seen.filter((e) => e.realm === 'default');
      expect(mine).toEqual([expect.objectContaining({ method: 'federated', connectionId: 'upcorp', userId: claims.sub, issuer: a })]);
    } finally {
      off();
    }
  });

  /** Starts the upstream flow and returns the state the upstream would send back (without going there). */
  async function startedFlow(browser: Browser) {
    const { start } = await loginPage(browser);
    const res = await browser.request(start);
    expect(res.status).toBe(303);
    const upstreamAuth = new URL(res.headers.get('location')!);
    expect(upstreamAuth.origin).toBe(up);
    expect(upstreamAuth.searchParams.get('code_challenge_method')).toBe('S256');
    expect(upstreamAuth.searchParams.get('redirect_uri')).toBe(`${a}/connections/callback`);
    expect(upstreamAuth.searchParams.get('nonce')).toBeTruthy();
    return { state: upstreamAuth.searchParams.get('state')!, start, upstreamAuth };
  }

  it('access_denied from the upstream: a clear error page, nothing written, and the answer cannot be replayed', async () => {
    const browser = new Browser();
    const { state } = await startedFlow(browser);
    const users = await count('users');
    const links = await count('federated_identities');
    const denied = await browser.follow(`${a}/connections/callback?error=access_denied&state=${state}&iss=${encodeURIComponent(up)}`);
    expect(denied.res.status).toBe(400);
    const html = await denied.res.text();
    expect(html).toContain('Upstream Corp sign-in was cancelled');
    expect(html).toContain('upstream_access_denied');
    expect(html).toMatch(/href="\/interaction\/[^"]+"/); // a way back to the sign-in page
    const again = await browser.follow(`${a}/connections/callback?error=access_denied&state=${state}`);
    expect(again.res.status).toBe(400);
    expect(await again.res.text()).toContain('connection_state_invalid');
    expect(await count('users')).toBe(users);
    expect(await count('federated_identities')).toBe(links);
  });

  it('an unknown or missing state is refused with a clear page (no 500)', async () => {
    for (const query of ['code=abc&state=not-a-state-we-issued-aaaaaaaaaaaaaaaaaaaaaaaa', 'code=abc', '']) {
      const res = await new Browser().request(`${a}/connections/callback?${query}`);
      expect(res.status).toBe(400);
      const html = await res.text();
      expect(html).toContain('This sign-in could not be completed');
      expect(html).toContain('connection_state_invalid');
    }
  });

  it('a valid state in another browser (no interaction cookie) does not complete anyone’s sign-in', async () => {
    const { state } = await startedFlow(new Browser());
    const other = new Browser();
    const res = await other.follow(`${a}/connections/callback?code=whatever&state=${state}`);
    expect(res.res.status).toBe(400);
    expect(await res.res.text()).toContain('interaction_expired');
  });

  it('a forged authorization code fails the token exchange: an error page, nothing written', async () => {
    const browser = new Browser();
    const { state } = await startedFlow(browser);
    const users = await count('users');
    const res = await browser.follow(`${a}/connections/callback?code=forged-code&state=${state}&iss=${encodeURIComponent(up)}`);
    expect(res.res.status).toBe(502);
    const html = await res.res.text();
    expect(html).toContain('Upstream Corp sign-in failed');
    expect(html).toContain('upstream_failed');
    expect(await count('users')).toBe(users);
  });

  it('an ID token that fails validation (nonce not the one sent) is refused: an error page, nothing written', async () => {
    const browser = new Browser();
    const { state, upstreamAuth } = await startedFlow(browser);
    // the nonce we expect differs from the one the upstream puts in the ID token
    const key = { realm_id: 'default', uid: `connection-state:${state}` };
    const row = await server.services.db('signin_progress').where(key).first();
    await server.services.db('signin_progress').where(key).update({ data: JSON.stringify({ ...JSON.parse(row.data), nonce: 'another-nonce' }) });
    const users = await count('users');
    const links = await count('federated_identities');
    const upstreamPage = await browser.follow(upstreamAuth, {}, REDIRECT);
    const back = await submitLogin(browser, upstreamPage, UPSTREAM_EMAIL, PASSWORD, REDIRECT);
    expect(back.res.status).toBe(502);
    const html = await back.res.text();
    expect(html).toContain('Upstream Corp sign-in failed');
    expect(html).toContain('upstream_failed');
    expect(await count('users')).toBe(users);
    expect(await count('federated_identities')).toBe(links);
  });

  it('an answer naming another issuer (mix-up) is refused', async () => {
    const browser = new Browser();
    const { state } = await startedFlow(browser);
    const res = await browser.follow(`${a}/connections/callback?code=abc&state=${state}&iss=${encodeURIComponent('http://evil.localhost')}`);
    expect(res.res.status).toBe(502);
    expect(await res.res.text()).toContain('upstream_failed');
  });

  it('an upstream that cannot be reached: a clear page at the start, nothing stored for the flow', async () => {
    const created = await server.cli(['connection', 'create', '--realm', 'default', '--id', 'down', '--name', 'Down IdP', '--type', 'oidc', '--issuer', 'http://down.localhost:1', '--client-id', 'x']);
    expect(created.code, created.stderr).toBe(0);
    try {
      const browser = new Browser();
      const { start } = await loginPage(browser);
      const flows = await count('signin_progress');
      const res = await browser.request(start.href.replace('/upcorp', '/down'));
      expect(res.status).toBe(502);
      const html = await res.text();
      expect(html).toContain('Down IdP is not reachable');
      expect(html).toContain('upstream_failed');
      expect(await count('signin_progress')).toBe(flows);
    } finally {
      await server.cli(['connection', 'remove', '--realm', 'default', '--id', 'down']);
    }
  });

  it('a removed connection disappears from the login page and cannot be started', async () => {
    const browser = new Browser();
    const { start } = await startedFlow(browser);
    const created = await server.cli(['connection', 'create', '--realm', 'default', '--id', 'short-lived', '--type', 'oidc', '--issuer', up, '--client-id', 'x']);
    expect(created.code, created.stderr).toBe(0);
    const removed = await server.cli(['connection', 'remove', '--realm', 'default', '--id', 'short-lived']);
    expect(removed.code, removed.stderr).toBe(0);
    const page = await browser.request(start.href.replace('/upcorp', '/short-lived'));
    expect(page.status).toBe(404);
    expect(await page.text()).toContain('unknown_connection');
  });
});
