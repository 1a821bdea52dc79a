import { afterAll, beforeAll, expect, it } from 'vitest';
import { describeEachDatabase } from '../helpers/databases.js';
import { postForm } from '../helpers/flows.js';
import { testFetch } from '../helpers/http.js';
import { startTestServer, type TestServer } from '../helpers/server.js';

const ADMIN = 'urn:latchkey:admin-api';

// An admin token is a JWT that lives for the client_credentials TTL (an hour by default). The admin API is
// this server's own resource server: it knows at once when the client behind a token is gone.
describeEachDatabase('admin API: a token stops opening the admin API once its client is deleted or loses --admin-api', (kind) => {
  let server: TestServer;
  let owner: string;

  const adminToken = async () => {
    const c = await server.services.clients.create({ realmId: 'default', name: 'ops', grants: ['client_credentials'], adminApi: true });
    const r = await postForm(`${server.issuer}/token`, { grant_type: 'client_credentials', resource: ADMIN, scope: 'admin' }, { id: c.client_id, secret: c.client_secret! });
    expect(r.status, JSON.stringify(r.body)).toBe(200);
    return { clientId: c.client_id, token: r.body.access_token as string };
  };
  const api = async (token: string, path: string, init: { method?: string; body?: unknown } = {}) => {
    const headers: Record<string, string> = { authorization: `Bearer ${token}` };
    if (init.body !== undefined) headers['content-type'] = 'application/json';
    const res = await testFetch(`${server.issuer}/api/v1${path}`, { method: init.method ?? 'GET', headers, body: init.body === undefined ? undefined : JSON.stringify(init.body) });
    const text = await res.text();
    return { status: res.status, body: text ? JSON.parse(text) : undefined };
  };

  beforeAll(async () => {
    server = await startTestServer({ db: kind });
    owner = (await adminToken()).token;
  });
  afterAll(async () => server?.close());

  it('a deleted client\'s token is refused with 401', async () => {
    const leaked = await adminToken();
    expect((await api(leaked.token, '/users')).status).toBe(200);
    expect((await api(owner, `/clients/${leaked.clientId}`, { method: 'DELETE' })).status).toBe(204);
    const after = await api(leaked.token, '/users');
    expect(after.status, JSON.stringify(after.body)).toBe(401);
    expect(after.body.code).toBe('invalid_token');
    expect(after.body.detail).toContain(leaked.clientId);
    expect((await api(leaked.token, '/clients', { method: 'POST', body: { name: 'backdoor', grant_types: ['client_credentials'], admin_api: true } })).status).toBe(401);
    expect((await api(owner, '/clients')).body.items.map((c: { name: string }) => c.name)).not.toContain('backdoor');
  });

  it('a client whose admin_api was switched off is refused with 403', async () => {
    const demoted = await adminToken();
    expect((await api(demoted.token, '/users')).status).toBe(200);
    const patched = await api(owner, `/clients/${demoted.clientId}`, { method: 'PATCH', body: { admin_api: false } });
    expect(patched.status, JSON.stringify(patched.body)).toBe(200);
    const after = await api(demoted.token, '/users');
    expect(after.status, JSON.stringify(after.body)).toBe(403);
    expect(after.body.detail).toContain('admin API');
    // an admin API caller is told the body field it can change, not a CLI flag
    expect(after.body.detail).toContain('admin_api');
    expect(after.body.detail).not.toMatch(/--[a-z]/);
  });
});
