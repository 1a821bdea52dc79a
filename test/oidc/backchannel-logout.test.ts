/**
 * OpenID Connect Back-Channel Logout 1.0: a client registered with a back-channel logout URI is posted a
 * logout token when the user signs out; the token is verified here with jose against the JWKS fetched
 * over HTTP, as an application would.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import * as oidc from 'openid-client';
import { createRemoteJWKSet, customFetch, decodeJwt, jwtVerify } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { describeEachDatabase } from '../helpers/databases.js';
import { authorizationRequest, exchangeCode, PASSWORD, submitLogin, until } from '../helpers/flows.js';
import { Browser, parseForm, testFetch } from '../helpers/http.js';
import { runCli, startTestServer, type TestServer } from '../helpers/server.js';

const REDIRECT = 'http://app.example.test/callback';
const BYE = 'http://app.example.test/bye';
const EVENT = 'http://schemas.openid.net/event/backchannel-logout';

/** The application's back-channel logout endpoint: records what is posted, answers `status`. */
async function logoutReceiver(status = 200): Promise<{ url: string; posts: Array<{ contentType: string; body: URLSearchParams }>; close(): Promise<void> }> {
  const posts: Array<{ contentType: string; body: URLSearchParams }> = [];
  const server: Server = createServer((req, res) => {
    let text = '';
    req.setEncoding('utf8');
    req.on('data', (chunk) => (text += chunk));
    req.on('end', () => {
      posts.push({ contentType: String(req.headers['content-type']), body: new URLSearchParams(text) });
      res.writeHead(status, { 'cache-control': 'no-store' }).end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/backchannel-logout`,
    posts,
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}

async function relyingParty(server: TestServer, clientId: string, clientSecret: string) {
  return oidc.discovery(new URL(server.issuer), clientId, { client_secret: clientSecret }, undefined, {
    execute: [oidc.allowInsecureRequests],
    [oidc.customFetch]: testFetch,
  } as any);
}

async function signIn(config: oidc.Configuration, browser: Browser, server: TestServer) {
  const auth = await authorizationRequest(config, REDIRECT, { scope: 'openid email' });
  const login = await browser.follow(auth.url, {}, REDIRECT);
  const done = await submitLogin(browser, login, 'ada@example.test', PASSWORD, REDIRECT);
  expect(done.url.href.startsWith(REDIRECT), `ended at ${done.url.href}`).toBe(true);
  expect(done.url.searchParams.get('iss')).toBe(server.issuer);
  return exchangeCode(config, auth, done.url);
}

/** RP-initiated logout with the "sign out" confirmation; returns where the browser ends up. */
async function signOut(config: oidc.Configuration, browser: Browser, idToken: string): Promise<URL> {
  const page = await browser.follow(oidc.buildEndSessionUrl(config, { id_token_hint: idToken, post_logout_redirect_uri: BYE }));
  expect(page.res.status).toBe(200);
  const form = parseForm(await page.res.text(), 'session/end');
  const out = await browser.follow(new URL(form.action, page.url), { form: { ...form.fields, logout: 'yes' } }, BYE);
  return out.url;
}

describeEachDatabase('back-channel logout', (kind) => {
  let server: TestServer;
  let receiver: Awaited<ReturnType<typeof logoutReceiver>>;
  let failing: Awaited<ReturnType<typeof logoutReceiver>>;

  beforeAll(async () => {
    receiver = await logoutReceiver();
    failing = await logoutReceiver(500);
    // the applications here listen on 127.0.0.1: a private address, allowed by this setting (the default for a localhost issuer)
    server = await startTestServer({ db: kind, overrides: { outbound: { allowPrivateNetworks: true } } });
    const user = await server.cli(['user', 'create', '--realm', 'default', '--email', 'ada@example.test', '--password-stdin'], PASSWORD);
    expect(user.code, user.stderr).toBe(0);
  });
  afterAll(async () => {
    await server?.close();
    await receiver?.close();
    await failing?.close();
  });

  const createClient = async (...extra: string[]) => {
    const created = await server.cli(['client', 'create', '--realm', 'default', '--name', 'Demo App', '--redirect-uri', REDIRECT, '--post-logout-redirect-uri', BYE, '--first-party', ...extra]);
    expect(created.code, created.stderr).toBe(0);
    return created.json as { client_id: string; client_secret: string; backchannel_logout_uri?: string };
  };

  it('discovery says it is supported, with the session id', async () => {
    const res = await testFetch(`${server.issuer}/.well-known/openid-configuration`);
    const doc = (await res.json()) as Record<string, unknown>;
    expect(doc.backchannel_logout_supported).toBe(true);
    expect(doc.backchannel_logout_session_supported).toBe(true);
  });

  it('signing out posts a logout token for the session to the application, which verifies against the JWKS', async () => {
    const client = await createClient('--backchannel-logout-uri', receiver.url);
    expect(client.backchannel_logout_uri).toBe(receiver.url);
    const config = await relyingParty(server, client.client_id, client.client_secret);
    const browser = new Browser();
    const tokens = await signIn(config, browser, server);
    const idToken = decodeJwt(tokens.id_token!);
    expect(typeof idToken.sid, 'the ID token names the session the logout token will name').toBe('string');
    const before = receiver.posts.length;

    const end = await signOut(config, browser, tokens.id_token!);
    expect(end.href.startsWith(BYE)).toBe(true);
    // the delivery is made before the sign-out answers
    expect(receiver.posts.length).toBe(before + 1);
    const post = receiver.posts.at(-1)!;
    expect(post.contentType).toMatch(/^application\/x-www-form-urlencoded/);
    const logoutToken = post.body.get('logout_token');
    expect(logoutToken).toBeTruthy();

    const jwks = createRemoteJWKSet(new URL(`${server.issuer}/jwks`), { [customFetch]: testFetch } as any);
    const { payload, protectedHeader } = await jwtVerify(logoutToken!, jwks, { issuer: server.issuer, audience: client.client_id, typ: 'logout+jwt' });
    expect(protectedHeader.alg).toBe('EdDSA');
    expect(payload.sub).toBe(idToken.sub);
    expect(payload.sid).toBe(idToken.sid);
    expect(payload.events).toEqual({ [EVENT]: {} });
    expect(typeof payload.jti).toBe('string');
    expect(typeof payload.iat).toBe('number');
    expect(payload.nonce, 'a logout token must not carry a nonce').toBeUndefined();

    // the session is over: the refresh token and the access token of that sign-in are no longer active
    const introspected = await oidc.tokenIntrospection(config, tokens.access_token);
    expect(introspected.active).toBe(false);
  });

  it("an operator's sign-out (latchkey user sign-out) announces each ended session with the issuer it lived on", async () => {
    // a second domain of the realm: the session signed in there is announced with that domain as iss
    const second = `http://second.localhost:${server.port}`;
    const added = await server.cli(['realm', 'add-issuer', '--realm', 'default', '--issuer', second]);
    expect(added.code, added.stderr).toBe(0);
    const created = await server.cli(['client', 'create', '--realm', 'default', '--name', 'Demo App', '--redirect-uri', REDIRECT, '--first-party', '--backchannel-logout-uri', receiver.url]);
    expect(created.code, created.stderr).toBe(0);
    const { client_id: clientId, client_secret: clientSecret } = created.json;

    const onFirst = await signIn(await relyingParty(server, clientId, clientSecret), new Browser(), server);
    const secondServer = { ...server, issuer: second } as TestServer;
    const secondConfig = await until(() => relyingParty(secondServer, clientId, clientSecret).catch(() => undefined), 'the second domain served');
    const onSecond = await signIn(secondConfig, new Browser(), secondServer);
    const sids = new Map([
      [server.issuer, decodeJwt(onFirst.id_token!).sid],
      [second, decodeJwt(onSecond.id_token!).sid],
    ]);
    const before = receiver.posts.length;

    // the CLI reads its own configuration: it sends the logout tokens itself
    const out = await runCli({ ...server.env, LATCHKEY_ALLOW_PRIVATE_NETWORKS: 'true' }, ['user', 'sign-out', '--realm', 'default', '--email', 'ada@example.test']);
    expect(out.code, out.stderr).toBe(0);
    // every session of the user ended; the two of this client were announced (earlier tests' clients have no live sessions left, or no URI)
    expect(out.json.logout_tokens.failed).toBe(0);
    const mine = receiver.posts.slice(before).map((p) => decodeJwt(p.body.get('logout_token')!)).filter((t) => t.aud === clientId);
    expect(mine).toHaveLength(2);
    expect(out.json.logout_tokens.delivered).toBe(receiver.posts.length - before);
    for (const token of mine) {
      const iss = token.iss!;
      expect(sids.has(iss), `iss ${iss}`).toBe(true);
      const jwks = createRemoteJWKSet(new URL(`${iss}/jwks`), { [customFetch]: testFetch } as any);
      const { payload } = await jwtVerify(receiver.posts.find((p) => decodeJwt(p.body.get('logout_token')!).jti === token.jti)!.body.get('logout_token')!, jwks, {
        issuer: iss,
        audience: clientId,
        typ: 'logout+jwt',
      });
      expect(payload.sid).toBe(sids.get(iss));
      expect(payload.events).toEqual({ [EVENT]: {} });
    }
    expect(new Set(mine.map((t) => t.iss))).toEqual(new Set([server.issuer, second]));
  });

  it('an application that fails to take the token does not stop the sign-out', async () => {
    const client = await createClient('--backchannel-logout-uri', failing.url);
    const config = await relyingParty(server, client.client_id, client.client_secret);
    const browser = new Browser();
    const tokens = await signIn(config, browser, server);
    const before = failing.posts.length;
    const end = await signOut(config, browser, tokens.id_token!);
    expect(end.href.startsWith(BYE)).toBe(true);
    expect(failing.posts.length).toBe(before + 1);
  });

  it('the URI is checked, can be changed and removed; an application without one is sent nothing', async () => {
    for (const bad of ['not a url', 'javascript:alert(1)', `${receiver.url}#frag`]) {
      const refused = await server.cli(['client', 'create', '--realm', 'default', '--name', 'Bad', '--redirect-uri', REDIRECT, '--backchannel-logout-uri', bad]);
      expect(refused.code, bad).not.toBe(0);
      expect(refused.stderr).toMatch(/back-channel logout URI/);
    }
    const client = await createClient('--backchannel-logout-uri', receiver.url);
    const both = await server.cli(['client', 'update', '--realm', 'default', '--client-id', client.client_id, '--backchannel-logout-uri', receiver.url, '--no-backchannel-logout']);
    expect(both.code).not.toBe(0);
    expect(both.stderr).toMatch(/--backchannel-logout-uri or --no-backchannel-logout/);
    const removed = await server.cli(['client', 'update', '--realm', 'default', '--client-id', client.client_id, '--no-backchannel-logout']);
    expect(removed.code, removed.stderr).toBe(0);
    expect(removed.json.backchannel_logout_uri).toBeUndefined();

    // the change reaches the running server: signing out now sends nothing
    const config = await relyingParty(server, client.client_id, client.client_secret);
    const browser = new Browser();
    const tokens = await until(async () => {
      const t = await signIn(config, browser, server);
      return decodeJwt(t.id_token!).sid === undefined ? t : undefined;
    }, 'the client without a back-channel logout URI (its ID tokens no longer carry sid)');
    const before = receiver.posts.length;
    const end = await signOut(config, browser, tokens.id_token!);
    expect(end.href.startsWith(BYE)).toBe(true);
    expect(receiver.posts.length).toBe(before);
  });
});

describe('back-channel logout without outbound.allowPrivateNetworks', () => {
  let server: TestServer;
  let receiver: Awaited<ReturnType<typeof logoutReceiver>>;
  beforeAll(async () => {
    receiver = await logoutReceiver();
    // the test server's issuer is on localhost, where private networks are allowed unless set
    server = await startTestServer({ db: 'sqlite', overrides: { outbound: { allowPrivateNetworks: false } } });
    const user = await server.cli(['user', 'create', '--realm', 'default', '--email', 'ada@example.test', '--password-stdin'], PASSWORD);
    expect(user.code, user.stderr).toBe(0);
  });
  afterAll(async () => {
    await server?.close();
    await receiver?.close();
  });

  it('a logout token is not sent to a loopback address (the sign-out itself completes)', async () => {
    const created = await server.cli(['client', 'create', '--realm', 'default', '--name', 'Demo App', '--redirect-uri', REDIRECT, '--post-logout-redirect-uri', BYE, '--first-party', '--backchannel-logout-uri', receiver.url]);
    expect(created.code, created.stderr).toBe(0);
    const config = await relyingParty(server, created.json.client_id, created.json.client_secret);
    const browser = new Browser();
    const tokens = await signIn(config, browser, server);
    const end = await signOut(config, browser, tokens.id_token!);
    expect(end.href.startsWith(BYE)).toBe(true);
    expect(receiver.posts).toEqual([]);
  });
});
