import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freshDatabase, type TestDatabase } from '../helpers/databases.js';
import { runCli, startTestServer } from '../helpers/server.js';

describe('a server started with another LATCHKEY_SECRET than its database was set up with', () => {
  let database: TestDatabase;
  const secret = randomBytes(32).toString('base64url');
  beforeAll(async () => {
    database = await freshDatabase('sqlite');
    // set up (migrations, default realm, sealed signing keys) under `secret`
    const first = await startTestServer({ database, secret });
    await first.close();
  });
  afterAll(async () => database?.drop());

  it('refuses to start, and says which setting is wrong', async () => {
    const err = await startTestServer({ database, secret: randomBytes(32).toString('base64url') }).then(
      (server) => server.close().then(() => undefined),
      (e: unknown) => e,
    );
    expect(err).toMatchObject({ code: 'secret_mismatch', message: expect.stringContaining('LATCHKEY_SECRET is not the secret') });
  });

  it('`latchkey serve` exits with that message on stderr', async () => {
    const result = await runCli({ DATABASE_URL: database.url, LATCHKEY_SECRET: randomBytes(32).toString('base64url'), PORT: '0' }, ['serve']);
    expect(result.code).not.toBe(0);
    expect(result.stderr).toContain('latchkey serve: LATCHKEY_SECRET is not the secret');
  });

  it('latchkey commands refuse that secret too, before sealing anything with it (keys rotate, connection create)', async () => {
    const wrong = { DATABASE_URL: database.url, LATCHKEY_SECRET: randomBytes(32).toString('base64url') };
    const rotated = await runCli(wrong, ['keys', 'rotate', '--realm', 'default', '--activate-after', '0']);
    expect(rotated.code, rotated.stdout).toBe(1);
    expect(rotated.stdout).toBe('');
    expect(rotated.stderr).toContain('latchkey keys: LATCHKEY_SECRET is not the secret');
    const connection = await runCli(wrong, ['connection', 'create', '--realm', 'default', '--id', 'google', '--client-id', 'c', '--client-secret-stdin', '--preset', 'google'], 'upstream-secret\n');
    expect(connection.code, connection.stdout).toBe(1);
    expect(connection.stderr).toContain('LATCHKEY_SECRET is not the secret');
    const migrated = await runCli(wrong, ['migrate']);
    expect(migrated.code, migrated.stdout).toBe(1);
    expect(migrated.stderr).toContain('LATCHKEY_SECRET is not the secret');

    // nothing was written: the server, with the right secret, signs with the keys it had and has no connection
    const server = await startTestServer({ database, secret });
    try {
      const jwks = (await (await fetch(`${server.url}/jwks`)).json()) as { keys: unknown[] };
      expect(jwks.keys).toHaveLength(3);
      const list = await server.cli(['connection', 'list', '--realm', 'default']);
      expect(list.code, list.stderr).toBe(0);
      expect(list.json.connections).toEqual([]);
    } finally {
      await server.close();
    }
  });

  it('starts with the secret it was set up with', async () => {
    const server = await startTestServer({ database, secret });
    try {
      const res = await fetch(`${server.url}/.well-known/openid-configuration`);
      expect(res.status).toBe(200);
    } finally {
      await server.close();
    }
  });
});
