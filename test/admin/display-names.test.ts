import { afterAll, beforeAll, expect, it } from 'vitest';
import { mapClaims } from '../../src/connections/upstream.js';
import { adminApi, adminToken } from '../helpers/admin-api.js';
import { describeEachDatabase } from '../helpers/databases.js';
import { startTestServer, type TestServer } from '../helpers/server.js';

// a client called "Bank" followed by a right-to-left override: "Bank\u202Eelgoog" shows as "Bankgoogle"
const OVERRIDE = 'Bank\u202Eelgoog';
const BAD_NAMES: Array<[string, RegExp]> = [
  [OVERRIDE, /text-direction/],
  ['Pay\u2066Pal\u2069', /text-direction/],
  ['Line\nbreak', /control characters/],
  ['Esc\u001b[31m', /control characters/],
  ['C1\u0085', /control characters/],
  ['\u200b\u200b', /visible characters/],
  ['x'.repeat(201), /at most 200 characters/],
];

describeEachDatabase('names shown on the pages: control, text-direction and invisible characters are refused everywhere a name enters', (kind) => {
  let server: TestServer;
  let token: string;
  let userId: string;
  const count = async (table: string) => Number(((await server.services.db(table).count({ n: '*' })) as Array<{ n: number | string }>)[0]!.n);

  const api = (path: string, init: { method?: string; body?: unknown } = {}) => adminApi(server, token, path, init);

  beforeAll(async () => {
    server = await startTestServer({ db: kind });
    ({ token } = await adminToken(server));
    const u = await api('/users', { method: 'POST', body: { email: 'ada@example.test', name: 'Ada' } });
    expect(u.status, JSON.stringify(u.body)).toBe(201);
    userId = u.body.id;
    expect((await api('/tenants', { method: 'POST', body: { id: 'acme', display_name: 'Acme' } })).status).toBe(201);
  });
  afterAll(async () => server?.close());

  it('admin API: a 400 problem naming the body field, and nothing written', async () => {
    const before = { clients: await count('clients'), tenants: await count('tenants'), connections: await count('connections'), users: await count('users') };
    const clientId = (await api('/clients')).body.items[0].client_id;
    for (const [bad, reason] of BAD_NAMES) {
      const cases: Array<[string, string, unknown, string]> = [
        ['POST', '/clients', { name: bad, grant_types: ['client_credentials'] }, 'body.name'],
        ['PATCH', `/clients/${clientId}`, { name: bad }, 'body.name'],
        ['POST', '/tenants', { id: 'globex', display_name: bad }, 'body.display_name'],
        ['PATCH', '/tenants/acme', { display_name: bad }, 'body.display_name'],
        ['POST', '/connections', { id: 'gh', preset: 'github', client_id: 'x', name: bad }, 'body.name'],
        ['POST', '/users', { email: 'eve@example.test', name: bad }, 'body.name'],
        ['PATCH', `/users/${userId}`, { name: bad }, 'body.name'],
      ];
      for (const [method, path, body, field] of cases) {
        const res = await api(path, { method, body });
        const what = `${method} ${path} ${JSON.stringify(body)}: ${JSON.stringify(res.body)}`;
        expect(res.status, what).toBe(400);
        expect(res.type, what).toContain('application/problem+json');
        expect(res.body.code, what).toBe('invalid_input');
        expect(res.body.errors.map((e: { field: string }) => e.field), what).toContain(field);
        expect(res.body.detail, what).toContain(field);
        // the 201-character name is the schema's refusal (it names its own limit); the others the name rule's
        if (bad.length <= 200) expect(res.body.detail, what).toMatch(reason);
      }
    }
    expect({ clients: await count('clients'), tenants: await count('tenants'), connections: await count('connections'), users: await count('users') }).toEqual(before);
    expect((await api(`/clients/${clientId}`)).body.name).toBe('ops');
    expect((await api('/tenants/acme')).body.display_name).toBe('Acme');
    expect((await api(`/users/${userId}`)).body.name).toBe('Ada');
    // a name is trimmed, and a blank user name clears it
    expect((await api('/tenants/acme', { method: 'PATCH', body: { display_name: '  Acme Inc  ' } })).body.display_name).toBe('Acme Inc');
    expect((await api(`/users/${userId}`, { method: 'PATCH', body: { name: '   ' } })).body.name).toBeNull();
    // names in any script, with emoji and joiners inside, are fine
    const fine = await api('/clients', { method: 'POST', body: { name: 'مرحبا 👩‍💻 Café', grant_types: ['client_credentials'] } });
    expect(fine.status, JSON.stringify(fine.body)).toBe(201);
    expect(fine.body.name).toBe('مرحبا 👩‍💻 Café');
  });

  it('CLI: exit code 1 and an error naming the flag, and nothing written', async () => {
    const before = { clients: await count('clients'), tenants: await count('tenants'), connections: await count('connections'), users: await count('users'), realms: await count('realms') };
    const clientId = (await api('/clients')).body.items[0].client_id;
    const cases: string[][] = [
      ['client', 'create', '--realm', 'default', '--name', OVERRIDE, '--grant', 'client_credentials'],
      ['client', 'update', '--realm', 'default', '--client-id', clientId, '--name', OVERRIDE],
      ['tenant', 'create', '--realm', 'default', '--id', 'globex', '--name', OVERRIDE],
      ['tenant', 'update', '--realm', 'default', '--id', 'acme', '--name', OVERRIDE],
      ['connection', 'create', '--realm', 'default', '--id', 'gh', '--preset', 'github', '--client-id', 'x', '--name', OVERRIDE],
      ['realm', 'create', '--id', 'other', '--issuer', `http://other.localhost:${server.port}`, '--name', OVERRIDE],
      ['user', 'create', '--realm', 'default', '--email', 'eve@example.test', '--name', OVERRIDE],
    ];
    for (const args of cases) {
      const res = await server.cli(args);
      expect(res.code, `${args.join(' ')}: ${res.stdout}`).toBe(1);
      expect(res.stdout).toBe('');
      expect(res.stderr, args.join(' ')).toMatch(/--name: must not contain (text-direction )?control characters/);
      expect(res.stderr).not.toMatch(/^\s+at /m);
    }
    expect({ clients: await count('clients'), tenants: await count('tenants'), connections: await count('connections'), users: await count('users'), realms: await count('realms') }).toEqual(before);
  });

  it('a name stored before the rule does not block changes that leave it alone (CLI and admin API)', async () => {
    // rows an older release let in, written straight into the database
    const STORED = 'Old\tname\u202E';
    const client = await server.services.clients.create({ realmId: 'default', name: 'legacy', grants: ['client_credentials'] });
    const row = await server.services.db('clients').where({ realm_id: 'default', client_id: client.client_id }).first();
    const metadata = { ...JSON.parse(row.metadata), client_name: STORED };
    await server.services.db('clients').where({ realm_id: 'default', client_id: client.client_id }).update({ name: STORED, metadata: JSON.stringify(metadata) });
    await server.services.tenants.create('default', { id: 'legacy', displayName: 'legacy' });
    await server.services.db('tenants').where({ realm_id: 'default', id: 'legacy' }).update({ display_name: STORED });
    await server.services.connections.create({ realmId: 'default', id: 'legacy', preset: 'github', clientId: 'x' });
    await server.services.db('connections').where({ realm_id: 'default', id: 'legacy' }).update({ display_name: STORED });
    const user = await api('/users', { method: 'POST', body: { email: 'legacy@example.test', name: 'legacy' } });
    await server.services.db('users').where({ id: user.body.id }).update({ name: STORED });

    const cli = async (args: string[]) => {
      const res = await server.cli(args);
      expect(res.code, `${args.join(' ')}: ${res.stderr}`).toBe(0);
      return JSON.parse(res.stdout);
    };
    expect((await cli(['client', 'update', '--realm', 'default', '--client-id', client.client_id, '--first-party'])).first_party).toBe(true);
    expect((await cli(['tenant', 'update', '--realm', 'default', '--id', 'legacy', '--sso-enforced'])).sso_enforced).toBe(true);
    await cli(['connection', 'disable', '--realm', 'default', '--id', 'legacy']);
    await cli(['user', 'disable', '--realm', 'default', '--email', 'legacy@example.test']);

    const patched = async (path: string, body: unknown) => {
      const res = await api(path, { method: 'PATCH', body });
      expect(res.status, `PATCH ${path}: ${JSON.stringify(res.body)}`).toBe(200);
      return res.body;
    };
    expect((await patched(`/clients/${client.client_id}`, { first_party: false })).first_party).toBe(false);
    expect((await patched('/tenants/legacy', { sso_enforced: false })).sso_enforced).toBe(false);
    expect((await patched('/connections/legacy', { enabled: true })).enabled).toBe(true);
    expect((await patched(`/users/${user.body.id}`, { disabled: false })).disabled).toBe(false);

    // the stored names stay as they were; setting one is still checked
    expect((await api(`/clients/${client.client_id}`)).body.name).toBe(STORED);
    expect((await api('/tenants/legacy')).body.display_name).toBe(STORED);
    expect((await api(`/users/${user.body.id}`)).body.name).toBe(STORED);
    expect((await api(`/clients/${client.client_id}`, { method: 'PATCH', body: { name: STORED } })).status).toBe(400);
    expect((await api('/tenants/legacy', { method: 'PATCH', body: { display_name: STORED } })).status).toBe(400);
    await server.services.clients.delete('default', client.client_id);
    await server.services.tenants.delete('default', 'legacy');
    await server.services.connections.remove('default', 'legacy');
  });

  it("an upstream provider's name that would not show as the text it holds is dropped, not stored", () => {
    const mapping = { sub: 'sub', name: 'name' };
    expect(mapClaims({ sub: '1', name: OVERRIDE }, mapping).name).toBeUndefined();
    expect(mapClaims({ sub: '1', name: 'Ada\r\nLovelace' }, mapping).name).toBeUndefined();
    expect(mapClaims({ sub: '1', name: ' Ada Lovelace ' }, mapping).name).toBe('Ada Lovelace');
  });
});
