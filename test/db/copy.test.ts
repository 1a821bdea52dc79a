/**
 * `latchkey db copy`: a deployment that started on the embedded SQLite file moves to PostgreSQL. The
 * server is stopped, the file copied into a new PostgreSQL database, and a server on PostgreSQL with the
 * same secret serves the same realm: the browser's session, the refresh token, the signing keys and the
 * users all carry over.
 */
import { randomBytes } from 'node:crypto';
import * as oidc from 'openid-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { migrate, migrationConfig, openDatabase } from '../../src/db/knex.js';
import { freshDatabase, postgresReachable, type TestDatabase } from '../helpers/databases.js';
import { authorizationRequest, discover, exchangeCode, PASSWORD, postForm, signIn } from '../helpers/flows.js';
import { Browser, testFetch } from '../helpers/http.js';
import { freePort, runCli, startTestServer, type TestServer } from '../helpers/server.js';

const REDIRECT = 'http://app.example.test/callback';
const EMAIL = 'grace@example.test';
const pgUp = await postgresReachable();

(pgUp ? describe : describe.skip)('latchkey db copy: from SQLite to PostgreSQL', () => {
  let sqlite: TestDatabase;
  let postgres: TestDatabase;
  let server: TestServer | undefined;
  const secret = randomBytes(32).toString('base64url');
  let port: number;

  beforeAll(async () => {
    sqlite = await freshDatabase('sqlite');
    postgres = await freshDatabase('postgres');
    port = await freePort();
  });
  afterAll(async () => {
    await server?.close();
    await sqlite?.drop();
    await postgres?.drop();
  });

  it('carries sessions, refresh tokens, keys, clients and users over; the copy refuses a non-empty target', async () => {
    server = await startTestServer({ database: sqlite, port, secret });
    const client = await server.cli(['client', 'create', '--realm', 'default', '--name', 'App', '--redirect-uri', REDIRECT, '--first-party']);
    expect(client.code, client.stderr).toBe(0);
    const machine = await server.cli(['client', 'create', '--realm', 'default', '--name', 'Worker', '--grant', 'client_credentials']);
    expect(machine.code, machine.stderr).toBe(0);
    expect((await server.cli(['user', 'create', '--realm', 'default', '--email', EMAIL, '--password-stdin'], `${PASSWORD}\n`)).code).toBe(0);
    const issuer = server.issuer;
    const config = await discover(issuer, client.json.client_id, { client_secret: client.json.client_secret });
    const browser = new Browser();
    const first = await signIn(browser, config, REDIRECT, EMAIL, { scope: 'openid email offline_access' });
    expect(first.refresh_token).toBeTruthy();
    const kids = ((await (await testFetch(`${issuer}/jwks`)).json()) as { keys: Array<{ kid: string }> }).keys.map((k) => k.kid).sort();
    await server.services.db('security_events').insert({ realm_id: 'default', user_id: null, type: 'test_event', detail: '{}', created_at: Date.now() });
    const events = Number(((await server.services.db('security_events').max({ id: 'id' })) as Array<{ id: number }>)[0]!.id);
    await server.close();
    server = undefined;

    const env = { DATABASE_URL: sqlite.url, LATCHKEY_SECRET: secret };
    const copied = await runCli(env, ['db', 'copy', '--to', postgres.url]);
    expect(copied.code, copied.stderr).toBe(0);
    expect(copied.json.tables).toMatchObject({ realms: 1, users: 1, clients: 2, signing_keys: kids.length });
    expect(copied.json.tables.oidc_payloads).toBeGreaterThan(0);
    expect(copied.json.rows).toBe(Object.values(copied.json.tables as Record<string, number>).reduce((a, b) => a + b, 0));
    expect(copied.stderr).toContain('latchkey db copy: users: 1 of 1 row');

    // a second copy into the same database is refused and changes nothing
    const again = await runCli(env, ['db', 'copy', '--to', postgres.url]);
    expect(again.code).toBe(1);
    expect(again.stderr).toContain('the target database is not empty');
    expect(again.stdout).toBe('');

    server = await startTestServer({ database: postgres, port, secret });
    expect(server.services.db.client.config.client).toBe('pg');
    expect(((await (await testFetch(`${issuer}/jwks`)).json()) as { keys: Array<{ kid: string }> }).keys.map((k) => k.kid).sort()).toEqual(kids);
    // the same browser is still signed in: straight back to the application with a code
    const auth = await authorizationRequest(config, REDIRECT, { scope: 'openid email' });
    const back = await browser.follow(auth.url, {}, REDIRECT);
    expect(back.url.href.startsWith(REDIRECT), `ended at ${back.url.href}`).toBe(true);
    expect((await exchangeCode(config, auth, back.url)).claims()!.sub).toBe(first.claims()!.sub);
    // the refresh token works, the client secret and the user's password too
    const refreshed = await oidc.refreshTokenGrant(config, first.refresh_token!);
    expect((await oidc.fetchUserInfo(config, refreshed.access_token, first.claims()!.sub)).email).toBe(EMAIL);
    const cc = await postForm(`${issuer}/token`, { grant_type: 'client_credentials' }, { id: machine.json.client_id, secret: machine.json.client_secret });
    expect(cc.status, JSON.stringify(cc.body)).toBe(200);
    expect((await server.services.users.verifyPassword('default', EMAIL, PASSWORD)).ok).toBe(true);
    // PostgreSQL's serial column continues after the copied rows
    const [row] = (await server.services.db('security_events').insert({ realm_id: 'default', user_id: null, type: 'after_copy', detail: '{}', created_at: Date.now() }).returning('id')) as Array<{ id: number }>;
    expect(Number(row!.id)).toBeGreaterThan(events);
  });

  it('refuses a source that lacks migrations, and a URL that is not a database, writing nothing', async () => {
    const old = await freshDatabase('sqlite');
    const target = await freshDatabase('sqlite');
    try {
      const db = openDatabase(old.url);
      await migrate(db);
      await db.migrate.down(migrationConfig());
      await db.destroy();
      const env = { DATABASE_URL: old.url, LATCHKEY_SECRET: secret };
      const res = await runCli(env, ['db', 'copy', '--to', target.url]);
      expect(res.code).toBe(1);
      expect(res.stderr).toContain('the source database lacks 1 migration');
      expect(res.stderr).toContain('run latchkey migrate against it first');
      const bad = await runCli(env, ['db', 'copy', '--to', 'mysql://nowhere/x']);
      expect(bad.code).toBe(2);
      expect(bad.stderr).toContain('--to must be a database URL, sqlite:PATH or postgres://');
      const self = await runCli(env, ['db', 'copy', '--to', old.url]);
      expect(self.code).toBe(2);
      expect(self.stderr).toContain('--to names the source database itself');
      const tdb = openDatabase(target.url);
      try {
        expect(await tdb.schema.hasTable('users')).toBe(false);
      } finally {
        await tdb.destroy();
      }
    } finally {
      await old.drop();
      await target.drop();
    }
  });
});
