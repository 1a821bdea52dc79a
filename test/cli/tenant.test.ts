import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestServer, type TestServer } from '../helpers/server.js';

type CliResult = Awaited<ReturnType<TestServer['cli']>>;
const stderrOf = (res: CliResult) => res.stderr.replace(/^oidc-provider WARNING: Unsupported runtime\..*\n/m, '');
const T0 = 1_900_000_000_000;

function ok(res: CliResult): any {
  expect(res.code, res.stderr).toBe(0);
  expect(stderrOf(res)).toBe('');
  expect(res.json).toEqual(JSON.parse(res.stdout));
  return res.json;
}

function refused(res: CliResult, code: number, ...mentions: string[]): void {
  expect(res.code, res.stdout).toBe(code);
  expect(res.stdout).toBe('');
  for (const m of mentions) expect(stderrOf(res)).toContain(m);
  expect(res.stderr).not.toMatch(/^\s+at /m);
}

describe('latchkey tenant and user list (SQLite)', () => {
  let server: TestServer;
  const count = async (table: string) => Number(((await server.services.db(table).count({ n: '*' })) as Array<{ n: number | string }>)[0]!.n);

  beforeAll(async () => {
    server = await startTestServer({ db: 'sqlite' });
    await server.services.db('connections').insert({ realm_id: 'default', id: 'acme-okta', type: 'oidc', display_name: 'Okta', config: '{}', enabled: true, created_at: T0, updated_at: T0 });
    for (let i = 0; i < 5; i++) ok(await server.cli(['user', 'create', '--realm', 'default', '--email', `user${i}@acme.test`]));
  });
  afterAll(async () => server?.close());

  it('--help describes every tenant command', async () => {
    const res = await server.cli(['tenant', '--help']);
    expect(res.code).toBe(0);
    for (const sub of ['create', 'update', 'show', 'list', 'delete', 'add-member', 'remove-member']) expect(res.stdout).toContain(`latchkey tenant ${sub}`);
    expect((await server.cli(['user', '--help'])).stdout).toContain('latchkey user list --realm R [--tenant-id T]');
  });

  it('creates, shows, updates and lists tenants', async () => {
    const created = ok(await server.cli(['tenant', 'create', '--realm', 'default', '--id', 'acme', '--name', 'Acme', '--domain', 'Acme.test', '--domain', 'acme.example', '--connection', 'acme-okta', '--sso-enforced', '--primary-color', '#aa3300']));
    expect(created).toMatchObject({ id: 'acme', display_name: 'Acme', domains: ['acme.example', 'acme.test'], connections: ['acme-okta'], sso_enforced: true, branding: { primaryColor: '#aa3300' } });
    expect(ok(await server.cli(['tenant', 'show', '--realm', 'default', '--id', 'acme']))).toEqual(created);
    const updated = ok(await server.cli(['tenant', 'update', '--realm', 'default', '--id', 'acme', '--name', 'Acme Inc', '--no-sso-enforced', '--logo-url', 'https://acme.test/logo.png']));
    expect(updated).toMatchObject({ display_name: 'Acme Inc', sso_enforced: false, domains: ['acme.example', 'acme.test'], branding: { primaryColor: '#aa3300', logoUrl: 'https://acme.test/logo.png' } });
    ok(await server.cli(['tenant', 'create', '--realm', 'default', '--id', 'globex', '--name', 'Globex']));
    expect(ok(await server.cli(['tenant', 'list', '--realm', 'default'])).tenants.map((t: { id: string }) => t.id)).toEqual(['acme', 'globex']);
  });

  it('refuses bad input with a message naming it, writing nothing', async () => {
    const before = await count('tenants');
    refused(await server.cli(['tenant', 'create', '--realm', 'default', '--id', 'initech', '--name', 'Initech', '--domain', 'initech.test', '--connection', 'ghost']), 1, 'connection "ghost" in realm "default" does not exist');
    refused(await server.cli(['tenant', 'create', '--realm', 'default', '--id', 'Bad Id', '--name', 'X']), 1, '--id: tenant id "Bad Id" must be a lower-case slug');
    refused(await server.cli(['tenant', 'create', '--realm', 'default', '--id', 'x', '--name', 'X', '--domain', 'no_domain']), 1, '--domain: "no_domain" is not a valid email domain');
    refused(await server.cli(['tenant', 'create', '--realm', 'default', '--id', 'x', '--name', ' ']), 1, '--name: is required');
    // the flags the operator typed, not the service's field names (branding.primaryColor, branding.logoUrl)
    for (const [args, message] of [
      [['--primary-color', 'blue'], '--primary-color: must be a colour like #2f5bea'],
      [['--logo-url', 'ftp://acme.test/logo.png'], '--logo-url: '],
    ] as const) {
      const res = await server.cli(['tenant', 'create', '--realm', 'default', '--id', 'x', '--name', 'X', ...args]);
      refused(res, 1, message);
      expect(res.stderr).not.toContain('branding.');
      const update = await server.cli(['tenant', 'update', '--realm', 'default', '--id', 'acme', ...args]);
      refused(update, 1, message);
      expect(update.stderr).not.toContain('branding.');
    }
    refused(await server.cli(['tenant', 'create', '--realm', 'default', '--name', 'X']), 2, 'missing required option --id');
    refused(await server.cli(['tenant', 'list', '--realm', 'nope']), 1, 'realm "nope" does not exist');
    refused(await server.cli(['tenant', 'frobnicate']), 2, 'unknown tenant command "frobnicate"');
    expect(await count('tenants')).toBe(before);
    expect(await count('tenant_domains')).toBe(2);
  });

  it('adds and removes members; user list filters by tenant and pages with an opaque cursor', async () => {
    for (const i of [0, 1, 2, 3]) ok(await server.cli(['tenant', 'add-member', '--realm', 'default', '--tenant', 'acme', '--email', `user${i}@acme.test`]));
    ok(await server.cli(['tenant', 'add-member', '--realm', 'default', '--tenant', 'acme', '--email', 'user0@acme.test'])); // again: no change
    ok(await server.cli(['tenant', 'add-member', '--realm', 'default', '--tenant', 'globex', '--email', 'user4@acme.test']));
    refused(await server.cli(['tenant', 'add-member', '--realm', 'default', '--tenant', 'acme', '--email', 'ghost@acme.test']), 1, 'user ghost@acme.test in realm "default" does not exist');
    refused(await server.cli(['tenant', 'add-member', '--realm', 'default', '--tenant', 'nope', '--email', 'user0@acme.test']), 1, 'tenant "nope"');
    refused(await server.cli(['tenant', 'add-member', '--realm', 'default', '--tenant', 'acme']), 2, 'exactly one of --email and --user-id');

    const all = ok(await server.cli(['user', 'list', '--realm', 'default']));
    expect(all.users).toHaveLength(5);
    expect(all.next_cursor).toBeNull();

    const seen: string[] = [];
    let cursor: string | null = null;
    let pages = 0;
    do {
      const res: any = ok(await server.cli(['user', 'list', '--realm', 'default', '--tenant-id', 'acme', '--limit', '3', ...(cursor ? ['--cursor', cursor] : [])]));
      expect(res.users.length).toBeLessThanOrEqual(3);
      seen.push(...res.users.map((u: { email: string }) => u.email));
      cursor = res.next_cursor;
      pages++;
    } while (cursor && pages < 5);
    expect(pages).toBe(2);
    expect(seen.sort()).toEqual(['user0@acme.test', 'user1@acme.test', 'user2@acme.test', 'user3@acme.test']);

    expect(ok(await server.cli(['user', 'list', '--realm', 'default', '--tenant-id', 'acme', '--email', 'USER2@acme.test'])).users.map((u: { email: string }) => u.email)).toEqual(['user2@acme.test']);
    expect(ok(await server.cli(['user', 'list', '--realm', 'default', '--tenant-id', 'acme', '--email', 'user4@acme.test'])).users).toEqual([]);
    refused(await server.cli(['user', 'list', '--realm', 'default', '--tenant-id', 'nope']), 1, 'tenant "nope" in realm "default" does not exist');
    refused(await server.cli(['user', 'list', '--realm', 'default', '--cursor', 'not a cursor']), 1, 'cursor is not a next_cursor value');
    refused(await server.cli(['user', 'list', '--realm', 'default', '--limit', '0']), 1, '--limit: must be a whole number from 1 to 200');
    refused(await server.cli(['user', 'list', '--realm', 'default', '--sort', 'name']), 1, '--sort: must be one of created_at, -created_at, email, -email');
    refused(await server.cli(['user', 'list', '--realm', 'default', '--limit', 'ten']), 2, '--limit must be a whole number');

    expect(ok(await server.cli(['tenant', 'remove-member', '--realm', 'default', '--tenant', 'acme', '--email', 'user3@acme.test']))).toMatchObject({ tenant: 'acme', removed: true });
    expect(ok(await server.cli(['user', 'list', '--realm', 'default', '--tenant-id', 'acme'])).users).toHaveLength(3);
  });

  it('deletes a tenant with its domains and members', async () => {
    expect(ok(await server.cli(['tenant', 'delete', '--realm', 'default', '--id', 'acme']))).toEqual({ deleted: 'acme' });
    refused(await server.cli(['tenant', 'show', '--realm', 'default', '--id', 'acme']), 1, 'tenant "acme" in realm "default" does not exist');
    expect(await count('tenant_domains')).toBe(0);
    expect(ok(await server.cli(['user', 'list', '--realm', 'default'])).users).toHaveLength(5);
  });
});
