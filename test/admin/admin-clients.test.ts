import { afterAll, beforeAll, expect, it } from 'vitest';
import { describeEachDatabase } from '../helpers/databases.js';
import { postForm, until } from '../helpers/flows.js';
import { testFetch } from '../helpers/http.js';
import { startTestServer, type TestServer } from '../helpers/server.js';

const ADMIN = 'urn:latchkey:admin-api';

describeEachDatabase('admin API: applications (clients)', (kind) => {
  let server: TestServer;
  let issuer: string;
  let writeToken: string;
  let readToken: string;

  const cli = async (args: string[]) => {
    const r = await server.cli(args);
    expect(r.code, `${args.join(' ')}: ${r.stderr}`).toBe(0);
    return r.json;
  };
  const token = async (client: { id: string; secret: string }, body: Record<string, string>) => postForm(`${issuer}/token`, { grant_type: 'client_credentials', ...body }, client);
  const api = async (path: string, init: { method?: string; token?: string; body?: unknown } = {}) => {
    const headers: Record<string, string> = { authorization: `Bearer ${init.token ?? writeToken}` };
    if (init.body !== undefined) headers['content-type'] = 'application/json';
    const res = await testFetch(`${issuer}/api/v1${path}`, { method: init.method ?? 'GET', headers, body: init.body === undefined ? undefined : JSON.stringify(init.body) });
    const text = await res.text();
    return { status: res.status, type: res.headers.get('content-type') ?? '', body: text ? JSON.parse(text) : undefined };
  };

  beforeAll(async () => {
    server = await startTestServer({ db: kind });
    issuer = `http://apps.localhost:${server.port}`;
    await cli(['realm', 'create', '--id', 'apps', '--name', 'Apps', '--issuer', issuer]);
    const admin = await cli(['client', 'create', '--realm', 'apps', '--name', 'Provisioning', '--grant', 'client_credentials', '--admin-api']);
    const adminClient = { id: admin.client_id, secret: admin.client_secret };
    await until(async () => ((await token(adminClient, { resource: ADMIN, scope: 'admin' })).status === 200 ? true : undefined), 'the new realm serving tokens', 15_000);
    writeToken = (await token(adminClient, { resource: ADMIN, scope: 'admin' })).body.access_token;
    readToken = (await token(adminClient, { resource: ADMIN, scope: 'admin:read' })).body.access_token;
  });
  afterAll(async () => server?.close());

  it('the OpenAPI document lists the client operations', async () => {
    const doc = await api('/openapi.json');
    const ids = Object.values(doc.body.paths as Record<string, Record<string, { operationId: string }>>).flatMap((p) => Object.values(p).map((o) => o.operationId));
    expect(ids).toEqual(expect.arrayContaining(['listClients', 'getClient', 'createClient', 'updateClient', 'rotateClientSecret', 'deleteClient']));
  });

  it('create (secret shown once), get, list, update, rotate the secret and delete, each taking effect on the server', async () => {
    const created = await api('/clients', { method: 'POST', body: { name: 'Billing', grant_types: ['client_credentials'] } });
    expect(created.status).toBe(201);
    expect(created.body).toMatchObject({ realm: 'apps', name: 'Billing', public: false, grant_types: ['client_credentials'], token_endpoint_auth_method: 'client_secret_basic' });
    const id = created.body.client_id as string;
    const secret = created.body.client_secret as string;
    expect(secret).toMatch(/^[A-Za-z0-9_-]{43}$/);
    await until(async () => ((await token({ id, secret }, {})).status === 200 ? true : undefined), 'the new client getting tokens');

    const got = await api(`/clients/${id}`, { token: readToken });
    expect(got.status).toBe(200);
    expect(got.body.client_secret).toBeUndefined();
    expect(JSON.stringify((await api('/clients', { token: readToken })).body)).not.toContain(secret);
    expect((await api('/clients', { token: readToken })).body.items.map((c: { client_id: string }) => c.client_id)).toContain(id);

    const renamed = await api(`/clients/${id}`, { method: 'PATCH', body: { name: 'Billing v2', first_party: true } });
    expect(renamed.status).toBe(200);
    expect(renamed.body).toMatchObject({ client_id: id, name: 'Billing v2', first_party: true, grant_types: ['client_credentials'] });

    const rotated = await api(`/clients/${id}/rotate-secret`, { method: 'POST' });
    expect(rotated.status).toBe(200);
    expect(rotated.body.client_secret).not.toBe(secret);
    await until(async () => ((await token({ id, secret }, {})).status === 401 ? true : undefined), 'the old secret refused');
    expect((await token({ id, secret: rotated.body.client_secret }, {})).status).toBe(200);

    const deleted = await api(`/clients/${id}`, { method: 'DELETE' });
    expect(deleted.status).toBe(204);
    await until(async () => ((await token({ id, secret: rotated.body.client_secret }, {})).status === 401 ? true : undefined), 'the deleted client refused');
    expect((await api(`/clients/${id}`)).status).toBe(404);
  });

  it('bad input is a 400 problem naming what was wrong, and nothing is written; a read-only token cannot change clients', async () => {
    const before = (await api('/clients')).body.items.length;
    const badUri = await api('/clients', { method: 'POST', body: { name: 'Bad', redirect_uris: ['http://app.test/cb#x'] } });
    expect(badUri.status).toBe(400);
    expect(badUri.type).toContain('application/problem+json');
    expect(JSON.stringify(badUri.body)).toContain('must not contain a fragment');
    const unknownField = await api('/clients', { method: 'POST', body: { name: 'Bad', client_secret: 'chosen' } });
    expect(unknownField.status).toBe(400);
    const badGrant = await api('/clients', { method: 'POST', body: { name: 'Bad', grant_types: ['password'] } });
    expect(badGrant.status).toBe(400);
    expect((await api('/clients')).body.items.length).toBe(before);

    const pub = await api('/clients', { method: 'POST', body: { name: 'SPA', public: true, redirect_uris: ['http://app.test/cb'] } });
    expect(pub.status).toBe(201);
    expect(pub.body.client_secret).toBeUndefined();
    const rotatePublic = await api(`/clients/${pub.body.client_id}/rotate-secret`, { method: 'POST' });
    expect(rotatePublic.status).toBe(400);
    expect(JSON.stringify(rotatePublic.body)).toContain('is a public client');
    const emptyUris = await api(`/clients/${pub.body.client_id}`, { method: 'PATCH', body: { redirect_uris: [] } });
    expect(emptyUris.status).toBe(400);
    expect(emptyUris.body.errors).toEqual([{ field: 'body.redirect_uris', message: 'the authorization_code grant needs at least one redirect URI' }]);
    expect((await api(`/clients/${pub.body.client_id}`)).body.redirect_uris).toEqual(['http://app.test/cb']);

    const readOnly = await api(`/clients/${pub.body.client_id}`, { method: 'DELETE', token: readToken });
    expect(readOnly.status).toBe(403);
    expect((await api(`/clients/${pub.body.client_id}`)).status).toBe(200);
    expect((await api('/clients/no-such-client')).status).toBe(404);
  });

  it('a back-channel logout URI: set on creation, shown, refused when not a web URL, removed with null', async () => {
    const uri = 'https://billing.example.test/backchannel-logout';
    const created = await api('/clients', { method: 'POST', body: { name: 'Billing web', redirect_uris: ['https://billing.example.test/cb'], backchannel_logout_uri: uri } });
    expect(created.status).toBe(201);
    expect(created.body.backchannel_logout_uri).toBe(uri);
    const id = created.body.client_id as string;
    expect((await api(`/clients/${id}`, { token: readToken })).body.backchannel_logout_uri).toBe(uri);

    const bad = await api(`/clients/${id}`, { method: 'PATCH', body: { backchannel_logout_uri: 'javascript:alert(1)' } });
    expect(bad.status).toBe(400);
    expect(bad.type).toMatch(/problem\+json/);
    expect(JSON.stringify(bad.body)).toMatch(/back-channel logout URI/);
    expect((await api(`/clients/${id}`, { token: readToken })).body.backchannel_logout_uri).toBe(uri);

    const removed = await api(`/clients/${id}`, { method: 'PATCH', body: { backchannel_logout_uri: null } });
    expect(removed.status).toBe(200);
    expect(removed.body.backchannel_logout_uri).toBeUndefined();
    expect((await api(`/clients/${id}`, { token: readToken })).body.backchannel_logout_uri).toBeUndefined();
  });

  it('a front-channel logout URI: set on creation with its session flag, shown, refused when not a web URL (nothing written), removed with null', async () => {
    const uri = 'https://billing.example.test/frontchannel-logout?from=idp';
    const before = (await api('/clients', { token: readToken })).body.items.length;
    for (const bad of ['not a url', 'javascript:alert(1)', `${uri}#frag`]) {
      const refused = await api('/clients', { method: 'POST', body: { name: 'Billing web', redirect_uris: ['https://billing.example.test/cb'], frontchannel_logout_uri: bad } });
      expect(refused.status, bad).toBe(400);
      expect(refused.type).toMatch(/problem\+json/);
      expect(refused.body.errors[0].field, bad).toBe('body.frontchannel_logout_uri');
      expect(refused.body.errors[0].message, bad).toMatch(/front-channel logout URI/);
    }
    const orphan = await api('/clients', { method: 'POST', body: { name: 'Billing web', redirect_uris: ['https://billing.example.test/cb'], frontchannel_logout_session_required: false } });
    expect(orphan.status).toBe(400);
    expect(orphan.body.errors[0].field).toBe('body.frontchannel_logout_session_required');
    expect(orphan.body.errors[0].message).toMatch(/frontchannel_logout_uri/);
    expect((await api('/clients', { token: readToken })).body.items.length).toBe(before);

    const created = await api('/clients', { method: 'POST', body: { name: 'Billing web', redirect_uris: ['https://billing.example.test/cb'], frontchannel_logout_uri: uri } });
    expect(created.status).toBe(201);
    expect(created.body).toMatchObject({ frontchannel_logout_uri: uri, frontchannel_logout_session_required: true });
    const id = created.body.client_id as string;
    expect((await api(`/clients/${id}`, { token: readToken })).body).toMatchObject({ frontchannel_logout_uri: uri, frontchannel_logout_session_required: true });
    const listed = (await api('/clients', { token: readToken })).body.items.find((c: { client_id: string }) => c.client_id === id);
    expect(listed).toMatchObject({ frontchannel_logout_uri: uri, frontchannel_logout_session_required: true });

    const bad = await api(`/clients/${id}`, { method: 'PATCH', body: { frontchannel_logout_uri: 'javascript:alert(1)', frontchannel_logout_session_required: false } });
    expect(bad.status).toBe(400);
    expect(bad.body.errors[0].field).toBe('body.frontchannel_logout_uri');
    expect((await api(`/clients/${id}`, { token: readToken })).body).toMatchObject({ frontchannel_logout_uri: uri, frontchannel_logout_session_required: true });

    const noSession = await api(`/clients/${id}`, { method: 'PATCH', body: { frontchannel_logout_session_required: false } });
    expect(noSession.status).toBe(200);
    expect(noSession.body).toMatchObject({ frontchannel_logout_uri: uri, frontchannel_logout_session_required: false });

    const removed = await api(`/clients/${id}`, { method: 'PATCH', body: { frontchannel_logout_uri: null } });
    expect(removed.status).toBe(200);
    expect(removed.body.frontchannel_logout_uri).toBeUndefined();
    expect(removed.body.frontchannel_logout_session_required).toBeUndefined();
    const got = (await api(`/clients/${id}`, { token: readToken })).body;
    expect(got.frontchannel_logout_uri).toBeUndefined();
    expect(got.frontchannel_logout_session_required).toBeUndefined();
  });
});
