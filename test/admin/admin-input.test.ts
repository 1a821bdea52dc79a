import { afterAll, beforeAll, expect, it } from 'vitest';
import { adminApi, adminToken } from '../helpers/admin-api.js';
import { describeEachDatabase } from '../helpers/databases.js';
import { PASSWORD } from '../helpers/flows.js';
import { testFetch } from '../helpers/http.js';
import { startTestServer, type TestServer } from '../helpers/server.js';

describeEachDatabase('admin API: input the storage cannot hold is a 400 naming the field', (kind) => {
  let server: TestServer;
  let token: string;
  let userId: string;

  const api = (path: string, init: { method?: string; body?: unknown } = {}) => adminApi(server, token, path, init);

  beforeAll(async () => {
    server = await startTestServer({ db: kind });
    ({ token } = await adminToken(server));
    const u = await server.cli(['user', 'create', '--realm', 'default', '--email', 'ada@example.test', '--password-stdin'], `${PASSWORD}\n`);
    expect(u.code, u.stderr).toBe(0);
    userId = u.json.id;
  });
  afterAll(async () => server?.close());

  // PostgreSQL's text cannot hold U+0000: each of these was a 500 there (and some were stored on SQLite)
  it('a NUL character in a path id, a query value or a body string', async () => {
    const cases: Array<[string, string, unknown, string]> = [
      ['GET', '/users/a%00b', undefined, 'path.userId'],
      ['GET', '/tenants/%00', undefined, 'path.tenantId'],
      ['GET', '/clients/%00', undefined, 'path.clientId'],
      ['GET', '/connections/%00', undefined, 'path.connectionId'],
      ['GET', '/trusted-identities/%00', undefined, 'path.trustedIdentityId'],
      ['GET', '/users?email=a%00@example.test', undefined, 'query.email'],
      ['GET', '/users?tenantId=%00', undefined, 'query.tenantId'],
      ['POST', '/clients', { name: 'Billing\u0000', grant_types: ['client_credentials'] }, 'body.name'],
      ['POST', '/clients', { name: 'Web', redirect_uris: ['https://app.test/cb\u0000'] }, 'body.redirect_uris[0]'],
      ['POST', '/tenants', { id: 'globex', display_name: 'Globex\u0000' }, 'body.display_name'],
      ['POST', '/connections', { id: 'gh', preset: 'github', client_id: 'gh\u0000client' }, 'body.client_id'],
      ['POST', '/connections', { id: 'gh2', preset: 'github', client_id: 'x', name: 'GitHub\u0000' }, 'body.name'],
      ['PATCH', `/users/${userId}`, { name: 'Ada\u0000' }, 'body.name'],
    ];
    for (const [method, path, body, field] of cases) {
      const res = await api(path, { method, body });
      expect(res.status, `${method} ${path} ${JSON.stringify(body)}: ${JSON.stringify(res.body)}`).toBe(400);
      expect(res.type).toContain('application/problem+json');
      expect(res.body.code).toBe('invalid_input');
      expect(res.body.errors.map((e: { field: string }) => e.field)).toContain(field);
      expect(res.body.detail).toContain('NUL');
    }
    // nothing was written
    expect((await api('/clients')).body.items.map((c: { name: string }) => c.name)).toEqual(['ops']);
    expect((await api('/tenants')).body.items).toEqual([]);
    expect((await api('/connections')).body.items).toEqual([]);
    expect((await api(`/users/${userId}`)).body.name).toBeNull();
  });

  it('an unpaired surrogate in a body string or key is a 400 naming the field; a pair (an emoji) is fine', async () => {
    const cases: Array<[string, string, unknown, string]> = [
      ['POST', '/users', { email: 'a\ud800@example.test' }, 'body.email'],
      ['POST', '/users', { email: 'b@example.test', name: 'Ada \udc00' }, 'body.name'],
      ['POST', '/tenants', { id: 'globex', display_name: 'Globex \ud83d' }, 'body.display_name'],
      ['POST', '/connections', { id: 'gh', preset: 'github', client_id: 'x', claims: { '\ud800': 'id' } }, 'body.claims."\\ud800"'],
      ['PATCH', `/users/${userId}`, { name: 'Ada\udfff' }, 'body.name'],
    ];
    for (const [method, path, body, field] of cases) {
      const res = await api(path, { method, body });
      const what = `${method} ${path} ${JSON.stringify(body)}: ${JSON.stringify(res.body)}`;
      expect(res.status, what).toBe(400);
      expect(res.body.code, what).toBe('invalid_input');
      expect(res.body.errors.map((e: { field: string }) => e.field), what).toContain(field);
      expect(res.body.detail, what).toContain('unpaired surrogate');
    }
    expect(await server.services.users.findByEmail('default', 'b@example.test')).toBeUndefined();
    expect((await api('/tenants/globex')).status).toBe(404);
    const fine = await api('/tenants', { method: 'POST', body: { id: 'emoji', display_name: 'Emoji \ud83d\ude00' } });
    expect(fine.status, JSON.stringify(fine.body)).toBe(201);
    expect(fine.body.display_name).toBe('Emoji \u{1F600}');
    expect((await api('/tenants/emoji', { method: 'DELETE' })).status).toBe(204);
  });

  it('a body over the size limit is a 413 in problem+json, like every other admin API error', async () => {
    const res = await testFetch(`${server.issuer}/api/v1/users`, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      body: JSON.stringify({ email: 'big@example.test', name: 'x'.repeat(70_000) }),
    });
    const body = (await res.json()) as any;
    expect(res.status).toBe(413);
    expect(res.headers.get('content-type')).toContain('application/problem+json');
    expect(body).toMatchObject({ status: 413, code: 'request_too_large' });
    expect(body.detail).toMatch(/65536 bytes/);
    expect(await server.services.users.findByEmail('default', 'big@example.test')).toBeUndefined();
  });

  it('the same id created by several requests at once: one 201, the others a 409, never a 500', async () => {
    const count = async (table: string, where: Record<string, unknown>) => Number(((await server.services.db(table).where(where).count({ n: '*' })) as Array<{ n: number | string }>)[0]!.n);
    const cases: Array<[string, unknown, string, Record<string, unknown>]> = [
      ['/tenants', { id: 'race', display_name: 'Race' }, 'tenants', { id: 'race' }],
      ['/trusted-identities', { issuer: 'https://ci.race.test', audience: 'race', id: 'race' }, 'trusted_issuers', { id: 'race' }],
      // the same issuer and audience under different ids
      ['/trusted-identities', { issuer: 'https://ci2.race.test', audience: 'race' }, 'trusted_issuers', { issuer: 'https://ci2.race.test' }],
      ['/connections', { id: 'race', preset: 'github', client_id: 'x' }, 'connections', { id: 'race' }],
      ['/users', { email: 'race@example.test' }, 'users', { email: 'race@example.test' }],
    ];
    for (const [path, body, table, where] of cases) {
      const answers = await Promise.all(Array.from({ length: 6 }, () => api(path, { method: 'POST', body })));
      const what = `POST ${path}: ${answers.map((a) => `${a.status} ${a.body?.detail ?? ''}`).join(' | ')}`;
      expect(answers.map((a) => a.status).sort(), what).toEqual([201, 409, 409, 409, 409, 409]);
      for (const a of answers.filter((x) => x.status === 409)) expect(a.body.detail, what).toMatch(/already|at the same time/);
      expect(await count(table, where), path).toBe(1);
    }
  });
});
