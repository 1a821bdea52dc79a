import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SecretBox } from '../../src/crypto/secret-box.js';
import { keysRepo } from '../../src/db/keys-repo.js';
import { openDatabase, type Db } from '../../src/db/knex.js';
import { realmsRepo } from '../../src/db/realms-repo.js';
import { insertKeySet, KeyService } from '../../src/keys/service.js';
import { freshDatabase, type TestDatabase } from '../helpers/databases.js';
import { testFetch } from '../helpers/http.js';
import { runCli, startTestServer, type TestServer } from '../helpers/server.js';

type CliResult = Awaited<ReturnType<TestServer['cli']>>;

const stderrOf = (res: CliResult) => res.stderr.replace(/^oidc-provider WARNING: Unsupported runtime\..*\n/m, '');

/**
 * What `latchkey keys rotate --activate-after 0` did before commands checked LATCHKEY_SECRET (87575a0) when
 * run with the wrong one: a key set sealed, by the real sealing code, with another secret, signing at once.
 */
async function sealWithAnotherSecret(db: Db, realmId: string): Promise<string[]> {
  const now = Date.now();
  const kids = await insertKeySet(db, new SecretBox(randomBytes(32).toString('base64url')), realmId, now, now);
  await realmsRepo.bumpRevision(db, realmId, now);
  return kids;
}

const kidsOf = async (db: Db, realmId: string) => (await keysRepo.list(db, realmId)).map((k) => k.kid).sort();

describe('latchkey keys: a realm whose signing keys were sealed with another secret', () => {
  let server: TestServer;
  let acme: string;
  let broken: string[];

  beforeAll(async () => {
    server = await startTestServer();
    acme = `http://acme.localhost:${server.port}`;
    await server.services.realms.create({ id: 'acme', issuers: [acme] });
    expect((await testFetch(`${acme}/.well-known/openid-configuration`)).status).toBe(200);
    broken = await sealWithAnotherSecret(server.services.db, 'acme');
  });
  afterAll(async () => server?.close());

  it('`keys --help` describes repair and its confirmation', async () => {
    const help = await server.cli(['keys', '--help']);
    expect(help.code).toBe(0);
    for (const text of ['latchkey keys repair --realm R --yes', 'sealed_key "unreadable"', 'no longer verify', 'latchkey keys rotate --realm R [--activate-after SECONDS]']) expect(help.stdout).toContain(text);
  });

  it('the realm cannot sign: its provider cannot be built', async () => {
    await expect.poll(async () => (await testFetch(`${acme}/.well-known/openid-configuration`)).status, { timeout: 10_000 }).not.toBe(200);
  });

  it('`keys list` marks them unreadable (JSON on stdout) and warns on stderr', async () => {
    const res = await server.cli(['keys', 'list', '--realm', 'acme']);
    expect(res.code, res.stderr).toBe(0);
    expect(res.json).toEqual(JSON.parse(res.stdout));
    expect(res.json.keys).toHaveLength(6);
    const unreadable = res.json.keys.filter((k: any) => k.sealed_key === 'unreadable');
    expect(unreadable.map((k: any) => k.kid).sort()).toEqual([...broken].sort());
    expect(unreadable.every((k: any) => k.state === 'active')).toBe(true);
    expect(res.json.keys.filter((k: any) => k.sealed_key === 'readable').map((k: any) => k.state)).toEqual(['retired', 'retired', 'retired']);
    expect(stderrOf(res)).toContain('warning: realm "acme" has 3 signing keys this LATCHKEY_SECRET cannot open');
    expect(stderrOf(res)).toContain('latchkey keys repair --realm acme --yes');
  });

  it('`keys repair` without --yes says what it would delete and changes nothing', async () => {
    const before = await kidsOf(server.services.db, 'acme');
    const res = await server.cli(['keys', 'repair', '--realm', 'acme']);
    expect(res.code).toBe(2);
    expect(res.stdout).toBe('');
    expect(res.stderr).toContain('--yes');
    expect(res.stderr).toContain('no longer verify');
    for (const kid of broken) expect(res.stderr).toContain(kid);
    expect(await kidsOf(server.services.db, 'acme')).toEqual(before);
  });

  it('with another secret (the wrong one), `keys repair --yes` is refused and deletes nothing', async () => {
    const before = await kidsOf(server.services.db, 'acme');
    const res = await runCli({ ...server.env, LATCHKEY_SECRET: randomBytes(32).toString('base64url') }, ['keys', 'repair', '--realm', 'acme', '--yes']);
    expect(res.code).toBe(1);
    expect(res.stdout).toBe('');
    expect(res.stderr).toContain('LATCHKEY_SECRET is not the secret');
    expect(await kidsOf(server.services.db, 'acme')).toEqual(before);
    // the service refuses on its own too: no key of the database opens with a wrong secret
    const wrong = new KeyService(server.services.db, new SecretBox(randomBytes(32).toString('base64url')), { retentionMs: 60_000 });
    await expect(wrong.discardUnreadable('acme')).rejects.toMatchObject({ code: 'secret_mismatch' });
    expect(await kidsOf(server.services.db, 'acme')).toEqual(before);
  });

  it('`keys repair --yes` deletes them, publishes a key set that signs at once, and the running server signs again', async () => {
    const res = await server.cli(['keys', 'repair', '--realm', 'acme', '--yes']);
    expect(res.code, res.stderr).toBe(0);
    expect(stderrOf(res)).toBe('');
    expect(res.json).toEqual(JSON.parse(res.stdout));
    expect(res.json.discarded.map((d: any) => d.kid).sort()).toEqual([...broken].sort());
    expect(res.json.new_kids).toHaveLength(3);
    const list = await server.cli(['keys', 'list', '--realm', 'acme']);
    expect(list.code).toBe(0);
    expect(stderrOf(list)).toBe('');
    expect(list.json.keys.every((k: any) => k.sealed_key === 'readable')).toBe(true);
    expect(list.json.keys.filter((k: any) => k.state === 'active').map((k: any) => k.kid).sort()).toEqual([...res.json.new_kids].sort());

    await expect.poll(async () => (await testFetch(`${acme}/.well-known/openid-configuration`)).status, { timeout: 10_000 }).toBe(200);
    const jwks = (await (await testFetch(`${acme}/jwks`)).json()) as { keys: Array<{ kid: string }> };
    const published = jwks.keys.map((k) => k.kid);
    for (const kid of res.json.new_kids) expect(published).toContain(kid);
    for (const kid of broken) expect(published).not.toContain(kid);

    // again: nothing left to repair
    const again = await server.cli(['keys', 'repair', '--realm', 'acme']);
    expect(again.code, again.stderr).toBe(0);
    expect(again.json).toEqual({ realm: 'acme', discarded: [], new_kids: [], activate_at: null });
  });
});

describe('latchkey keys: the default realm sealed partly with another secret', () => {
  let database: TestDatabase;
  const secret = randomBytes(32).toString('base64url');
  let broken: string[];
  let env: Record<string, string>;

  beforeAll(async () => {
    database = await freshDatabase('sqlite');
    const first = await startTestServer({ database, secret });
    env = first.env;
    await first.close();
    const db = openDatabase(database.url);
    try {
      broken = await sealWithAnotherSecret(db, 'default');
    } finally {
      await db.destroy();
    }
  });
  afterAll(async () => database?.drop());

  it('the server and other commands refuse, naming the keys and the repair; `keys list` shows them', async () => {
    const err = await startTestServer({ database, secret }).then(
      (server) => server.close().then(() => undefined),
      (e: unknown) => e,
    );
    expect(err).toMatchObject({ code: 'unreadable_keys', message: expect.stringContaining('latchkey keys repair --realm default --yes') });
    const other = await runCli(env, ['client', 'list', '--realm', 'default']);
    expect(other.code).toBe(1);
    expect(other.stdout).toBe('');
    expect(other.stderr).toContain(broken[0]);
    expect(other.stderr).toContain('latchkey keys repair --realm default --yes');

    const list = await runCli(env, ['keys', 'list', '--realm', 'default']);
    expect(list.code, list.stderr).toBe(0);
    expect(list.json.keys.filter((k: any) => k.sealed_key === 'unreadable').map((k: any) => k.kid).sort()).toEqual([...broken].sort());
  });

  it('after `keys repair --realm default --yes` the server starts and publishes the new keys', async () => {
    const repaired = await runCli(env, ['keys', 'repair', '--realm', 'default', '--yes']);
    expect(repaired.code, repaired.stderr).toBe(0);
    expect(repaired.json.discarded).toHaveLength(3);
    const server = await startTestServer({ database, secret });
    try {
      const jwks = (await (await fetch(`${server.url}/jwks`)).json()) as { keys: Array<{ kid: string }> };
      const published = jwks.keys.map((k) => k.kid);
      for (const kid of repaired.json.new_kids) expect(published).toContain(kid);
      for (const kid of broken) expect(published).not.toContain(kid);
    } finally {
      await server.close();
    }
  });
});
