import { afterAll, beforeAll, expect, it } from 'vitest';
import { describeEachDatabase } from '../helpers/databases.js';
import { PASSWORD, postForm } from '../helpers/flows.js';
import { testFetch } from '../helpers/http.js';
import { startTestServer, type TestServer } from '../helpers/server.js';

const ADMIN = 'urn:latchkey:admin-api';

describeEachDatabase('admin API: authentication, users, pagination, problem+json', (kind) => {
  let server: TestServer;
  let issuer: string;
  let otherIssuer: string;
  let writeToken: string;
  let readToken: string;
  let plain: { id: string; secret: string };
  let otherRealmToken: string;

  const cli = async (args: string[], stdin?: string) => {
    const r = await server.cli(args, stdin);
    expect(r.code, `${args.join(' ')}: ${r.stderr}`).toBe(0);
    return r.json;
  };
  const clientToken = async (base: string, client: { id: string; secret: string }, scope: string) => {
    const r = await postForm(`${base}/token`, { grant_type: 'client_credentials', resource: ADMIN, scope }, client);
    expect(r.status, JSON.stringify(r.body)).toBe(200);
    return r.body.access_token as string;
  };
  const api = async (path: string, init: { method?: string; token?: string; body?: unknown; base?: string } = {}) => {
    const headers: Record<string, string> = {};
    if (init.token) headers.authorization = `Bearer ${init.token}`;
    if (init.body !== undefined) headers['content-type'] = 'application/json';
    const res = await testFetch(`${init.base ?? issuer}/api/v1${path}`, { method: init.method ?? 'GET', headers, body: init.body === undefined ? undefined : JSON.stringify(init.body) });
    const text = await res.text();
    return { status: res.status, type: res.headers.get('content-type') ?? '', headers: res.headers, body: text ? JSON.parse(text) : undefined };
  };

  beforeAll(async () => {
    server = await startTestServer({ db: kind });
    issuer = `http://corp.localhost:${server.port}`;
    otherIssuer = `http://other.localhost:${server.port}`;
    await cli(['realm', 'create', '--id', 'corp', '--name', 'Corp', '--issuer', issuer]);
    await cli(['realm', 'create', '--id', 'other', '--name', 'Other', '--issuer', otherIssuer]);
    const admin = await cli(['client', 'create', '--realm', 'corp', '--name', 'Provisioning', '--grant', 'client_credentials', '--admin-api']);
    expect(admin.admin_api).toBe(true);
    const adminClient = { id: admin.client_id, secret: admin.client_secret };
    writeToken = await clientToken(issuer, adminClient, 'admin');
    readToken = await clientToken(issuer, adminClient, 'admin:read');
    const p = await cli(['client', 'create', '--realm', 'corp', '--name', 'Plain service', '--grant', 'client_credentials']);
    plain = { id: p.client_id, secret: p.client_secret };
    const o = await cli(['client', 'create', '--realm', 'other', '--name', 'Other admin', '--grant', 'client_credentials', '--admin-api']);
    otherRealmToken = await clientToken(otherIssuer, { id: o.client_id, secret: o.client_secret }, 'admin');
    for (const name of ['erin', 'bob', 'dave', 'carol', 'alice']) {
      await cli(['user', 'create', '--realm', 'corp', '--email', `${name}@corp.test`, '--name', name, '--password-stdin'], `${PASSWORD}\n`);
    }
  });
  afterAll(async () => {
    await server?.close();
  });

  it('serves an OpenAPI 3.1 document describing every operation', async () => {
    const res = await api('/openapi.json');
    expect(res.status).toBe(200);
    expect(res.body.openapi).toBe('3.1.0');
    expect(res.body.servers[0].url).toBe(`${issuer}/api/v1`);
    const ops = Object.values(res.body.paths as Record<string, Record<string, any>>).flatMap((p) => Object.values(p));
    expect(ops.map((o) => o.operationId)).toEqual(expect.arrayContaining(['listUsers', 'getUser', 'createUser', 'updateUser']));
    const list = res.body.paths['/users'].get;
    expect(list.parameters.map((p: any) => p.name)).toEqual(expect.arrayContaining(['tenantId', 'email', 'limit', 'cursor', 'sort']));
    expect(list.responses['400'].content['application/problem+json']).toBeDefined();
    expect(res.body.paths['/users'].post.requestBody.content['application/json'].schema.required).toContain('email');
  });

  it('refuses requests without a valid admin token, with problem+json', async () => {
    const none = await api('/users');
    expect(none.status).toBe(401);
    expect(none.type).toContain('application/problem+json');
    expect(none.headers.get('www-authenticate')).toMatch(/^Bearer /);
    expect(none.body).toMatchObject({ status: 401, code: 'invalid_token' });

    const garbage = await api('/users', { token: 'not-a-jwt' });
    expect(garbage.status).toBe(401);
    expect(garbage.body.detail).toMatch(/not a JWT/);

    // a token of another realm, even one for the admin API, does not open this realm
    const foreign = await api('/users', { token: otherRealmToken });
    expect(foreign.status).toBe(401);

    // a tampered token
    const [h, p, s] = writeToken.split('.');
    const claims = JSON.parse(Buffer.from(p!, 'base64url').toString());
    const forged = `${h}.${Buffer.from(JSON.stringify({ ...claims, scope: 'admin', sub: 'someone-else' })).toString('base64url')}.${s}`;
    expect((await api('/users', { token: forged })).status).toBe(401);
  });

  it('gives admin API tokens only to clients registered for the admin API', async () => {
    const r = await postForm(`${issuer}/token`, { grant_type: 'client_credentials', resource: ADMIN, scope: 'admin' }, plain);
    expect(r.status).toBe(400);
    expect(r.body.error).toBe('invalid_target');
    expect(r.body.error_description).toContain('not registered for the admin API');
    // the description goes to an OAuth client: it names no CLI flag
    expect(r.body.error_description).not.toMatch(/--[a-z]/);
    // and a token for another API is not an admin token
    const ordinary = await postForm(`${issuer}/token`, { grant_type: 'client_credentials' }, plain);
    expect(ordinary.status).toBe(200);
    const res = await api('/users', { token: ordinary.body.access_token });
    expect(res.status).toBe(401);
  });

  it('pages through users with an opaque cursor, in a stable order, without gaps or repeats', async () => {
    const seen: string[] = [];
    let cursor: string | null = null;
    let pages = 0;
    do {
      const res: any = await api(`/users?limit=2&sort=email${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`, { token: readToken });
      expect(res.status).toBe(200);
      expect(res.body.items.length).toBeLessThanOrEqual(2);
      seen.push(...res.body.items.map((u: any) => u.email));
      cursor = res.body.next_cursor;
      pages += 1;
    } while (cursor && pages < 10);
    expect(pages).toBe(3);
    expect(seen).toEqual(['alice', 'bob', 'carol', 'dave', 'erin'].map((n) => `${n}@corp.test`));

    const desc = await api('/users?sort=-email&limit=3', { token: readToken });
    expect(desc.body.items.map((u: any) => u.name)).toEqual(['erin', 'dave', 'carol']);
    const next = await api(`/users?sort=-email&limit=3&cursor=${encodeURIComponent(desc.body.next_cursor)}`, { token: readToken });
    expect(next.body.items.map((u: any) => u.name)).toEqual(['bob', 'alice']);
    expect(next.body.next_cursor).toBeNull();

    const byEmail = await api('/users?email=CAROL@corp.test', { token: readToken });
    expect(byEmail.body.items).toHaveLength(1);
    expect(byEmail.body.items[0]).toMatchObject({ email: 'carol@corp.test', name: 'carol', disabled: false });
    expect(byEmail.body.items[0]).not.toHaveProperty('password_hash');
  });

  it('answers bad queries with a 400 that names the parameter', async () => {
    const limit = await api('/users?limit=0', { token: readToken });
    expect(limit.status).toBe(400);
    expect(limit.type).toContain('application/problem+json');
    expect(limit.body.errors.map((e: any) => e.field)).toContain('query.limit');

    const cursor = await api('/users?cursor=bogus', { token: readToken });
    expect(cursor.status).toBe(400);
    expect(cursor.body.errors[0].field).toBe('query.cursor');

    const first = await api('/users?limit=1&sort=email', { token: readToken });
    const mixed = await api(`/users?sort=-created_at&cursor=${encodeURIComponent(first.body.next_cursor)}`, { token: readToken });
    expect(mixed.status).toBe(400);
    expect(mixed.body.detail).toMatch(/another sort order/);

    const unknown = await api('/users?colour=blue', { token: readToken });
    expect(unknown.status).toBe(400);
    expect(unknown.body.detail).toMatch(/colour/);

    expect((await api('/nothing-here', { token: readToken })).status).toBe(404);
    const wrongMethod = await api('/users', { method: 'DELETE', token: writeToken });
    expect(wrongMethod.status).toBe(405);
    expect(wrongMethod.headers.get('allow')).toBe('GET, POST');
  });

  it('answers a path parameter that is not valid percent-encoding with a 400 naming it, not a 500', async () => {
    for (const [method, path, field] of [['GET', '/users/%E0%A4%A', 'path.userId'], ['GET', '/tenants/%ZZ', 'path.tenantId'], ['PUT', '/tenants/acme/members/%', 'path.userId']] as const) {
      const res = await api(path, { method, token: method === 'GET' ? readToken : writeToken });
      expect(res.status, `${path}: ${JSON.stringify(res.body)}`).toBe(400);
      expect(res.type).toContain('application/problem+json');
      expect(res.body.errors.map((e: any) => e.field)).toContain(field);
    }
  });

  it('creates, reads and disables users; writes need the admin scope', async () => {
    const denied = await api('/users', { method: 'POST', token: readToken, body: { email: 'frank@corp.test' } });
    expect(denied.status).toBe(403);
    expect(denied.body.code).toBe('insufficient_scope');

    const bad = await api('/users', { method: 'POST', token: writeToken, body: { email: 42, nickname: 'x' } });
    expect(bad.status).toBe(400);
    const fields = bad.body.errors.map((e: any) => e.field);
    expect(fields).toContain('body.email');
    expect(bad.body.detail).toMatch(/nickname/);

    const weak = await api('/users', { method: 'POST', token: writeToken, body: { email: 'frank@corp.test', password: 'password' } });
    expect(weak.status).toBe(400);
    expect((await api('/users?email=frank@corp.test', { token: readToken })).body.items).toHaveLength(0);

    const created = await api('/users', { method: 'POST', token: writeToken, body: { email: 'frank@corp.test', name: 'Frank', password: PASSWORD } });
    expect(created.status).toBe(201);
    expect(created.body).toMatchObject({ email: 'frank@corp.test', name: 'Frank', disabled: false });

    const dup = await api('/users', { method: 'POST', token: writeToken, body: { email: 'FRANK@corp.test' } });
    expect(dup.status).toBe(409);

    const got = await api(`/users/${created.body.id}`, { token: readToken });
    expect(got.body.id).toBe(created.body.id);
    const patched = await api(`/users/${created.body.id}`, { method: 'PATCH', token: writeToken, body: { disabled: true } });
    expect(patched.status).toBe(200);
    expect(patched.body.disabled).toBe(true);
    expect((await server.services.users.findById('corp', created.body.id))?.disabled).toBe(true);

    expect((await api('/users/no-such-user', { token: readToken })).status).toBe(404);
    const notJson = await testFetch(`${issuer}/api/v1/users`, { method: 'POST', headers: { authorization: `Bearer ${writeToken}`, 'content-type': 'text/plain' }, body: 'hi' });
    expect(notJson.status).toBe(415);
  });

  it('manages connections without ever returning their secret', async () => {
    const created = await api('/connections', { method: 'POST', token: writeToken, body: { id: 'github', preset: 'github', client_id: 'gh-client', client_secret: 's3cret-value' } });
    expect(created.status, JSON.stringify(created.body)).toBe(201);
    expect(created.body).toMatchObject({ id: 'github', preset: 'github', type: 'oauth2', has_client_secret: true, redirect_uris: [`${issuer}/connections/callback`] });
    expect(JSON.stringify(created.body)).not.toContain('s3cret-value');

    const incomplete = await api('/connections', { method: 'POST', token: writeToken, body: { id: 'plain', type: 'oauth2', client_id: 'x' } });
    expect(incomplete.status).toBe(400);
    expect(incomplete.body.detail).toMatch(/endpoint/i);
    // the service's complaints name the API's fields, as the schema's do; the CLI names its flags instead
    expect(incomplete.body.detail).toContain('body.token_endpoint: is required for an oauth2 connection');
    expect(incomplete.body.detail).not.toMatch(/tokenEndpoint|--token-endpoint/);
    expect(incomplete.body.errors.map((e: any) => e.field)).toEqual(['body.authorization_endpoint', 'body.token_endpoint', 'body.userinfo_endpoint', 'body.claims.sub']);
    const badScope = await api('/connections', { method: 'POST', token: writeToken, body: { id: 'plain', type: 'oidc', issuer: 'https://idp.example.com', client_id: 'x', scopes: ['openid', 'a b'], tenants: ['nowhere'] } });
    expect(badScope.status).toBe(400);
    expect(badScope.body.errors).toEqual([{ field: 'body.scopes[1]', message: expect.stringContaining('printable ASCII') }]);
    const noTenant = await api('/connections', { method: 'POST', token: writeToken, body: { id: 'plain', preset: 'google', client_id: 'x', tenants: ['nowhere'] } });
    expect(noTenant.body.errors).toEqual([{ field: 'body.tenants', message: expect.stringContaining('no tenant "nowhere"') }]);
    expect(noTenant.body.detail).not.toContain('--tenant');
    const badBody = await api('/connections', { method: 'POST', token: writeToken, body: { id: 'x', preset: 'myspace', client_id: 'x' } });
    expect(badBody.status).toBe(400);
    expect(badBody.body.errors.map((e: any) => e.field)).toContain('body.preset');
    expect((await api('/connections', { method: 'POST', token: writeToken, body: { id: 'github', preset: 'github', client_id: 'again' } })).status).toBe(409);

    const list = await api('/connections', { token: readToken });
    expect(list.body.items.map((c: any) => c.id)).toEqual(['github']);
    expect((await api('/connections/github', { token: readToken })).body.client_id).toBe('gh-client');
    const off = await api('/connections/github', { method: 'PATCH', token: writeToken, body: { enabled: false } });
    expect(off.status).toBe(200);
    expect(off.body.enabled).toBe(false);
    expect((await api('/connections/github', { method: 'PATCH', token: writeToken, body: { enabled: 'no' } })).body.errors[0].field).toBe('body.enabled');
    expect((await api('/connections/github', { method: 'DELETE', token: readToken })).status).toBe(403);
    const removed = await api('/connections/github', { method: 'DELETE', token: writeToken });
    expect(removed.status).toBe(204);
    expect((await api('/connections/github', { token: readToken })).status).toBe(404);
  });

  it('manages tenants and their members; users filter by tenant', async () => {
    const bad = await api('/tenants', { method: 'POST', token: writeToken, body: { id: 'globex', display_name: 'Globex', domains: ['not a domain'] } });
    expect(bad.status).toBe(400);
    expect(bad.body.detail).toMatch(/not a domain/);
    expect(bad.body.errors).toEqual([{ field: 'body.domains', message: expect.stringContaining('"not a domain" is not a valid email domain') }]);
    const badColour = await api('/tenants', { method: 'POST', token: writeToken, body: { id: 'globex', display_name: 'Globex', branding: { primaryColor: 'red' } } });
    expect(badColour.body.errors).toEqual([{ field: 'body.branding.primaryColor', message: expect.stringContaining('colour') }]);
    const blankName = await api('/tenants', { method: 'POST', token: writeToken, body: { id: 'globex', display_name: ' ' } });
    expect(blankName.body.detail).toContain('body.display_name: is required');
    expect(blankName.body.detail).not.toContain('displayName');
    expect((await api('/tenants/globex', { token: readToken })).status).toBe(404);

    const missingName = await api('/tenants', { method: 'POST', token: writeToken, body: { id: 'globex' } });
    expect(missingName.status).toBe(400);
    expect(missingName.body.errors.map((e: any) => e.field)).toContain('body.display_name');

    const created = await api('/tenants', { method: 'POST', token: writeToken, body: { id: 'globex', display_name: 'Globex', domains: ['Globex.test'], sso_enforced: false } });
    expect(created.status, JSON.stringify(created.body)).toBe(201);
    expect(created.body).toMatchObject({ id: 'globex', display_name: 'Globex', domains: ['globex.test'], sso_enforced: false });
    expect((await api('/tenants', { method: 'POST', token: writeToken, body: { id: 'globex', display_name: 'Again' } })).status).toBe(409);

    const users = (await api('/users?sort=email', { token: readToken })).body.items;
    const bob = users.find((u: any) => u.name === 'bob');
    const dave = users.find((u: any) => u.name === 'dave');
    expect((await api(`/tenants/globex/members/${bob.id}`, { method: 'PUT', token: writeToken })).status).toBe(200);
    expect((await api(`/tenants/globex/members/${bob.id}`, { method: 'PUT', token: writeToken })).status).toBe(200);
    expect((await api(`/tenants/globex/members/${dave.id}`, { method: 'PUT', token: writeToken })).status).toBe(200);
    expect((await api('/tenants/globex/members/no-such-user', { method: 'PUT', token: writeToken })).status).toBe(404);

    const members = await api('/users?tenantId=globex&sort=email', { token: readToken });
    expect(members.body.items.map((u: any) => u.name)).toEqual(['bob', 'dave']);
    const page1 = await api('/users?tenantId=globex&sort=email&limit=1', { token: readToken });
    const page2 = await api(`/users?tenantId=globex&sort=email&limit=1&cursor=${encodeURIComponent(page1.body.next_cursor)}`, { token: readToken });
    expect([page1.body.items[0].name, page2.body.items[0].name]).toEqual(['bob', 'dave']);
    expect(page2.body.next_cursor).toBeNull();
    expect((await api('/users?tenantId=initech', { token: readToken })).status).toBe(404);

    expect((await api(`/tenants/globex/members/${bob.id}`, { method: 'DELETE', token: writeToken })).status).toBe(204);
    expect((await api('/users?tenantId=globex', { token: readToken })).body.items.map((u: any) => u.name)).toEqual(['dave']);

    const patched = await api('/tenants/globex', { method: 'PATCH', token: writeToken, body: { sso_enforced: true, branding: { primaryColor: '#123456' } } });
    expect(patched.body).toMatchObject({ sso_enforced: true, branding: { primaryColor: '#123456' }, domains: ['globex.test'] });
    expect((await api('/tenants', { token: readToken })).body.items.map((t: any) => t.id)).toEqual(['globex']);
    expect((await api('/tenants/globex', { method: 'DELETE', token: writeToken })).status).toBe(204);
    expect((await api('/tenants', { token: readToken })).body.items).toEqual([]);
  });

  it('does not serve one realm\'s users on another realm\'s domain', async () => {
    const res = await api('/users', { base: otherIssuer, token: otherRealmToken });
    expect(res.status).toBe(200);
    expect(res.body.items).toEqual([]);
  });
});
