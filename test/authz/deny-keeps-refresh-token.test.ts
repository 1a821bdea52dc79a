import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type * as oidc from 'openid-client';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { describeEachDatabase } from '../helpers/databases.js';
import { discover, PASSWORD, postForm, signIn } from '../helpers/flows.js';
import { Browser } from '../helpers/http.js';
import { startTestServer, type TestServer } from '../helpers/server.js';

const REDIRECT = 'http://app.example.test/callback';

// A denial refuses one token request. node-oidc-provider rotates the refresh token before it formats
// the access token (where the module is asked): without care, the denied request used up the refresh
// token, its successor was never handed out, and presenting the old one again counted as reuse, which
// revokes the whole grant: one "no" (or one failure of the module) signed the user out for good.
describeEachDatabase('a refresh_token request the authorization module denies leaves the refresh token usable', (kind) => {
  let server: TestServer;
  let dir: string;
  let denyFile: string;
  let client: { id: string; secret: string };
  let config: oidc.Configuration;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'latchkey-authz-refresh-'));
    denyFile = join(dir, 'deny');
    writeFileSync(
      join(dir, 'module.mjs'),
      `import { existsSync } from 'node:fs';
      export function createAuthorizationModule(options) {
        return {
          name: 'maintenance-window',
          async onIssue(identity) {
            if (existsSync(options.denyFile)) return { allow: false, reason: 'no tokens during the maintenance window' };
            return { allow: true };
          },
          async check() { return false; },
        };
      }`,
    );
    server = await startTestServer({ db: kind, overrides: { authorization: { module: join(dir, 'module.mjs'), options: { denyFile } } } });
    const created = await server.cli(['client', 'create', '--realm', 'default', '--name', 'App', '--redirect-uri', REDIRECT, '--first-party']);
    expect(created.code, created.stderr).toBe(0);
    client = { id: created.json.client_id, secret: created.json.client_secret };
    const user = await server.cli(['user', 'create', '--realm', 'default', '--email', 'ada@example.test', '--password-stdin'], `${PASSWORD}\n`);
    expect(user.code, user.stderr).toBe(0);
    config = await discover(server.issuer, client.id, { client_secret: client.secret });
  });
  afterAll(async () => {
    await server?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('denied: access_denied naming the reason; allowed again: the same refresh token gives tokens', async () => {
    const tokens = await signIn(new Browser(), config, REDIRECT, 'ada@example.test', { scope: 'openid offline_access' });
    const refresh = () => postForm(`${server.issuer}/token`, { grant_type: 'refresh_token', refresh_token: tokens.refresh_token! }, client);

    writeFileSync(denyFile, '');
    try {
      const denied = await refresh();
      expect(denied.status, JSON.stringify(denied.body)).toBe(400);
      expect(denied.body.error).toBe('access_denied');
      expect(denied.body.error_description).toContain('maintenance window');
      expect(denied.body.refresh_token).toBeUndefined();
    } finally {
      rmSync(denyFile, { force: true });
    }

    const again = await refresh();
    expect(again.status, JSON.stringify(again.body)).toBe(200);
    expect(again.body.access_token).toBeTruthy();
    expect(again.body.id_token).toBeTruthy();
    // and the rotation goes on from there as usual
    const next = await postForm(`${server.issuer}/token`, { grant_type: 'refresh_token', refresh_token: again.body.refresh_token }, client);
    expect(next.status, JSON.stringify(next.body)).toBe(200);
  });
});
