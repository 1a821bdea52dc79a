import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type * as oidc from 'openid-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generateKeyPair, SignJWT } from 'jose';
import { addressRefusal } from '../../src/connections/outbound-address.js';
import { authorizationRequest, discover, postForm } from '../helpers/flows.js';
import { Browser } from '../helpers/http.js';
import { startTestServer, type TestServer } from '../helpers/server.js';

const REDIRECT = 'http://app.example.test/callback';

describe('the address policy for upstream connections', () => {
  it('refuses link-local and cloud metadata addresses always, loopback and private ones unless allowed', () => {
    for (const address of ['169.254.169.254', '169.254.0.1', '100.100.100.200', 'fe80::1', 'fd00:ec2::254', '::ffff:169.254.169.254', '::ffff:a9fe:a9fe', '0.0.0.0', '::']) {
      expect(addressRefusal(address, true), address).toMatch(/link-local, cloud metadata/);
      expect(addressRefusal(address, false), address).toMatch(/link-local, cloud metadata/);
    }
    for (const address of ['127.0.0.1', '127.1.2.3', '10.1.2.3', '172.16.0.1', '172.31.255.255', '192.168.1.1', '100.64.0.1', '::1', 'fd12:3456::1', '::ffff:127.0.0.1', '64:ff9b::10.0.0.1']) {
      expect(addressRefusal(address, false), address).toMatch(/loopback or private network address; set outbound.allowPrivateNetworks/);
      expect(addressRefusal(address, true), address).toBeUndefined();
    }
    for (const address of ['93.184.216.34', '8.8.8.8', '172.32.0.1', '2606:4700::1111', '100.128.0.1']) expect(addressRefusal(address, false), address).toBeUndefined();
  });
});

/** A sign-in of realm `default` on a.localhost, and a way to start one of its connections. */
async function setUp(server: TestServer) {
  const a = `http://a.localhost:${server.port}`;
  const ok = (r: Awaited<ReturnType<TestServer['cli']>>) => {
    expect(r.code, r.stderr).toBe(0);
    return r.json;
  };
  ok(await server.cli(['realm', 'add-issuer', '--realm', 'default', '--issuer', a]));
  const rp = ok(await server.cli(['client', 'create', '--realm', 'default', '--name', 'App', '--redirect-uri', REDIRECT, '--first-party']));
  const config: oidc.Configuration = await discover(a, rp.client_id, { client_secret: rp.client_secret });
  const count = async (table: string) => Number(((await server.services.db(table).count({ n: '*' })) as Array<{ n: number | string }>)[0]!.n);
  /** Starts connection `id` from a fresh sign-in; the answer is not followed. */
  async function start(browser: Browser, id: string): Promise<Response> {
    const auth = await authorizationRequest(config, REDIRECT);
    const login = await browser.follow(auth.url, {}, REDIRECT);
    expect(login.res.status).toBe(200);
    return browser.request(new URL(`${login.url.pathname}/connection/${id}`, login.url));
  }
  return { a, ok, start, count };
}

describe('connections to upstreams on refused addresses (private networks allowed, as on a laptop)', () => {
  let server: TestServer;
  let env: Awaited<ReturnType<typeof setUp>>;
  let stub: Server;
  let stubUrl: string;

  beforeAll(async () => {
    server = await startTestServer();
    expect(server.services.config.outbound.allowPrivateNetworks).toBe(true); // the issuer is on localhost
    env = await setUp(server);
    // an upstream on loopback (allowed here) whose discovery document sends the token request and the
    // keys to the cloud metadata address
    stub = createServer((req, res) => {
      if (req.url === '/.well-known/openid-configuration') {
        res.setHeader('content-type', 'application/json');
        res.end(
          JSON.stringify({
            issuer: stubUrl,
            authorization_endpoint: `${stubUrl}/authorize`,
            token_endpoint: 'http://169.254.169.254/latest/meta-data/token',
            jwks_uri: 'http://169.254.169.254/latest/meta-data/jwks',
            response_types_supported: ['code'],
            subject_types_supported: ['public'],
            id_token_signing_alg_values_supported: ['RS256'],
          }),
        );
        return;
      }
      res.statusCode = 404;
      res.end();
    });
    await new Promise<void>((resolve) => stub.listen(0, '127.0.0.1', resolve));
    stubUrl = `http://stub.localhost:${(stub.address() as AddressInfo).port}`;
  });
  afterAll(async () => {
    await server?.close();
    await new Promise((resolve) => stub?.close(resolve));
  });

  it('an issuer on the metadata address: the start page names the host and the reason, and nothing is stored', async () => {
    for (const [id, issuer, host] of [
      ['meta', 'https://169.254.169.254', '169.254.169.254'],
      ['meta6', 'https://[fd00:ec2::254]', 'fd00:ec2::254'],
    ]) {
      env.ok(await server.cli(['connection', 'create', '--realm', 'default', '--id', id!, '--name', 'Metadata', '--type', 'oidc', '--issuer', issuer!, '--client-id', 'x']));
      const progress = await env.count('signin_progress');
      const res = await env.start(new Browser(), id!);
      expect(res.status).toBe(502);
      const html = await res.text();
      expect(html).toContain('Metadata is not reachable');
      expect(html).toContain(`connecting to ${host} was refused`);
      expect(html).toContain('link-local, cloud metadata');
      expect(html).toContain('upstream_address_refused');
      expect(await env.count('signin_progress')).toBe(progress);
    }
  });

  it("a discovery document that points the token request at the metadata address: refused when the code is exchanged, on the sign-in's error page", async () => {
    env.ok(await server.cli(['connection', 'create', '--realm', 'default', '--id', 'stub', '--name', 'Stub IdP', '--type', 'oidc', '--issuer', stubUrl, '--client-id', 'x']));
    const browser = new Browser();
    const started = await env.start(browser, 'stub');
    expect(started.status).toBe(303);
    const authorize = new URL(started.headers.get('location')!);
    expect(authorize.href.startsWith(`${stubUrl}/authorize`)).toBe(true);
    // the upstream's answer comes back with a code
    const back = await browser.follow(`${env.a}/connections/callback?code=c0de&state=${authorize.searchParams.get('state')}`);
    expect(back.res.status).toBe(502);
    const html = await back.res.text();
    expect(html).toContain('Stub IdP sign-in failed');
    expect(html).toContain('connecting to 169.254.169.254 was refused');
    expect(html).toContain('upstream_address_refused');
    expect(await env.count('users')).toBe(0);
  });
});

describe('trusted issuers (token exchange) whose discovery points the keys at a refused address', () => {
  let server: TestServer;
  let stub: Server;
  let stubUrl: string;

  beforeAll(async () => {
    server = await startTestServer();
    stub = createServer((req, res) => {
      res.setHeader('content-type', 'application/json');
      res.end(JSON.stringify({ issuer: stubUrl, jwks_uri: 'https://169.254.169.254/latest/jwks' }));
    });
    await new Promise<void>((resolve) => stub.listen(0, '127.0.0.1', resolve));
    stubUrl = `http://stub.localhost:${(stub.address() as AddressInfo).port}`;
  });
  afterAll(async () => {
    await server?.close();
    await new Promise((resolve) => stub?.close(resolve));
  });

  it('the exchange is refused with invalid_grant naming the host and the reason', async () => {
    await server.services.trust.add({ realmId: 'default', issuer: stubUrl, audience: 'https://ci.example.test' });
    const grant = 'urn:ietf:params:oauth:grant-type:token-exchange';
    const c = await server.cli(['client', 'create', '--realm', 'default', '--name', 'Deployer', '--grant', grant]);
    expect(c.code, c.stderr).toBe(0);
    const { privateKey } = await generateKeyPair('ES256');
    const subjectToken = await new SignJWT({ sub: 'job-1' }).setProtectedHeader({ alg: 'ES256', kid: 'k1' }).setIssuer(stubUrl).setAudience('https://ci.example.test').setIssuedAt().setExpirationTime('5m').sign(privateKey);
    const res = await postForm(`${server.issuer}/token`, { grant_type: grant, subject_token: subjectToken, subject_token_type: 'urn:ietf:params:oauth:token-type:jwt' }, { id: c.json.client_id, secret: c.json.client_secret });
    expect(res.status, JSON.stringify(res.body)).toBe(400);
    expect(res.body.error).toBe('invalid_grant');
    expect(res.body.error_description).toContain('connecting to 169.254.169.254 was refused');
    expect(res.body.error_description).toContain('link-local, cloud metadata');
  });
});

describe('connections to upstreams on loopback when private networks are not allowed (outbound.allowPrivateNetworks: false)', () => {
  let server: TestServer;
  let env: Awaited<ReturnType<typeof setUp>>;

  beforeAll(async () => {
    server = await startTestServer({ overrides: { outbound: { allowPrivateNetworks: false } } });
    env = await setUp(server);
  });
  afterAll(async () => server?.close());

  it('an upstream whose name resolves to loopback is refused, naming the host and the setting that allows it', async () => {
    const up = `http://up.localhost:${server.port}`;
    env.ok(await server.cli(['realm', 'create', '--id', 'upstream', '--issuer', up]));
    env.ok(await server.cli(['connection', 'create', '--realm', 'default', '--id', 'local', '--name', 'Local IdP', '--type', 'oidc', '--issuer', up, '--client-id', 'x']));
    const res = await env.start(new Browser(), 'local');
    expect(res.status).toBe(502);
    const html = await res.text();
    expect(html).toContain('connecting to up.localhost was refused');
    expect(html).toContain('loopback or private network address; set outbound.allowPrivateNetworks');
    expect(html).toContain('upstream_address_refused');
  });
});
