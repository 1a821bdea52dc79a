import { expect } from 'vitest';
import { postForm } from './flows.js';
import { testFetch } from './http.js';
import type { TestServer } from './server.js';

/** The admin API's resource indicator. */
export const ADMIN_API = 'urn:latchkey:admin-api';

/** A new client of the default realm with `--admin-api`, and an admin API token it got with client_credentials. */
export async function adminToken(server: TestServer, name = 'ops'): Promise<{ clientId: string; token: string }> {
  const c = await server.services.clients.create({ realmId: 'default', name, grants: ['client_credentials'], adminApi: true });
  const r = await postForm(`${server.issuer}/token`, { grant_type: 'client_credentials', resource: ADMIN_API, scope: 'admin' }, { id: c.client_id, secret: c.client_secret! });
  expect(r.status, JSON.stringify(r.body)).toBe(200);
  return { clientId: c.client_id, token: r.body.access_token as string };
}

/** A call to the admin API (`/api/v1` + `path`) with `token` and a JSON body if any: the status, the content type and the parsed body. */
export async function adminApi(server: TestServer, token: string, path: string, init: { method?: string; body?: unknown } = {}): Promise<{ status: number; type: string; body: any }> {
  const headers: Record<string, string> = { authorization: `Bearer ${token}` };
  if (init.body !== undefined) headers['content-type'] = 'application/json';
  const res = await testFetch(`${server.issuer}/api/v1${path}`, { method: init.method ?? 'GET', headers, body: init.body === undefined ? undefined : JSON.stringify(init.body) });
  const text = await res.text();
  return { status: res.status, type: res.headers.get('content-type') ?? '', body: text ? JSON.parse(text) : undefined };
}
