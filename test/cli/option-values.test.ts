import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli } from '../helpers/server.js';

/** Numeric option values: what is not a number is refused as a usage error (exit 2), never read as 0. */
describe('latchkey CLI: numeric option values', () => {
  let dir: string;
  let env: Record<string, string>;
  const cli = (args: string[]) => runCli(env, args, undefined, dir);

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'latchkey-cli-numbers-'));
    env = { DATABASE_URL: `sqlite:${join(dir, 'db.sqlite')}`, LATCHKEY_SECRET: randomBytes(32).toString('base64url'), LATCHKEY_ISSUER: 'http://numbers.localhost:4100' };
    const migrated = await cli(['migrate']);
    expect(migrated.code, migrated.stderr).toBe(0);
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('keys rotate refuses an empty, blank or non-decimal --activate-after instead of activating the new keys at once', async () => {
    const before = (await cli(['keys', 'list', '--realm', 'default'])).json.keys.length;
    // and one past a year: 99999999999999999999 s was a database error on PostgreSQL, and on SQLite keys written with no answer
    for (const value of ['', ' ', '0x10', '1e3', '1.5', '-5', '31536001', '99999999999999999999']) {
      const res = await cli(['keys', 'rotate', '--realm', 'default', `--activate-after=${value}`]);
      expect(res.code, `--activate-after=${JSON.stringify(value)}: ${res.stdout}`).toBe(2);
      expect(res.stdout).toBe('');
      expect(res.stderr).toContain('--activate-after');
    }
    expect((await cli(['keys', 'list', '--realm', 'default'])).json.keys.length).toBe(before);
    const ok = await cli(['keys', 'rotate', '--realm', 'default', '--activate-after', '120']);
    expect(ok.code, ok.stderr).toBe(0);
    expect(Date.parse(ok.json.activate_at) - Date.now()).toBeGreaterThan(100_000);
  });

  it('takes a value starting with a dash as the usage writes it (user list --sort -email), and still refuses a missing value', async () => {
    for (const email of ['ann@numbers.test', 'zoe@numbers.test']) {
      const created = await cli(['user', 'create', '--realm', 'default', '--email', email]);
      expect(created.code, created.stderr).toBe(0);
    }
    const descending = await cli(['user', 'list', '--realm', 'default', '--sort', '-email']);
    expect(descending.code, descending.stderr).toBe(0);
    expect(descending.json.users.map((u: { email: string }) => u.email)).toEqual(['zoe@numbers.test', 'ann@numbers.test']);
    const ascending = await cli(['user', 'list', '--realm', 'default', '--sort', 'email']);
    expect(ascending.json.users.map((u: { email: string }) => u.email)).toEqual(['ann@numbers.test', 'zoe@numbers.test']);
    // a negative number reaches the option's own check, which names it
    const negative = await cli(['user', 'list', '--realm', 'default', '--limit', '-1']);
    expect(negative.code).toBe(2);
    expect(negative.stdout).toBe('');
    expect(negative.stderr).toContain('--limit must be a whole number');
    // a long option where the value should be is not taken as the value
    const missing = await cli(['user', 'create', '--realm', 'default', '--email', '--name', 'Ann']);
    expect(missing.code).toBe(2);
    expect(missing.stdout).toBe('');
    expect(missing.stderr).toContain('--email');
    // any value, --help included, is taken when written --option=VALUE; one dash is taken as it stands
    const helpName = await cli(['user', 'create', '--realm', 'default', '--email', 'help@numbers.test', '--name=--help']);
    expect(helpName.code, helpName.stderr).toBe(0);
    expect(helpName.json).toMatchObject({ email: 'help@numbers.test', name: '--help' });
    const dashName = await cli(['user', 'create', '--realm', 'default', '--email', 'dash@numbers.test', '--name', '-x-']);
    expect(dashName.code, dashName.stderr).toBe(0);
    expect(dashName.json).toMatchObject({ email: 'dash@numbers.test', name: '-x-' });
  });

  it('refuses an option given twice that takes one value, naming it, instead of quietly using the last one', async () => {
    const before = (await cli(['user', 'list', '--realm', 'default'])).json.users.length;
    const cases: Array<[string[], string]> = [
      [['user', 'create', '--realm', 'default', '--email', 'one@numbers.test', '--email', 'two@numbers.test'], '--email is given twice ("one@numbers.test", "two@numbers.test")'],
      [['user', 'create', '--realm', 'default', '--realm=other', '--email', 'one@numbers.test'], '--realm is given twice ("default", "other")'],
      [['keys', 'rotate', '--realm', 'default', '--activate-after', '0', '--activate-after', '3600'], '--activate-after is given twice'],
      [['user', 'list', '--realm', 'default', '--limit', '5', '--limit', '6'], '--limit is given twice'],
    ];
    for (const [args, message] of cases) {
      const res = await cli(args);
      expect(res.code, args.join(' ')).toBe(2);
      expect(res.stdout).toBe('');
      expect(res.stderr).toContain(message);
    }
    expect((await cli(['user', 'list', '--realm', 'default'])).json.users.length).toBe(before);
    // options that take several values still do
    const scopes = await cli(['client', 'create', '--realm', 'default', '--name', 'Twice', '--grant', 'client_credentials', '--grant', 'urn:ietf:params:oauth:grant-type:token-exchange']);
    expect(scopes.code, scopes.stderr).toBe(0);
    expect(scopes.json.grant_types).toEqual(['client_credentials', 'urn:ietf:params:oauth:grant-type:token-exchange']);
  });

  it('serve refuses a bad --port as a usage error (exit 2)', async () => {
    for (const value of ['abc', '70000', '']) {
      const res = await cli(['serve', `--port=${value}`]);
      expect(res.code, `--port=${JSON.stringify(value)}: ${res.stderr}`).toBe(2);
      expect(res.stdout).toBe('');
      expect(res.stderr).toContain('--port');
    }
  });
});
