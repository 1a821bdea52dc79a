import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { describeEachDatabase, freshDatabase, type TestDatabase } from '../helpers/databases.js';
import { until } from '../helpers/flows.js';
import { testFetch } from '../helpers/http.js';
import { freePort, startTestServer, type TestServer } from '../helpers/server.js';

const kids = async (issuer: string) => ((await (await testFetch(`${issuer}/jwks`)).json()) as { keys: Array<{ kid: string }> }).keys.map((k) => k.kid);

// Two instances behind one issuer, sharing one database and one secret, as behind a load balancer.
describeEachDatabase('several instances sharing a database', (kind) => {
  let db: TestDatabase;
  let a: TestServer;
  let b: TestServer;

  beforeAll(async () => {
    db = await freshDatabase(kind);
    const secret = randomBytes(32).toString('base64url');
    a = await startTestServer({ database: db, secret });
    // the second instance serves the same issuer on its own port: map both hosts to the default realm
    b = await startTestServer({ database: db, secret, port: await freePort() });
  });
  afterAll(async () => {
    await b?.close();
    await a?.close();
    await db?.drop();
  });

  it('a key rotation made with the CLI reaches every running instance without a restart', async () => {
    const before = await kids(a.issuer);
    expect(await kids(b.issuer)).toEqual(before);
    const rotated = await a.cli(['keys', 'rotate', '--realm', 'default', '--activate-after', '0']);
    expect(rotated.code, rotated.stderr).toBe(0);
    const fresh: string[] = rotated.json.new_kids;
    expect(fresh).toHaveLength(3);
    for (const server of [a, b]) {
      const published = await until(async () => {
        const k = await kids(server.issuer);
        return fresh.every((kid) => k.includes(kid)) ? k : undefined;
      }, `new keys on ${server.issuer}`);
      // the old keys stay published while tokens signed with them may be alive
      expect(before.every((kid) => published.includes(kid))).toBe(true);
    }
  });

  it('a client created with the CLI works on every instance at once', async () => {
    const created = await a.cli(['client', 'create', '--realm', 'default', '--name', 'svc', '--grant', 'client_credentials']);
    expect(created.code, created.stderr).toBe(0);
    const auth = `Basic ${Buffer.from(`${created.json.client_id}:${created.json.client_secret}`).toString('base64')}`;
    for (const server of [a, b]) {
      const res = await testFetch(`${server.issuer}/token`, {
        method: 'POST',
        headers: { authorization: auth, 'content-type': 'application/x-www-form-urlencoded' },
        body: 'grant_type=client_credentials',
      });
      expect(res.status).toBe(200);
      expect(((await res.json()) as any).token_type).toBe('Bearer');
    }
  });
});
