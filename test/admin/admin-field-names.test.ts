import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { postForm } from '../helpers/flows.js';
import { testFetch } from '../helpers/http.js';
import { startTestServer, type TestServer } from '../helpers/server.js';

/**
 * The admin API and the CLI share the services' checks. A refusal names what the caller typed: the
 * JSON field of the request body for the API (never a CLI flag), the flag for the CLI.
 */
describe('refusals name the JSON field to the admin API and the flag to the CLI', () => {
  let server: TestServer;
  let token: string;

  const api = async (path: string, method: string, body: unknown) => {
    const res = await testFetch(`${server.issuer}/api/v1${path}`, { method, headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' }, body: JSON.stringify(body) });
    return { status: res.status, body: (await res.json()) as { detail: string; errors?: Array<{ field: string; message: string }> } };
  };
  const count = async (table: string) => Number(((await server.services.db(table).count({ n: '*' })) as Array<{ n: number | string }>)[0]!.n);
  /** An unsigned JWT: a sample token's signature is not checked at registration. */
  const sample = (claims: Record<string, unknown>) =>
    [{ alg: 'RS256', typ: 'JWT' }, claims].map((part) => Buffer.from(JSON.stringify(part)).toString('base64url')).join('.') + '.c2ln';

  beforeAll(async () => {
    server = await startTestServer({ db: 'sqlite' });
    const c = await server.services.clients.create({ realmId: 'default', name: 'bootstrap', grants: ['client_credentials'], adminApi: true });
    const r = await postForm(`${server.issuer}/token`, { grant_type: 'client_credentials', resource: 'urn:latchkey:admin-api', scope: 'admin' }, { id: c.client_id, secret: c.client_secret! });
    expect(r.status, JSON.stringify(r.body)).toBe(200);
    token = r.body.access_token;
  });
  afterAll(async () => server?.close());

  const CB = 'https://app.example.test/cb';
  // [API body, the API's field and fields it mentions, CLI args, the CLI's flag and flags it mentions]
  const clientCases: Array<{ body: Record<string, unknown>; field: string; mentions: string[]; args: string[]; flag: string; flagMentions: string[] }> = [
    { body: { name: 'A', redirect_uris: [CB, 'ftp://files.example.test/cb'] }, field: 'body.redirect_uris[1]', mentions: ['body.native'], args: ['--redirect-uri', CB, '--redirect-uri', 'ftp://files.example.test/cb'], flag: '--redirect-uri', flagMentions: ['--native'] },
    { body: { name: 'A', redirect_uris: [CB], post_logout_redirect_uris: ['https://app.example.test/out#x'] }, field: 'body.post_logout_redirect_uris[0]', mentions: [], args: ['--redirect-uri', CB, '--post-logout-redirect-uri', 'https://app.example.test/out#x'], flag: '--post-logout-redirect-uri', flagMentions: [] },
    { body: { name: 'A', redirect_uris: [CB], admin_api: true }, field: 'body.grant_types', mentions: ['body.admin_api'], args: ['--redirect-uri', CB, '--admin-api'], flag: '--grant', flagMentions: ['--admin-api'] },
    { body: { name: 'A', grant_types: ['refresh_token'] }, field: 'body.grant_types', mentions: [], args: ['--grant', 'refresh_token'], flag: '--grant', flagMentions: [] },
    { body: { name: 'A', grant_types: ['authorization_code'] }, field: 'body.redirect_uris', mentions: [], args: ['--grant', 'authorization_code'], flag: '--redirect-uri', flagMentions: [] },
    { body: { name: 'A', native: true, token_endpoint_auth_method: 'client_secret_post', redirect_uris: ['http://127.0.0.1/cb'] }, field: 'body.token_endpoint_auth_method', mentions: ['body.native'], args: ['--native', '--auth-method', 'client_secret_post', '--redirect-uri', 'http://127.0.0.1/cb'], flag: '--auth-method', flagMentions: ['--native'] },
    { body: { name: 'A', grant_types: ['client_credentials'], token_endpoint_auth_method: 'private_key_jwt' }, field: 'body.jwks', mentions: ['body.jwks_uri'], args: ['--grant', 'client_credentials', '--auth-method', 'private_key_jwt'], flag: '--jwks', flagMentions: ['--jwks-uri'] },
    { body: { name: 'A', grant_types: ['client_credentials'], token_endpoint_auth_method: 'private_key_jwt', jwks_uri: 'https://app.example.test/jwks', jwks: { keys: [] } }, field: 'body.jwks', mentions: ['body.jwks_uri'], args: ['--grant', 'client_credentials', '--auth-method', 'private_key_jwt', '--jwks-uri', 'https://app.example.test/jwks', '--jwks', '{"keys":[]}'], flag: '--jwks', flagMentions: ['--jwks-uri'] },
    { body: { name: 'A', grant_types: ['client_credentials'], jwks_uri: 'not a url' }, field: 'body.jwks_uri', mentions: [], args: ['--grant', 'client_credentials', '--jwks-uri', 'not a url'], flag: '--jwks-uri', flagMentions: [] },
    { body: { name: 'A', redirect_uris: [CB], scope: 'openid payments' }, field: 'body.scope', mentions: [], args: ['--redirect-uri', CB, '--scope', 'openid payments'], flag: '--scope', flagMentions: [] },
    { body: { name: '   ', redirect_uris: [CB] }, field: 'body.name', mentions: [], args: ['--redirect-uri', CB, '--name', '   '], flag: '--name', flagMentions: [] },
  ];

  it('client create: each refusal names the body field (and the fields it mentions), never a flag; nothing is written', async () => {
    const before = await count('clients');
    for (const c of clientCases) {
      const res = await api('/clients', 'POST', c.body);
      const what = `${JSON.stringify(c.body)}: ${JSON.stringify(res.body)}`;
      expect(res.status, what).toBe(400);
      expect(res.body.errors?.map((e) => e.field), what).toEqual([c.field]);
      expect(res.body.detail, what).toMatch(new RegExp(`^${c.field.replace(/[[\].]/g, '\\$&')}: `));
      for (const m of c.mentions) expect(res.body.detail, what).toContain(m);
      expect(res.body.detail, what).not.toMatch(/--[a-z]/);
    }
    expect(await count('clients')).toBe(before);
  });

  it('client create on the CLI: the same refusals name the flags', async () => {
    const before = await count('clients');
    for (const c of clientCases) {
      const args = c.args.includes('--name') ? c.args : ['--name', 'A', ...c.args];
      const res = await server.cli(['client', 'create', '--realm', 'default', ...args]);
      const what = `${args.join(' ')}: ${res.stderr}`;
      expect(res.code, what).toBe(1);
      expect(res.stderr, what).toMatch(new RegExp(`^latchkey client: ${c.flag}: `));
      for (const m of c.flagMentions) expect(res.stderr, what).toContain(m);
      expect(res.stderr, what).not.toMatch(/body\.|_uris|grant_types|token_endpoint_auth_method/);
    }
    expect(await count('clients')).toBe(before);
  });

  it('client update: the API names body fields, the CLI its flags', async () => {
    const app = await server.services.clients.create({ realmId: 'default', name: 'Shop', redirectUris: [CB] });
    const emptied = await api(`/clients/${app.client_id}`, 'PATCH', { redirect_uris: [] });
    expect(emptied.status).toBe(400);
    expect(emptied.body.errors).toEqual([{ field: 'body.redirect_uris', message: 'the authorization_code grant needs at least one redirect URI' }]);
    const adminApi = await api(`/clients/${app.client_id}`, 'PATCH', { admin_api: true });
    expect(adminApi.status).toBe(400);
    expect(adminApi.body.detail).toBe('body.grant_types: an admin API client (body.admin_api) needs the client_credentials grant');

    const cli = await server.cli(['client', 'update', '--realm', 'default', '--client-id', app.client_id, '--admin-api']);
    expect(cli.code, cli.stderr).toBe(1);
    expect(cli.stderr).toBe('latchkey client: --grant: an admin API client (--admin-api) needs the client_credentials grant\n');
    expect((await server.services.clients.get('default', app.client_id)).redirect_uris).toEqual([CB]);
  });

  it('trusted identities: the API names sample_token and audience, the CLI --sample-token-stdin and --audience', async () => {
    const noAud = sample({ iss: 'https://ci.example.test', sub: 'job' });
    const api1 = await api('/trusted-identities', 'POST', { sample_token: noAud });
    expect(api1.status).toBe(400);
    expect(api1.body.detail).toBe('body.sample_token: the sample token has no "aud" claim: give body.audience');
    const cli1 = await server.cli(['trust', 'add', '--realm', 'default', '--sample-token-stdin'], noAud);
    expect(cli1.stderr).toBe('latchkey trust: --sample-token-stdin: the sample token has no "aud" claim: give --audience\n');

    const twoAuds = sample({ iss: 'https://ci.example.test', sub: 'job', aud: ['a', 'b'] });
    const api2 = await api('/trusted-identities', 'POST', { sample_token: twoAuds });
    expect(api2.body.errors).toEqual([{ field: 'body.audience', message: 'the sample token has several audiences (a, b): choose one with body.audience' }]);
    const cli2 = await server.cli(['trust', 'add', '--realm', 'default', '--sample-token-stdin'], twoAuds);
    expect(cli2.stderr).toBe('latchkey trust: --audience: the sample token has several audiences (a, b): choose one with --audience\n');

    const api3 = await api('/trusted-identities', 'POST', { issuer: 'https://ci.example.test' });
    expect(api3.body.detail).toBe('body.audience: the audience is required: give a sample token (body.sample_token) or body.issuer and body.audience');
    expect(await count('trusted_issuers')).toBe(0);
  });
});
