import * as oidc from 'openid-client';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { describeEachDatabase } from '../helpers/databases.js';
import { discover, PASSWORD, postForm, signIn, until } from '../helpers/flows.js';
import { Browser, testFetch } from '../helpers/http.js';
import { startTestServer, type TestServer } from '../helpers/server.js';

const CB = 'http://app.example.test/cb';
const CB2 = 'http://app.example.test/callback-v2';
const EMAIL = 'ines@example.test';

/** `client update`, `client rotate-secret` and `client delete` against a running server sharing the database. */
describeEachDatabase('a client changed, given a new secret and deleted from the CLI', (kind) => {
  let server: TestServer;

  beforeAll(async () => {
    server = await startTestServer({ db: kind });
    const user = await server.cli(['user', 'create', '--realm', 'default', '--email', EMAIL, '--name', 'Ines', '--password-stdin'], `${PASSWORD}\n`);
    expect(user.code, user.stderr).toBe(0);
  });
  afterAll(async () => server?.close());

  async function create(...extra: string[]) {
    const r = await server.cli(['client', 'create', '--realm', 'default', '--name', 'Ledger', '--redirect-uri', CB, '--grant', 'authorization_code', '--grant', 'refresh_token', '--grant', 'client_credentials', '--first-party', ...extra]);
    expect(r.code, r.stderr).toBe(0);
    return r.json as { client_id: string; client_secret: string };
  }
  const ccToken = (id: string, secret: string) => postForm(`${server.issuer}/token`, { grant_type: 'client_credentials' }, { id, secret });
  /** Where an authorization request with this redirect URI goes: on to the sign-in (303 to /interaction/...) or the error page (400). */
  async function authorizeStatus(clientId: string, redirectUri: string) {
    const q = new URLSearchParams({ client_id: clientId, redirect_uri: redirectUri, response_type: 'code', scope: 'openid', code_challenge: 'E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGrSE9Zz-8', code_challenge_method: 'S256' });
    const res = await testFetch(`${server.issuer}/auth?${q}`, { redirect: 'manual', headers: { accept: 'text/html' } });
    const location = res.headers.get('location') ?? '';
    return { status: res.status === 303 && location.includes('/interaction/') ? 'sign-in' : res.status, body: await res.text() };
  }

  it('rotate-secret prints a new secret once; the old one stops working on the running server, the new one works', async () => {
    const c = await create();
    expect((await ccToken(c.client_id, c.client_secret)).status).toBe(200);
    const r = await server.cli(['client', 'rotate-secret', '--realm', 'default', '--client-id', c.client_id]);
    expect(r.code, r.stderr).toBe(0);
    expect(Object.keys(r.json).sort()).toEqual(['client_id', 'client_secret', 'realm']);
    expect(r.json.client_id).toBe(c.client_id);
    expect(r.json.client_secret).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(r.json.client_secret).not.toBe(c.client_secret);
    await until(async () => ((await ccToken(c.client_id, c.client_secret)).status === 401 ? true : undefined), 'the old secret refused');
    expect((await ccToken(c.client_id, c.client_secret)).body.error).toBe('invalid_client');
    expect((await ccToken(c.client_id, r.json.client_secret)).status).toBe(200);
    // the secret is not in the list, and is stored hashed
    const list = await server.cli(['client', 'list', '--realm', 'default']);
    expect(list.stdout).not.toContain(r.json.client_secret);
    const row = await server.services.db('clients').where({ client_id: c.client_id }).first();
    expect(JSON.stringify(row)).not.toContain(r.json.client_secret);
  });

  it('rotate-secret of a public client is refused with a message saying why; an unknown client is a clear not-found', async () => {
    const pub = await server.cli(['client', 'create', '--realm', 'default', '--name', 'SPA', '--redirect-uri', CB, '--public']);
    expect(pub.code, pub.stderr).toBe(0);
    const r = await server.cli(['client', 'rotate-secret', '--realm', 'default', '--client-id', pub.json.client_id]);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain('has no secret to rotate: it is a public client');
    const unknown = await server.cli(['client', 'delete', '--realm', 'default', '--client-id', 'no-such-client']);
    expect(unknown.code).not.toBe(0);
    expect(unknown.stderr).toContain('client "no-such-client"');
    const account = await server.cli(['client', 'update', '--realm', 'default', '--client-id', 'latchkey-account', '--name', 'x']);
    expect(account.code).not.toBe(0);
    expect(account.stderr).toContain('account page');
  });

  it('update replaces the redirect URIs (exact matching follows at once), renames, and leaves the rest as it was', async () => {
    const c = await create('--post-logout-redirect-uri', 'http://app.example.test/bye');
    expect((await authorizeStatus(c.client_id, CB)).status).toBe('sign-in');
    const r = await server.cli(['client', 'update', '--realm', 'default', '--client-id', c.client_id, '--name', 'Ledger v2', '--redirect-uri', CB2, '--third-party']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.json).toMatchObject({
      client_id: c.client_id,
      name: 'Ledger v2',
      redirect_uris: [CB2],
      post_logout_redirect_uris: ['http://app.example.test/bye'],
      grant_types: ['authorization_code', 'refresh_token', 'client_credentials'],
      first_party: false,
      token_endpoint_auth_method: 'client_secret_basic',
    });
    expect(r.json.client_secret).toBeUndefined();
    await until(async () => ((await authorizeStatus(c.client_id, CB)).status === 400 ? true : undefined), 'the old redirect URI refused');
    expect((await authorizeStatus(c.client_id, CB)).body).toContain('invalid_redirect_uri');
    expect((await authorizeStatus(c.client_id, CB2)).status).toBe('sign-in');
    // the secret is untouched
    expect((await ccToken(c.client_id, c.client_secret)).status).toBe(200);
    const list = await server.cli(['client', 'list', '--realm', 'default']);
    expect(list.json.clients.find((x: { client_id: string }) => x.client_id === c.client_id)).toMatchObject({ name: 'Ledger v2', redirect_uris: [CB2] });
  });

  it('an update that would make the client invalid is refused, naming the problem, and nothing changes', async () => {
    const c = await create();
    const before = await server.services.db('clients').where({ client_id: c.client_id }).first();
    for (const [args, message] of [
      [['--redirect-uri', 'not a url'], 'redirect URI "not a url" is not an absolute URL'],
      [['--redirect-uri', 'http://app.example.test/cb#frag'], 'must not contain a fragment'],
      [['--redirect-uri', `http://app.example.test/${'a'.repeat(2000)}`], 'redirect URI is 2024 characters long; at most 2000 are allowed'],
      [Array.from({ length: 101 }, (_, i) => ['--redirect-uri', `http://app.example.test/cb${i}`]).flat(), '101 URIs given; a client may register at most 100'],
      [['--grant', 'password'], 'unknown grant "password"'],
      [['--grant', 'refresh_token'], 'the refresh_token grant needs authorization_code or device_code as well'],
      [['--first-party', '--third-party'], 'give --first-party or --third-party, not both'],
      [[], 'client update needs something to change'],
    ] as const) {
      const r = await server.cli(['client', 'update', '--realm', 'default', '--client-id', c.client_id, ...args]);
      expect(r.code, args.join(' ')).not.toBe(0);
      expect(r.stderr, args.join(' ')).toContain(message);
      expect(r.stdout).toBe('');
    }
    expect(await server.services.db('clients').where({ client_id: c.client_id }).first()).toEqual(before);
  });

  it('delete: the client can no longer get tokens, its refresh tokens are revoked, and other clients are untouched', async () => {
    const doomed = await create();
    const kept = await create();
    const configOf = (c: { client_id: string; client_secret: string }) => discover(server.issuer, c.client_id, {}, oidc.ClientSecretBasic(c.client_secret));
    const doomedTokens = await signIn(new Browser(), await configOf(doomed), CB, EMAIL, { scope: 'openid offline_access' });
    const keptTokens = await signIn(new Browser(), await configOf(kept), CB, EMAIL, { scope: 'openid offline_access' });
    expect(doomedTokens.refresh_token).toBeTruthy();
    expect(keptTokens.refresh_token).toBeTruthy();

    const r = await server.cli(['client', 'delete', '--realm', 'default', '--client-id', doomed.client_id]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.json).toEqual({ client_id: doomed.client_id, realm: 'default', deleted: true, revoked_grants: 1 });

    await until(async () => ((await ccToken(doomed.client_id, doomed.client_secret)).status === 401 ? true : undefined), 'the deleted client refused');
    const refresh = await postForm(`${server.issuer}/token`, { grant_type: 'refresh_token', refresh_token: doomedTokens.refresh_token! }, { id: doomed.client_id, secret: doomed.client_secret });
    expect(refresh.status).toBe(401);
    // its grant and everything under it is gone from the database, whatever a future client with its id would do
    const rows = await server.services.db('oidc_payloads').where({ realm_id: 'default' }).select('model', 'payload');
    expect(rows.filter((row: { payload: string }) => JSON.parse(row.payload).clientId === doomed.client_id).map((row: { model: string }) => row.model)).toEqual([]);
    expect(await server.services.db('clients').where({ client_id: doomed.client_id }).first()).toBeUndefined();

    // the other client's refresh token still works
    const again = await oidc.refreshTokenGrant(await configOf(kept), keptTokens.refresh_token!);
    expect(again.access_token).toBeTruthy();
    const list = await server.cli(['client', 'list', '--realm', 'default']);
    expect(list.json.clients.map((x: { client_id: string }) => x.client_id)).not.toContain(doomed.client_id);
  });
});
