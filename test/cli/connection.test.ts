import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestServer, type TestServer } from '../helpers/server.js';

type CliResult = Awaited<ReturnType<TestServer['cli']>>;

const stderrOf = (res: CliResult) => res.stderr.replace(/^oidc-provider WARNING: Unsupported runtime\..*\n/m, '');

function ok(res: CliResult): any {
  expect(res.code, res.stderr).toBe(0);
  expect(stderrOf(res)).toBe('');
  expect(res.json).toEqual(JSON.parse(res.stdout));
  return res.json;
}

function refused(res: CliResult, code: number, ...mentions: Array<string | RegExp>): void {
  expect(res.code).toBe(code);
  expect(res.stdout).toBe('');
  for (const m of mentions) {
    if (typeof m === 'string') expect(res.stderr).toContain(m);
    else expect(res.stderr).toMatch(m);
  }
  expect(res.stderr).not.toMatch(/^\s+at /m);
}

const SECRET = 'upstream-client-secret-Zq8vN2';

describe('latchkey connection', () => {
  let server: TestServer;
  const count = async (table: string, where: Record<string, unknown> = {}) => {
    const [row] = await server.services.db(table).where(where).count({ n: '*' });
    return Number((row as { n: number | string }).n);
  };

  beforeAll(async () => {
    server = await startTestServer();
    // tenants belong to another capability; a row is enough to limit a connection to one
    await server.services.db('tenants').insert({ realm_id: 'default', id: 'acme', display_name: 'Acme', created_at: Date.now(), updated_at: Date.now() });
  });
  afterAll(async () => server?.close());

  it('--help describes every form, and the command is listed', async () => {
    const help = await server.cli(['connection', '--help']);
    expect(help.code).toBe(0);
    for (const flag of ['--preset', '--type oidc --issuer', '--authorization-endpoint', '--claim sub=PATH', '--client-secret-stdin', '--tenant', 'connection list', 'connection remove']) {
      expect(help.stdout).toContain(flag);
    }
    expect((await server.cli(['--help'])).stdout).toMatch(/^\s+connection\s+\S/m);
  });

  it('creates a preset connection: the secret comes from stdin, is stored encrypted and never printed', async () => {
    const res = await server.cli(['connection', 'create', '--realm', 'default', '--id', 'google', '--preset', 'google', '--client-id', 'g-123.apps.example', '--client-secret-stdin'], `${SECRET}\n`);
    const json = ok(res);
    expect(json).toMatchObject({
      id: 'google',
      realm: 'default',
      type: 'oidc',
      preset: 'google',
      name: 'Google',
      client_id: 'g-123.apps.example',
      issuer: 'https://accounts.google.com',
      scopes: ['openid', 'email', 'profile'],
      has_client_secret: true,
      tenants: [],
      enabled: true,
      redirect_uris: [`${server.issuer}/connections/callback`],
    });
    expect(res.stdout).not.toContain(SECRET);
    const row = await server.services.db('connections').where({ realm_id: 'default', id: 'google' }).first();
    expect(row.client_secret).not.toContain(SECRET);
    expect(server.services.box.open(row.client_secret, 'connection:default:google')).toBe(SECRET);
  });

  it('creates generic OIDC and OAuth 2.0 connections, limited to a tenant', async () => {
    ok(await server.cli(['connection', 'create', '--realm', 'default', '--id', 'okta', '--type', 'oidc', '--issuer', 'https://example.okta.test', '--client-id', 'o1', '--name', 'Okta', '--tenant', 'acme']));
    const oauth = ok(
      await server.cli([
        'connection', 'create', '--realm', 'default', '--id', 'forum', '--type', 'oauth2', '--client-id', 'f1',
        '--authorization-endpoint', 'https://forum.test/oauth/authorize', '--token-endpoint', 'https://forum.test/oauth/token', '--userinfo-endpoint', 'https://forum.test/api/me',
        '--claim', 'sub=user.id', '--claim', 'email=user.email', '--scope', 'read profile',
      ]),
    );
    expect(oauth).toMatchObject({ type: 'oauth2', claims: { sub: 'user.id', email: 'user.email' }, scopes: ['read', 'profile'], has_client_secret: false });
    const list = ok(await server.cli(['connection', 'list', '--realm', 'default']));
    expect(list.connections.map((c: any) => [c.id, c.tenants])).toEqual([['google', []], ['okta', ['acme']], ['forum', []]]);
    expect(JSON.stringify(list)).not.toContain(SECRET);
    // what a sign-in may use: everyone's connections, plus a tenant's own
    expect((await server.services.connections.availableFor('default')).map((c) => c.id)).toEqual(['google', 'forum']);
    expect((await server.services.connections.availableFor('default', { tenantId: 'acme' })).map((c) => c.id)).toEqual(['google', 'okta', 'forum']);
    expect((await server.services.connections.availableFor('default', { tenantId: 'other' })).map((c) => c.id)).toEqual(['google', 'forum']);
  });

  it('disables a connection (no button, no sign-in through it, links kept) and enables it again', async () => {
    ok(await server.cli(['connection', 'create', '--realm', 'default', '--id', 'switchable', '--preset', 'gitlab', '--client-id', 'gl'], SECRET));
    const off = ok(await server.cli(['connection', 'disable', '--realm', 'default', '--id', 'switchable']));
    expect(off).toMatchObject({ id: 'switchable', enabled: false });
    expect((await server.services.connections.availableFor('default')).map((c) => c.id)).not.toContain('switchable');
    expect(await server.services.connections.usable('default', 'switchable')).toBeUndefined();
    const on = ok(await server.cli(['connection', 'enable', '--realm', 'default', '--id', 'switchable']));
    expect(on.enabled).toBe(true);
    expect((await server.services.connections.availableFor('default')).map((c) => c.id)).toContain('switchable');
    refused(await server.cli(['connection', 'disable', '--realm', 'default', '--id', 'nope']), 1, 'connection "nope"');
    ok(await server.cli(['connection', 'remove', '--realm', 'default', '--id', 'switchable']));
  });

  it('refuses bad input with a message naming it, and writes nothing', async () => {
    const before = await count('connections');
    refused(await server.cli(['connection', 'create', '--realm', 'default', '--id', 'x', '--client-id', 'c']), 2, '--preset');
    refused(await server.cli(['connection', 'create', '--realm', 'default', '--id', 'x', '--preset', 'google']), 2, '--client-id');
    refused(await server.cli(['connection', 'create', '--realm', 'default', '--id', 'x', '--preset', 'google', '--client-id', 'c', '--client-secret-stdin'], ''), 2, 'standard input was empty');
    refused(await server.cli(['connection', 'create', '--realm', 'default', '--id', 'x', '--preset', 'google', '--client-id', 'c', '--client-secret', 'oops']), 2, 'client-secret');
    refused(await server.cli(['connection', 'create', '--realm', 'default', '--id', 'x', '--type', 'oauth2', '--client-id', 'c', '--claim', 'sub']), 2, '--claim "sub"');
    refused(await server.cli(['connection', 'create', '--realm', 'default', '--id', 'x', '--preset', 'myspace', '--client-id', 'c']), 1, 'unknown preset "myspace"');
    refused(await server.cli(['connection', 'create', '--realm', 'default', '--id', 'x', '--type', 'oidc', '--issuer', 'http://idp.example.com', '--client-id', 'c']), 1, 'issuer must be an absolute https URL');
    refused(await server.cli(['connection', 'create', '--realm', 'default', '--id', 'x', '--type', 'oauth2', '--client-id', 'c', '--authorization-endpoint', 'https://p.test/a']), 1, '--token-endpoint');
    refused(await server.cli(['connection', 'create', '--realm', 'default', '--id', 'Bad ID', '--preset', 'google', '--client-id', 'c']), 1, 'connection id "Bad ID"');
    refused(await server.cli(['connection', 'create', '--realm', 'nowhere', '--id', 'x', '--preset', 'google', '--client-id', 'c']), 1, 'realm "nowhere" does not exist');
    refused(await server.cli(['connection', 'create', '--realm', 'default', '--id', 'google', '--preset', 'google', '--client-id', 'c']), 1, 'connection "google" already exists');
    refused(await server.cli(['connection', 'create', '--realm', 'default', '--id', 'x', '--preset', 'gitlab', '--client-id', 'c', '--tenant', 'acme', '--tenant', 'globex']), 1, 'no tenant "globex"');
    expect(await count('connections')).toBe(before);
    expect(await count('tenant_connections')).toBe(1);
  });

  it("names the flags the operator typed, never the service's field names", async () => {
    const before = await count('connections');
    const create = (...args: string[]) => server.cli(['connection', 'create', '--realm', 'default', '--client-id', 'c', ...args]);
    const cases: Array<{ args: string[]; flags: string[]; not: string[] }> = [
      {
        args: ['--id', 'x', '--type', 'oauth2', '--authorization-endpoint', 'https://p.test/a'],
        flags: ['--token-endpoint: is required for an oauth2 connection', '--userinfo-endpoint: is required', '--claim sub=PATH: is required'],
        not: ['tokenEndpoint', 'userinfoEndpoint', 'claims.sub', 'expected string'],
      },
      {
        args: ['--id', 'x', '--type', 'oauth2', '--authorization-endpoint', 'ftp://p.test/a', '--token-endpoint', 'https://p.test/t', '--userinfo-endpoint', 'https://p.test/me', '--claim', 'sub=a..b', '--scope', 'read "all"'],
        flags: ['--authorization-endpoint: the authorization endpoint must be an absolute https URL', '--claim sub=PATH: a claim path', '--scope: a scope is printable ASCII'],
        not: ['authorizationEndpoint', 'claims.sub', 'scopes.'],
      },
      { args: ['--id', 'x', '--type', 'oidc', '--issuer', 'http://idp.example.com'], flags: ['--issuer: the issuer must be an absolute https URL'], not: [] },
      { args: ['--id', 'x', '--type', 'oidc', '--issuer', 'https://idp.example.com', '--token-endpoint', 'https://idp.example.com/t'], flags: ['--token-endpoint: an oidc connection finds its endpoints'], not: ['tokenEndpoint'] },
      { args: ['--id', 'x', '--preset', 'google', '--issuer', 'https://idp.example.com'], flags: ['--issuer: the google preset sets the issuer'], not: [] },
      // a preset's issuer is built from --base-url: that is what the operator typed
      { args: ['--id', 'x', '--preset', 'gitlab', '--base-url', 'ftp://git.example.com'], flags: ['--base-url: the issuer must be an absolute https URL'], not: ['issuer:'] },
      { args: ['--id', 'x', '--preset', 'github', '--api-base-url', 'ftp://api.example.com'], flags: ['--api-base-url: the userinfo endpoint must be'], not: ['userinfoEndpoint', 'emailsEndpoint'] },
      { args: ['--id', 'x', '--preset', 'google', '--entra-tenant', '72f988bf-86f1-41af-91ab-2d7cd011db47'], flags: ['--entra-tenant: the Entra tenant applies to the entra preset only'], not: ['entraTenant'] },
      { args: ['--id', 'x', '--preset', 'entra'], flags: ['--entra-tenant: the entra preset needs the directory (tenant) id'], not: [] },
      { args: ['--id', 'x', '--type', 'oidc', '--issuer', 'https://idp.example.com', '--base-url', 'https://y.example'], flags: ['--base-url: a base URL applies to presets only'], not: ['baseUrl'] },
      { args: ['--id', 'x', '--preset', 'google', '--type', 'oidc'], flags: ['--type: give either a preset or a type'], not: [] },
      { args: ['--id', 'x', '--preset', 'google', '--name', 'n'.repeat(201)], flags: ['--name: must be at most 200 characters'], not: [] },
      { args: ['--id', 'Bad ID', '--preset', 'google'], flags: ['--id: connection id "Bad ID"'], not: [] },
      { args: ['--id', 'x', '--preset', 'google', '--tenant', 'globex'], flags: ['--tenant: realm "default" has no tenant "globex"'], not: ['tenantIds'] },
    ];
    for (const { args, flags, not } of cases) {
      const res = await create(...args);
      refused(res, 1, ...flags);
      for (const name of not) expect(res.stderr, args.join(' ')).not.toContain(name);
    }
    expect(await count('connections')).toBe(before);
  });

  it('removes a connection (and its tenant rows); removing it again names what is missing', async () => {
    expect(ok(await server.cli(['connection', 'remove', '--realm', 'default', '--id', 'okta']))).toEqual({ removed: 'okta', realm: 'default' });
    expect(await count('tenant_connections')).toBe(0);
    expect(ok(await server.cli(['connection', 'list', '--realm', 'default'])).connections.map((c: any) => c.id)).toEqual(['google', 'forum']);
    refused(await server.cli(['connection', 'remove', '--realm', 'default', '--id', 'okta']), 1, 'connection "okta" in realm "default" does not exist');
    refused(await server.cli(['connection', 'list']), 2, '--realm');
    refused(await server.cli(['connection', 'frobnicate']), 2, 'unknown connection command "frobnicate"');
  });
});
