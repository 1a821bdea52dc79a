import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openDatabase, type Db } from '../../src/db/knex.js';
import { freshDatabase, type TestDatabase } from '../helpers/databases.js';
import { runCli } from '../helpers/server.js';
import { startTestIssuer, type TestIssuer } from '../helpers/trusted-issuer.js';

type CliResult = Awaited<ReturnType<typeof runCli>>;

const stderrOf = (res: CliResult) => res.stderr.replace(/^oidc-provider WARNING: Unsupported runtime\..*\n/m, '');

function ok(res: CliResult): any {
  expect(res.code, res.stderr).toBe(0);
  expect(stderrOf(res)).toBe('');
  expect(res.json).toEqual(JSON.parse(res.stdout));
  return res.json;
}

function refused(res: CliResult, code: number, ...mentions: RegExp[]): void {
  expect(res.code, res.stdout).toBe(code);
  expect(res.stdout).toBe('');
  for (const m of mentions) expect(res.stderr).toMatch(m);
  expect(res.stderr).not.toMatch(/^\s+at /m);
}

describe('latchkey trust', () => {
  let database: TestDatabase;
  let db: Db;
  let dataDir: string;
  let idp: TestIssuer;
  let env: Record<string, string>;
  const cli = (args: string[], stdin?: string) => runCli(env, ['trust', ...args], stdin, dataDir);
  const rows = async () => db('trusted_issuers').select();

  beforeAll(async () => {
    database = await freshDatabase('sqlite');
    dataDir = mkdtempSync(join(tmpdir(), 'latchkey-cli-'));
    env = { DATABASE_URL: database.url, LATCHKEY_SECRET: randomBytes(32).toString('base64url'), LATCHKEY_ISSUER: 'http://localhost:9' };
    idp = await startTestIssuer();
    ok(await runCli(env, ['realm', 'list'], undefined, dataDir)); // migrates and creates the default realm
    db = openDatabase(database.url);
  });
  afterAll(async () => {
    await db?.destroy();
    await idp?.close();
    await database?.drop();
    if (dataDir) rmSync(dataDir, { recursive: true, force: true });
  });

  it('--help explains the command and is listed by `latchkey --help`', async () => {
    const help = await cli(['--help']);
    expect(help.code).toBe(0);
    expect(help.stdout).toMatch(/latchkey trust add --realm R \(--sample-token-stdin \| --issuer URL --audience AUD\)/);
    expect(help.stdout).toMatch(/--user-id-expression/);
    expect((await runCli(env, ['--help'], undefined, dataDir)).stdout).toMatch(/^\s+trust\s+\S/m);
  });

  it('adds an issuer from a sample token on stdin and shows the user id it yields', async () => {
    const sample = await idp.mint({ sub: 'repo:my-org/my-repo:ref:refs/heads/main', repository_owner: 'my-org', aud: 'https://github.com/my-org' });
    const added = ok(await cli(['add', '--realm', 'default', '--sample-token-stdin', '--prefix', 'github|', '--id', 'gha', '--admin', 'github|repo:my-org/my-repo:ref:refs/heads/main'], `${sample}\n`));
    expect(added).toMatchObject({
      id: 'gha',
      realm: 'default',
      issuer: idp.issuer,
      audience: 'https://github.com/my-org',
      user_id_expression: '{sub}',
      user_id_prefix: 'github|',
      admin_user_ids: ['github|repo:my-org/my-repo:ref:refs/heads/main'],
      sample_user_id: 'github|repo:my-org/my-repo:ref:refs/heads/main',
    });
  });

  it('adds an issuer by hand and lists both', async () => {
    ok(await cli(['add', '--realm', 'default', '--issuer', 'https://gitlab.com', '--audience', 'https://gitlab.com/my-org', '--user-id-expression', '{namespace_path}|{sub}', '--id', 'gitlab']));
    const { trusted_issuers } = ok(await cli(['list', '--realm', 'default']));
    expect(trusted_issuers.map((t: any) => [t.id, t.user_id_expression])).toEqual([
      ['gha', '{sub}'],
      ['gitlab', '{namespace_path}|{sub}'],
    ]);
  });

  it('refuses bad input with a message naming it, writing nothing', async () => {
    const before = (await rows()).length;
    refused(await cli(['add', '--realm', 'default']), 2, /--sample-token-stdin.*--issuer and --audience/);
    refused(await cli(['add', '--realm', 'default', '--issuer', 'https://x.example.test']), 2, /--issuer and --audience/);
    refused(await cli(['add', '--issuer', 'https://x.example.test', '--audience', 'a']), 2, /missing required option --realm/);
    refused(await cli(['add', '--realm', 'default', '--sample-token-stdin'], ''), 2, /no token on stdin/);
    refused(await cli(['add', '--realm', 'default', '--sample-token-stdin'], 'nonsense'), 1, /sample token is not a JWT/);
    const sample = await idp.mint({ sub: 'x', aud: 'needs-team' });
    refused(await cli(['add', '--realm', 'default', '--sample-token-stdin', '--user-id-expression', '{team}|{sub}'], sample), 1, /claim \{team\} is missing/);
    refused(await cli(['add', '--realm', 'default', '--issuer', 'https://x.example.test', '--audience', 'a', '--user-id-expression', '{sub}}']), 1, /malformed at position 5/);
    refused(await cli(['add', '--realm', 'default', '--issuer', 'http://x.example.test', '--audience', 'a']), 1, /must use https/);
    refused(await cli(['add', '--realm', 'nope', '--issuer', 'https://x.example.test', '--audience', 'a']), 1, /realm "nope" does not exist/);
    refused(await cli(['add', '--realm', 'default', '--issuer', 'https://gitlab.com', '--audience', 'https://gitlab.com/my-org']), 1, /already trusted.*"gitlab"/);
    refused(await cli(['add', '--realm', 'default', '--issuer', 'https://x.example.test', '--audience', 'a', '--bogus']), 2, /bogus/);
    refused(await cli(['frobnicate']), 2, /unknown trust command "frobnicate"/);
    expect((await rows()).length).toBe(before);
  });

  it('removes an issuer, and says so when it does not exist', async () => {
    expect(ok(await cli(['remove', '--realm', 'default', '--id', 'gitlab']))).toEqual({ removed: 'gitlab', realm: 'default' });
    refused(await cli(['remove', '--realm', 'default', '--id', 'gitlab']), 1, /trusted issuer "gitlab" in realm "default" does not exist/);
    refused(await cli(['remove', '--realm', 'default']), 2, /missing required option --id/);
    expect((await rows()).map((r: any) => r.id)).toEqual(['gha']);
  });
});
