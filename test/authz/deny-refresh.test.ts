import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as oidc from 'openid-client';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { describeEachDatabase } from '../helpers/databases.js';
import { discover, PASSWORD, postForm, signIn } from '../helpers/flows.js';
import { Browser } from '../helpers/http.js';
import { startTestServer, type TestServer } from '../helpers/server.js';

const REDIRECT = 'http://app.example.test/callback';
const dir = mkdtempSync(join(tmpdir(), 'latchkey-authz-refresh-'));
const modulePath = join(dir, 'module.mjs');
// The operator's module refuses tokens while a file exists: `deny-all` refuses every token (the access
// token is the first asked for), `deny-id-tokens` only ID tokens (asked for once the access token is saved).
writeFileSync(
  modulePath,
  `import { existsSync } from 'node:fs';
  import { join } from 'node:path';
  export function createAuthorizationModule(options) {
    return {
      name: 'on-and-off',
      async onIssue(identity) {
        if (existsSync(join(options.dir, 'deny-all'))) return { allow: false, reason: 'refused by the on-and-off module' };
        if (identity.token === 'id_token' && existsSync(join(options.dir, 'deny-id-tokens'))) return { allow: false, reason: 'no ID tokens from the on-and-off module' };
        return { allow: true };
      },
      async check() { return false; },
    };
  }`,
);
afterAll(() => rmSync(dir, { recursive: true, force: true }));

// node-oidc-provider consumes (rotates) the refresh token before it issues the new tokens; the module's
// "no" came after that, so the refused request had used the token up and the retry, once the module
// allowed again, was taken for a replayed refresh token: invalid_grant, and the whole grant revoked.
describeEachDatabase('a refresh the authorization module refuses leaves the refresh token usable', (kind) => {
  let server: TestServer;
  let client: { id: string; secret: string };
  let config: oidc.Configuration;

  beforeAll(async () => {
    server = await startTestServer({ db: kind, overrides: { authorization: { module: modulePath, options: { dir } } } });
    const created = await server.cli(['client', 'create', '--realm', 'default', '--name', 'App', '--redirect-uri', REDIRECT, '--first-party']);
    expect(created.code, created.stderr).toBe(0);
    client = { id: created.json.client_id, secret: created.json.client_secret };
    const user = await server.cli(['user', 'create', '--realm', 'default', '--email', 'ada@example.test', '--password-stdin'], `${PASSWORD}\n`);
    expect(user.code, user.stderr).toBe(0);
    config = await discover(server.issuer, client.id, { client_secret: client.secret });
  });
  afterAll(async () => {
    await server?.close();
  });

  const refresh = (refreshToken: string) => postForm(`${server.issuer}/token`, { grant_type: 'refresh_token', refresh_token: refreshToken }, client);

  /** The stored tokens of the realm: a refused refresh adds none (nobody received them) and spends none. */
  const stored = async () => {
    const rows = (await server.services.db('oidc_payloads').where({ realm_id: 'default' }).whereIn('model', ['RefreshToken', 'AccessToken']).select('model', 'id', 'consumed_at')) as Array<{ model: string; id: string; consumed_at: unknown }>;
    return rows.map((r) => `${r.model}:${r.id}:${r.consumed_at === null ? 'usable' : 'consumed'}`).sort();
  };

  async function refusedWhile(file: string, refreshToken: string): Promise<{ status: number; body: any }> {
    writeFileSync(join(dir, file), '');
    try {
      return await refresh(refreshToken);
    } finally {
      rmSync(join(dir, file), { force: true });
    }
  }

  for (const [file, reason] of [
    ['deny-all', 'refused by the on-and-off module'],
    ['deny-id-tokens', 'no ID tokens from the on-and-off module'],
  ] as const) {
    it(`${file}: the refusal is access_denied with the module's reason, and the same refresh token works once the module allows`, async () => {
      const tokens = await signIn(new Browser(), config, REDIRECT, 'ada@example.test', { scope: 'openid offline_access' });
      expect(tokens.refresh_token).toBeTruthy();

      const before = await stored();
      const refused = await refusedWhile(file, tokens.refresh_token!);
      expect(refused.status, JSON.stringify(refused.body)).toBe(400);
      expect(refused.body.error).toBe('access_denied');
      expect(refused.body.error_description).toContain(reason);
      expect(refused.body.access_token).toBeUndefined();
      expect(refused.body.refresh_token).toBeUndefined();
      expect(await stored()).toEqual(before);

      // the retry is an ordinary refresh, not a replay
      const retried = await refresh(tokens.refresh_token!);
      expect(retried.status, JSON.stringify(retried.body)).toBe(200);
      expect(retried.body.access_token).toBeTruthy();
      expect(retried.body.id_token).toBeTruthy();
      expect(retried.body.refresh_token).toBeTruthy();
      expect(retried.body.refresh_token).not.toBe(tokens.refresh_token);

      // and the grant lives on: the new refresh token refreshes, its access token is active
      const next = await refresh(retried.body.refresh_token);
      expect(next.status, JSON.stringify(next.body)).toBe(200);
      const introspected = await postForm(`${server.issuer}/token/introspection`, { token: next.body.access_token }, client);
      expect(introspected.body.active).toBe(true);

      // rotation is unchanged: the refresh token used by the successful retry is spent
      const replay = await refresh(tokens.refresh_token!);
      expect(replay.status).toBe(400);
      expect(replay.body.error).toBe('invalid_grant');
    });
  }
});
