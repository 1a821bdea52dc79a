import { errors as joseErrors, jwtVerify } from 'jose';
import type * as oidc from 'openid-client';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { describeEachDatabase } from '../helpers/databases.js';
import { discover, PASSWORD, remoteJwks, signIn, until } from '../helpers/flows.js';
import { Browser, testFetch } from '../helpers/http.js';
import { startTestServer, type TestServer } from '../helpers/server.js';

const REDIRECT = 'http://app.example.test/callback';
const EMAIL = 'grace@acme.test';

const discovery = (issuer: string) => testFetch(`${issuer}/.well-known/openid-configuration`);

// One realm, several issuer domains: each domain is its own issuer, all share the realm's keys, clients and users.
describeEachDatabase('a realm served on several domains', (kind) => {
  let server: TestServer;
  let a: string;
  let b: string;
  let clientId: string;
  let clientSecret: string;

  beforeAll(async () => {
    server = await startTestServer({ db: kind });
    a = `http://a.localhost:${server.port}`;
    b = `http://b.localhost:${server.port}`;
    const realm = await server.cli(['realm', 'create', '--id', 'acme', '--name', 'Acme', '--issuer', a, '--issuer', b]);
    expect(realm.code, realm.stderr).toBe(0);
    expect(realm.json.issuers).toEqual([a, b]);
    const client = await server.cli(['client', 'create', '--realm', 'acme', '--name', 'Acme App', '--redirect-uri', REDIRECT, '--first-party']);
    expect(client.code, client.stderr).toBe(0);
    clientId = client.json.client_id;
    clientSecret = client.json.client_secret;
    const user = await server.cli(['user', 'create', '--realm', 'acme', '--email', EMAIL, '--name', 'Grace Hopper', '--password-stdin'], `${PASSWORD}\n`);
    expect(user.code, user.stderr).toBe(0);
  });
  afterAll(async () => server?.close());

  const config = (issuer: string): Promise<oidc.Configuration> => discover(issuer, clientId, { client_secret: clientSecret });

  it('publishes a discovery document per domain, each naming its own issuer and endpoints', async () => {
    for (const issuer of [a, b]) {
      const res = await discovery(issuer);
      expect(res.status).toBe(200);
      const doc = (await res.json()) as Record<string, string>;
      expect(doc.issuer).toBe(issuer);
      expect(doc.jwks_uri).toBe(`${issuer}/jwks`);
      expect(doc.token_endpoint).toBe(`${issuer}/token`);
    }
  });

  it('publishes the same JWKS on every domain of the realm, distinct from the default realm', async () => {
    const [ja, jb, jd] = await Promise.all([a, b, server.issuer].map(async (i) => (await testFetch(`${i}/jwks`)).json() as Promise<{ keys: Array<{ kid: string }> }>));
    expect(ja.keys.length).toBeGreaterThanOrEqual(3);
    expect(jb).toEqual(ja);
    const defaultKids = new Set(jd.keys.map((k) => k.kid));
    expect(ja.keys.some((k) => defaultKids.has(k.kid))).toBe(false);
  });

  it('signs in on each domain: the ID token names that domain as issuer and verifies with its JWKS', async () => {
    const idTokens: Record<string, string> = {};
    for (const issuer of [a, b]) {
      const tokens = await signIn(new Browser(), await config(issuer), REDIRECT, EMAIL);
      const { payload, protectedHeader } = await jwtVerify(tokens.id_token!, remoteJwks(issuer), { issuer, audience: clientId });
      expect(payload.iss).toBe(issuer);
      expect(payload.email).toBe(EMAIL);
      expect(protectedHeader.alg).toBe('EdDSA');
      idTokens[issuer] = tokens.id_token!;
    }
    // the same account on both domains
    const subA = (await jwtVerify(idTokens[a]!, remoteJwks(a))).payload.sub;
    const subB = (await jwtVerify(idTokens[b]!, remoteJwks(b))).payload.sub;
    expect(subA).toBe(subB);
    // the signature checks out with b's JWKS (same keys), but a token from a is not a token of issuer b
    const err = await jwtVerify(idTokens[a]!, remoteJwks(b), { issuer: b, audience: clientId }).catch((e) => e);
    expect(err).toBeInstanceOf(joseErrors.JWTClaimValidationFailed);
    expect((err as InstanceType<typeof joseErrors.JWTClaimValidationFailed>).claim).toBe('iss');
  });

  it('answers 404 JSON for a host no realm serves', async () => {
    const res = await discovery(`http://nope.localhost:${server.port}`);
    expect(res.status).toBe(404);
    expect(res.headers.get('content-type')).toMatch(/application\/json/);
    expect(await res.json()).toMatchObject({ error: 'unknown_host' });
  });

  it('serves an issuer added with the CLI without a restart', async () => {
    const c = `http://c.localhost:${server.port}`;
    // ask once before, so a remembered miss cannot hide the new host
    expect((await discovery(c)).status).toBe(404);
    const added = await server.cli(['realm', 'add-issuer', '--realm', 'acme', '--issuer', c]);
    expect(added.code, added.stderr).toBe(0);
    expect(added.json.issuers).toContain(c);
    const doc = await until(async () => {
      const res = await discovery(c);
      return res.status === 200 ? ((await res.json()) as { issuer: string }) : undefined;
    }, `discovery on ${c}`, 3000);
    expect(doc.issuer).toBe(c);
    const tokens = await signIn(new Browser(), await config(c), REDIRECT, EMAIL);
    expect((await jwtVerify(tokens.id_token!, remoteJwks(c), { issuer: c, audience: clientId })).payload.iss).toBe(c);
  });

  it('refuses a host that another realm already serves', async () => {
    const taken = `localhost:${server.port}`; // the default realm's issuer
    const added = await server.cli(['realm', 'add-issuer', '--realm', 'acme', '--issuer', `http://${taken}`]);
    expect(added.code).not.toBe(0);
    expect(added.stderr).toContain(`"${taken}"`);
    expect(added.stderr).toContain('default');

    const created = await server.cli(['realm', 'create', '--id', 'other', '--issuer', a]);
    expect(created.code).not.toBe(0);
    expect(created.stderr).toContain(`a.localhost:${server.port}`);
    expect(created.stderr).toContain('acme');
    // nothing changed: the default realm still answers on its host
    expect(((await (await discovery(server.issuer)).json()) as { issuer: string }).issuer).toBe(server.issuer);
  });
});
