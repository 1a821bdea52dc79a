import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createRemoteJWKSet, customFetch, decodeProtectedHeader, jwtVerify } from 'jose';
import * as oidc from 'openid-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadAuthorizationModule } from '../../src/authz/load.js';
import { staticRulesModule } from '../../src/authz/static-rules.js';
import { discover, PASSWORD, signIn } from '../helpers/flows.js';
import { Browser, testFetch } from '../helpers/http.js';
import { runCli, startTestServer, type TestServer } from '../helpers/server.js';

const dir = mkdtempSync(join(tmpdir(), 'latchkey-authz-'));
const modulePath = join(dir, 'module.mjs');
const recordPath = join(dir, 'issued.jsonl');
const issued = (): Array<{ clientId: string; subject?: string; grantType?: string; token: string }> =>
  readFileSync(recordPath, 'utf8').trim().split('\n').filter(Boolean).map((line) => JSON.parse(line));
writeFileSync(
  modulePath,
  `import { appendFileSync } from 'node:fs';
  export function createAuthorizationModule(options) {
    return {
      name: 'test-module',
      async onIssue(identity) {
        if (options.recordTo) appendFileSync(options.recordTo, JSON.stringify({ clientId: identity.clientId, subject: identity.subject, grantType: identity.grantType, token: identity.token }) + '\\n');
        if (identity.audience === options.denyAudience) return { allow: false, reason: 'no access to the billing API' };
        return { allow: true, claims: { 'https://latchkey.test/seen-by': 'test-module', realm_of_token: identity.realmId, sub: 'forged', iss: 'forged' } };
      },
      async check(identity, resourceUri, permission) {
        return resourceUri.startsWith('https://api.acme.test/') && permission === 'read' && identity.clientId !== 'blocked';
      },
    };
  }`,
);

async function clientCredentials(server: TestServer, clientId: string, secret: string, resource?: string) {
  const body = new URLSearchParams({ grant_type: 'client_credentials', ...(resource ? { resource } : {}) });
  const res = await testFetch(`${server.issuer}/token`, {
    method: 'POST',
    headers: { authorization: `Basic ${Buffer.from(`${clientId}:${secret}`).toString('base64')}`, 'content-type': 'application/x-www-form-urlencoded' },
    body,
  });
  return { status: res.status, json: (await res.json()) as any };
}

describe('the authorization module sees every issued identity', () => {
  let server: TestServer;
  let client: { client_id: string; client_secret: string };

  beforeAll(async () => {
    server = await startTestServer({
      overrides: { authorization: { module: modulePath, options: { denyAudience: 'https://billing.acme.test', recordTo: recordPath } } },
    });
    const settings = join(dir, 'settings.json');
    writeFileSync(settings, JSON.stringify({ resources: [{ uri: 'https://billing.acme.test', scopes: ['pay'] }] }));
    // give the default realm a second API: realm settings are replaced via a new realm here
    const realm = await server.cli(['realm', 'create', '--id', 'acme', '--issuer', `http://acme.localhost:${server.port}`, '--settings', settings]);
    expect(realm.code, realm.stderr).toBe(0);
    const created = await server.cli(['client', 'create', '--realm', 'acme', '--name', 'svc', '--grant', 'client_credentials']);
    expect(created.code, created.stderr).toBe(0);
    client = created.json;
  });
  afterAll(async () => server?.close());

  it('adds claims to access tokens, never overriding reserved ones', async () => {
    const issuer = `http://acme.localhost:${server.port}`;
    const body = new URLSearchParams({ grant_type: 'client_credentials' });
    const res = await testFetch(`${issuer}/token`, {
      method: 'POST',
      headers: { authorization: `Basic ${Buffer.from(`${client.client_id}:${client.client_secret}`).toString('base64')}`, 'content-type': 'application/x-www-form-urlencoded' },
      body,
    });
    expect(res.status).toBe(200);
    const token = ((await res.json()) as any).access_token as string;
    expect(decodeProtectedHeader(token).typ).toBe('at+jwt');
    const jwks = createRemoteJWKSet(new URL(`${issuer}/jwks`), { [customFetch]: testFetch } as any);
    const { payload } = await jwtVerify(token, jwks, { issuer, audience: `${issuer}/api` });
    expect(payload['https://latchkey.test/seen-by']).toBe('test-module');
    expect(payload.realm_of_token).toBe('acme');
    expect(payload.sub).toBe(client.client_id);
    expect(payload.iss).toBe(issuer);
  });

  it('is told the grant type of each access token: client_credentials, authorization_code, refresh_token', async () => {
    const issuer = `http://acme.localhost:${server.port}`;
    const redirect = 'http://app.example.test/cb';
    const web = await server.cli(['client', 'create', '--realm', 'acme', '--name', 'web', '--redirect-uri', redirect, '--first-party']);
    expect(web.code, web.stderr).toBe(0);
    const user = await server.cli(['user', 'create', '--realm', 'acme', '--email', 'grace@example.test', '--password-stdin'], `${PASSWORD}\n`);
    expect(user.code, user.stderr).toBe(0);
    const config = await discover(issuer, web.json.client_id, { client_secret: web.json.client_secret });
    const tokens = await signIn(new Browser(), config, redirect, 'grace@example.test', { scope: 'openid email offline_access' });
    await oidc.refreshTokenGrant(config, tokens.refresh_token!);
    expect((await clientCredentials({ ...server, issuer } as TestServer, client.client_id, client.client_secret)).status).toBe(200);

    const seen = issued().filter((r) => r.token === 'access_token');
    const forUser = seen.filter((r) => r.subject === user.json.id).map((r) => r.grantType);
    expect(forUser).toEqual(['authorization_code', 'refresh_token']);
    expect(seen.filter((r) => r.clientId === client.client_id).map((r) => r.grantType)).toContain('client_credentials');
  });

  it('denies a token when the module says no, with its reason', async () => {
    const issuer = `http://acme.localhost:${server.port}`;
    const res = await testFetch(`${issuer}/token`, {
      method: 'POST',
      headers: { authorization: `Basic ${Buffer.from(`${client.client_id}:${client.client_secret}`).toString('base64')}`, 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ grant_type: 'client_credentials', resource: 'https://billing.acme.test' }),
    });
    const json = (await res.json()) as any;
    expect(res.status).toBe(400);
    expect(json.error).toBe('access_denied');
    expect(json.error_description).toContain('billing');
  });

  it('answers permission checks through the configured module', async () => {
    const identity = { realmId: 'acme', issuer: 'x', clientId: client.client_id };
    expect(await server.services.authz.check(identity, 'https://api.acme.test/orders/1', 'read')).toBe(true);
    expect(await server.services.authz.check(identity, 'https://api.acme.test/orders/1', 'delete')).toBe(false);
    expect(await server.services.authz.check({ ...identity, clientId: 'blocked' }, 'https://api.acme.test/orders/1', 'read')).toBe(false);
  });

  it('the default realm is unaffected by another realm\'s API list', async () => {
    const res = await clientCredentials(server, client.client_id, client.client_secret);
    // the client belongs to realm acme, so the default realm does not know it
    expect(res.status).toBe(401);
    expect(res.json.error).toBe('invalid_client');
  });
});

describe('built-in modules', () => {
  it('static-rules denies listed clients, adds configured claims and answers grants', async () => {
    const mod = staticRulesModule({
      denyClients: ['bad'],
      accessTokenClaims: { env: 'prod' },
      grants: [
        { subject: 'user-1', resource: 'https://api.test/docs/*', permissions: ['read', 'write'] },
        { client: 'svc', resource: 'https://api.test/reports', permissions: ['read'] },
      ],
    });
    const base = { realmId: 'r', issuer: 'i', scopes: [], token: 'access_token' as const };
    expect(await mod.onIssue({ ...base, clientId: 'bad' })).toMatchObject({ allow: false });
    expect(await mod.onIssue({ ...base, clientId: 'good' })).toEqual({ allow: true, claims: { env: 'prod' } });
    expect(await mod.check({ realmId: 'r', issuer: 'i', clientId: 'x', subject: 'user-1' }, 'https://api.test/docs/42', 'write')).toBe(true);
    expect(await mod.check({ realmId: 'r', issuer: 'i', clientId: 'x', subject: 'user-2' }, 'https://api.test/docs/42', 'read')).toBe(false);
    expect(await mod.check({ realmId: 'r', issuer: 'i', clientId: 'svc' }, 'https://api.test/reports', 'read')).toBe(true);
    expect(await mod.check({ realmId: 'r', issuer: 'i', clientId: 'svc' }, 'https://api.test/reports', 'write')).toBe(false);
  });

  it('latchkey serve names a bad static-rules option in one line, not as a JSON dump', async () => {
    const cwd = mkdtempSync(join(tmpdir(), 'latchkey-authz-config-'));
    mkdirSync(join(cwd, 'config'));
    writeFileSync(join(cwd, 'config', 'latchkey.yaml'), 'authorization:\n  module: static-rules\n  options:\n    denyClient: [x]\n    grants:\n      - { resource: "https://api.acme.test/*", permissions: [] }\n');
    const res = await runCli({ DATABASE_URL: `sqlite:${join(cwd, 'db.sqlite')}`, LATCHKEY_SECRET: 'x'.repeat(40), PORT: '0' }, ['serve'], undefined, cwd);
    expect(res.code).toBe(1);
    expect(res.stdout).toBe('');
    const message = res.stderr.replace(/^oidc-provider WARNING: Unsupported runtime\..*\n/m, '').trim();
    expect(message.split('\n')).toHaveLength(1);
    expect(message).toContain('unknown configuration key "authorization.options.denyClient"');
    expect(message).toContain('configuration key "authorization.options.grants.0.permissions"');
  });

  it('names the bad key when options or module paths are wrong', async () => {
    await expect(loadAuthorizationModule({ module: 'static-rules', options: { denyClient: [] } })).rejects.toThrow(/authorization\.options/);
    await expect(loadAuthorizationModule({ module: join(dir, 'missing.mjs'), options: {} })).rejects.toThrow(/authorization\.module/);
    const noExport = join(dir, 'no-export.mjs');
    writeFileSync(noExport, 'export const x = 1;');
    await expect(loadAuthorizationModule({ module: noExport, options: {} })).rejects.toThrow(/createAuthorizationModule/);
    expect((await loadAuthorizationModule({ module: 'allow-all', options: {} })).name).toBe('allow-all');
  });
});
