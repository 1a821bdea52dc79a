import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { migrationConfig, migrationStatus, openDatabase } from '../../src/db/knex.js';
import { runCli } from '../helpers/server.js';

const stderrOf = (res: { stderr: string }) => res.stderr.replace(/^oidc-provider WARNING: Unsupported runtime\..*\n/m, '');

/** A command run against a database of an older version upgrades its schema first: it says so on stderr, never on stdout. */
describe('latchkey commands on a database that needs migrations', () => {
  let dir: string;
  let env: Record<string, string>;
  let last: string;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'latchkey-cli-upgrade-'));
    env = { DATABASE_URL: `sqlite:${join(dir, 'db.sqlite')}`, LATCHKEY_SECRET: randomBytes(32).toString('base64url'), LATCHKEY_ISSUER: 'http://upgrade.localhost:4200' };
    // the schema of the previous version: every migration but the newest
    const db = openDatabase(env.DATABASE_URL);
    try {
      const { pending } = await migrationStatus(db);
      last = pending.at(-1)!;
      for (let i = 0; i < pending.length - 1; i++) await db.migrate.up(migrationConfig());
      expect((await migrationStatus(db)).pending).toEqual([last]);
    } finally {
      await db.destroy();
    }
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('says on stderr which migrations it applies; stdout stays one JSON document; a second run says nothing', async () => {
    const first = await runCli(env, ['realm', 'list'], undefined, dir);
    expect(first.code, first.stderr).toBe(0);
    expect(JSON.parse(first.stdout).realms.map((r: { id: string }) => r.id)).toEqual(['default']);
    expect(stderrOf(first)).toContain(`latchkey: upgrading the database schema first: applying 1 migration (${last})`);
    expect(stderrOf(first)).toContain('latchkey: database schema upgraded');
    const second = await runCli(env, ['realm', 'list'], undefined, dir);
    expect(second.code).toBe(0);
    expect(stderrOf(second)).toBe('');
    expect(second.json).toEqual(first.json);
  });
});
