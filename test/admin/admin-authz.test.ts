import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { postForm } from '../helpers/flows.js';
import { testFetch } from '../helpers/http.js';
import { startTestServer, type TestServer } from '../helpers/server.js';

// The authorization module sees every admin API request: here an operator's module that only lets
// admin callers read users.
const MODULE = `
export function createAuthorizationModule() {
  return {
    name: 'read-users-only',
    async onIssue() { return { allow: true }; },
    async check(identity, resource, permission) {
      globalThis.__adminChecks = [...(globalThis.__adminChecks ?? []), { subject: identity.subject, resource, permission }];
      return permission === 'read' && resource.startsWith('urn:latchkey:admin-api/users');
    },
  };
}`;

describe('admin API asks the authorization module about every request', () => {
  let server: TestServer;
  let dir: string;
  let token: string;
  let clientId: string;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'latchkey-authz-'));
    writeFileSync(join(dir, 'module.mjs'), MODULE);
    server = await startTestServer({ overrides: { authorization: { module: join(dir, 'module.mjs'), options: {} } } });
    const c = await server.services.clients.create({ realmId: 'default', name: 'ops', grants: ['client_credentials'], adminApi: true });
    clientId = c.client_id;
    const r = await postForm(`${server.issuer}/token`, { grant_type: 'client_credentials', resource: 'urn:latchkey:admin-api', scope: 'admin' }, { id: c.client_id, secret: c.client_secret! });
    token = r.body.access_token;
  });
  afterAll(async () => {
    await server?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('allows what the module allows and refuses the rest with a 403 naming the resource', async () => {
    const list = await testFetch(`${server.issuer}/api/v1/users`, { headers: { authorization: `Bearer ${token}` } });
    expect(list.status).toBe(200);
    const create = await testFetch(`${server.issuer}/api/v1/users`, { method: 'POST', headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' }, body: JSON.stringify({ email: 'x@y.test' }) });
    expect(create.status).toBe(403);
    const body = await create.json();
    expect(body.code).toBe('forbidden');
    expect(body.detail).toContain('urn:latchkey:admin-api/users');
    expect(await server.services.users.findByEmail('default', 'x@y.test')).toBeUndefined();
    const checks = (globalThis as any).__adminChecks as Array<{ subject: string; resource: string; permission: string }>;
    expect(checks).toEqual([
      { subject: clientId, resource: 'urn:latchkey:admin-api/users', permission: 'read' },
      { subject: clientId, resource: 'urn:latchkey:admin-api/users', permission: 'write' },
    ]);
  });
});
