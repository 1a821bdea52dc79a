import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PASSWORD, postForm } from '../helpers/flows.js';
import { testFetch } from '../helpers/http.js';
import { startTestServer, type TestServer } from '../helpers/server.js';

// An operator's module that keeps admin callers away from named resources (here: one user).
const MODULE = `
export function createAuthorizationModule() {
  return {
    name: 'deny-listed-resources',
    async onIssue() { return { allow: true }; },
    async check(identity, resource) {
      globalThis.__checkedResources = [...(globalThis.__checkedResources ?? []), resource];
      return !(globalThis.__deniedResources ?? []).includes(resource);
    },
  };
}`;

/** The same path with every character of the id percent-encoded: the same user to the route. */
const encodeAll = (id: string) => [...Buffer.from(id)].map((b) => `%${b.toString(16).toUpperCase().padStart(2, '0')}`).join('');

describe('admin API: the authorization module is asked about the resource the operation acts on, in one spelling', () => {
  let server: TestServer;
  let dir: string;
  let token: string;
  let vip: string;

  const api = async (path: string, init: { method?: string; body?: unknown } = {}) => {
    const headers: Record<string, string> = { authorization: `Bearer ${token}` };
    if (init.body !== undefined) headers['content-type'] = 'application/json';
    const res = await testFetch(`${server.issuer}/api/v1${path}`, { method: init.method ?? 'GET', headers, body: init.body === undefined ? undefined : JSON.stringify(init.body) });
    const text = await res.text();
    return { status: res.status, body: text ? JSON.parse(text) : undefined };
  };

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'latchkey-authz-resource-'));
    writeFileSync(join(dir, 'module.mjs'), MODULE);
    server = await startTestServer({ overrides: { authorization: { module: join(dir, 'module.mjs'), options: {} } } });
    const c = await server.services.clients.create({ realmId: 'default', name: 'ops', grants: ['client_credentials'], adminApi: true });
    const r = await postForm(`${server.issuer}/token`, { grant_type: 'client_credentials', resource: 'urn:latchkey:admin-api', scope: 'admin' }, { id: c.client_id, secret: c.client_secret! });
    token = r.body.access_token;
    const u = await server.cli(['user', 'create', '--realm', 'default', '--email', 'vip@example.test', '--password-stdin'], `${PASSWORD}\n`);
    expect(u.code, u.stderr).toBe(0);
    vip = u.json.id;
    (globalThis as any).__deniedResources = [`urn:latchkey:admin-api/users/${vip}`];
  });
  afterAll(async () => {
    await server?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('a percent-encoded spelling of a denied id is the same resource: refused, and nothing changes', async () => {
    expect((await api(`/users/${vip}`)).status).toBe(403);

    (globalThis as any).__checkedResources = [];
    const read = await api(`/users/${encodeAll(vip)}`);
    expect(read.status, JSON.stringify(read.body)).toBe(403);
    expect(read.body.email).toBeUndefined();
    const write = await api(`/users/${encodeAll(vip)}`, { method: 'PATCH', body: { disabled: true } });
    expect(write.status, JSON.stringify(write.body)).toBe(403);
    expect((await server.services.users.findById('default', vip))?.disabled).toBe(false);
    // the module was shown the id as the operation reads it
    expect((globalThis as any).__checkedResources).toEqual([`urn:latchkey:admin-api/users/${vip}`, `urn:latchkey:admin-api/users/${vip}`]);
  });
});
