import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type * as oidc from 'openid-client';
import { expect } from 'vitest';
import { discover, until } from './flows.js';
import { testFetch } from './http.js';
import type { TestServer } from './server.js';

/**
 * A new realm `id` of the test server at http://<id>.localhost:<port>, with `settings` (given to `realm
 * create --settings` through a file), and a first-party client of it redirecting to `redirect`. Waits
 * until the server serves the realm; returns its issuer and the client's openid-client configuration.
 */
export async function realmWithApp(server: TestServer, options: { id: string; name: string; settings: Record<string, unknown>; redirect: string }): Promise<{ issuer: string; config: oidc.Configuration }> {
  const dir = mkdtempSync(join(tmpdir(), `latchkey-${options.id}-`));
  writeFileSync(join(dir, 'settings.json'), JSON.stringify(options.settings));
  const issuer = `http://${options.id}.localhost:${server.port}`;
  const realm = await server.cli(['realm', 'create', '--id', options.id, '--name', options.name, '--issuer', issuer, '--settings', join(dir, 'settings.json')]);
  expect(realm.code, realm.stderr).toBe(0);
  const client = await server.cli(['client', 'create', '--realm', options.id, '--name', 'App', '--redirect-uri', options.redirect, '--first-party']);
  expect(client.code, client.stderr).toBe(0);
  await until(async () => ((await testFetch(`${issuer}/.well-known/openid-configuration`)).status === 200 ? true : undefined), `realm ${options.id}`);
  return { issuer, config: await discover(issuer, client.json.client_id, { client_secret: client.json.client_secret }) };
}
