import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { get } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli, startTestServer, type TestServer } from '../helpers/server.js';

const PASSWORD = 'plum-orbit-cactus-velvet-91';
const REDIRECT = 'http://app.example.test/callback';
const COMMANDS = ['serve', 'migrate', 'realm', 'client', 'user', 'tenant', 'keys', 'connection', 'trust'];

type CliResult = Awaited<ReturnType<TestServer['cli']>>;

/** stderr without node-oidc-provider's notice about the Node.js version it runs on (not ours to judge). */
const stderrOf = (res: CliResult) => res.stderr.replace(/^oidc-provider WARNING: Unsupported runtime\..*\n/m, '');

/** A successful command: exit 0, nothing on stderr, exactly one JSON document on stdout. */
function ok(res: CliResult): any {
  expect(res.code, res.stderr).toBe(0);
  expect(stderrOf(res)).toBe('');
  expect(res.stdout.endsWith('\n')).toBe(true);
  expect(() => JSON.parse(res.stdout)).not.toThrow();
  expect(res.json).toEqual(JSON.parse(res.stdout));
  expect(typeof res.json).toBe('object');
  return res.json;
}

/** A refused command: non-zero exit, the reason on stderr, nothing on stdout. */
function refused(res: CliResult, ...mentions: Array<string | RegExp>): string {
  expect(res.code).not.toBe(0);
  expect(res.stdout).toBe('');
  for (const m of mentions) {
    if (typeof m === 'string') expect(res.stderr).toContain(m);
    else expect(res.stderr).toMatch(m);
  }
  expect(res.stderr).not.toMatch(/^\s+at /m); // no stack traces
  return res.stderr;
}

describe('latchkey CLI (SQLite)', () => {
  let server: TestServer;
  const count = async (table: string, where: Record<string, unknown> = {}) => {
    const [row] = await server.services.db(table).where(where).count({ n: '*' });
    return Number((row as { n: number | string }).n);
  };

  beforeAll(async () => {
    server = await startTestServer({ db: 'sqlite' });
  });
  afterAll(async () => server?.close());

  describe('help and usage errors', () => {
    it('`latchkey --help` lists every command', async () => {
      const res = await server.cli(['--help']);
      expect(res.code).toBe(0);
      expect(stderrOf(res)).toBe('');
      expect(res.stdout).toContain('usage: latchkey <command>');
      for (const name of COMMANDS) expect(res.stdout).toMatch(new RegExp(`^\\s+${name}\\s+\\S`, 'm'));
      // every environment variable the README's Configuration table lists
      for (const variable of ['LATCHKEY_CONFIG', 'DATABASE_URL', 'LATCHKEY_SECRET', 'LATCHKEY_ISSUER', 'PORT', 'LATCHKEY_TRUST_PROXY', 'LOG_LEVEL', 'LATCHKEY_SMTP_URL', 'LATCHKEY_EMAIL_FROM']) expect(res.stdout).toContain(variable);
      const short = await server.cli(['-h']);
      expect(short.code).toBe(0);
      expect(short.stdout).toBe(res.stdout);
    });

    it('`latchkey` without a command is a usage error: exit 2, the help on stderr, nothing on stdout', async () => {
      const res = await server.cli([]);
      expect(res.code).toBe(2);
      expect(res.stdout).toBe('');
      expect(stderrOf(res)).toContain('latchkey: a command is needed');
      expect(stderrOf(res)).toContain('usage: latchkey <command>');
    });

    it('`latchkey client create --help` shows the usage of the command', async () => {
      const res = await server.cli(['client', 'create', '--help']);
      expect(res.code).toBe(0);
      expect(stderrOf(res)).toBe('');
      expect(res.stdout).toContain('usage: latchkey client create --realm R --name N');
      expect(res.stdout).toContain('--redirect-uri');
      expect(res.stdout).toContain('--public');
    });

    it('an unknown command exits non-zero, names it on stderr and prints nothing on stdout', async () => {
      const res = await server.cli(['frobnicate']);
      refused(res, '"frobnicate"', 'unknown command');
      expect(res.code).toBe(2);
    });

    it('an unknown subcommand is refused the same way', async () => {
      refused(await server.cli(['client', 'destroy', '--realm', 'default']), 'unknown client command "destroy"');
      refused(await server.cli(['user']), 'user needs a command');
    });

    it('an unknown flag exits non-zero and names the flag', async () => {
      const before = await count('clients');
      const res = await server.cli(['client', 'create', '--realm', 'default', '--name', 'X', '--redirect-uri', REDIRECT, '--bogus-flag']);
      refused(res, '--bogus-flag', 'usage:');
      expect(res.code).toBe(2);
      refused(await server.cli(['realm', 'list', '--verbose']), '--verbose');
      refused(await server.cli(['migrate', '--force']), '--force');
      expect(await count('clients')).toBe(before);
    });

    it('a missing required option is named', async () => {
      refused(await server.cli(['client', 'create', '--name', 'X', '--redirect-uri', REDIRECT]), '--realm');
      refused(await server.cli(['user', 'create', '--realm', 'default']), '--email');
    });
  });

  describe('client create', () => {
    it('prints client_id and client_secret at the top level for a confidential client; the secret is stored hashed', async () => {
      const json = ok(await server.cli(['client', 'create', '--realm', 'default', '--name', 'Web App', '--redirect-uri', REDIRECT]));
      expect(json.client_id).toEqual(expect.any(String));
      expect(json.client_secret).toEqual(expect.any(String));
      expect(json.client_secret.length).toBeGreaterThanOrEqual(43);
      expect(json).toMatchObject({ realm: 'default', name: 'Web App', public: false, redirect_uris: [REDIRECT], token_endpoint_auth_method: 'client_secret_basic' });
      const row = await server.services.db('clients').where({ client_id: json.client_id }).first();
      expect(row.secret_hash).toMatch(/^sha256:/);
      expect(row.secret_hash).not.toContain(json.client_secret);
      expect(row.metadata).not.toContain(json.client_secret);
      expect(JSON.stringify(row)).not.toContain(json.client_secret);
    });

    it('prints no secret for --public and stores none', async () => {
      const json = ok(await server.cli(['client', 'create', '--realm', 'default', '--name', 'SPA', '--redirect-uri', REDIRECT, '--public']));
      expect(json.client_id).toEqual(expect.any(String));
      expect('client_secret' in json).toBe(false);
      expect(json).toMatchObject({ public: true, token_endpoint_auth_method: 'none' });
      const row = await server.services.db('clients').where({ client_id: json.client_id }).first();
      expect(row.secret_hash).toBeNull();
    });

    it('refuses bad input with a clear message and writes nothing', async () => {
      const before = await count('clients');
      refused(await server.cli(['client', 'create', '--realm', 'default', '--name', 'No URI']), 'redirect-uri');
      refused(await server.cli(['client', 'create', '--realm', 'default', '--name', 'Bad', '--redirect-uri', 'javascript:alert(1)']), 'forbidden scheme');
      refused(await server.cli(['client', 'create', '--realm', 'default', '--name', 'Bad', '--redirect-uri', 'not a url']), 'not an absolute URL');
      refused(await server.cli(['client', 'create', '--realm', 'nope', '--name', 'Bad', '--redirect-uri', REDIRECT]), 'realm "nope" does not exist');
      refused(await server.cli(['client', 'create', '--realm', 'default', '--name', 'Bad', '--public', '--grant', 'client_credentials']), 'public client');
      expect(await count('clients')).toBe(before);
    });

    it('client list prints the clients without secrets', async () => {
      const json = ok(await server.cli(['client', 'list', '--realm', 'default']));
      expect(Array.isArray(json.clients)).toBe(true);
      expect(json.clients.length).toBeGreaterThanOrEqual(2);
      for (const c of json.clients) expect('client_secret' in c).toBe(false);
    });
  });

  describe('user create and disable', () => {
    it('--password-stdin drops exactly one trailing newline', async () => {
      ok(await server.cli(['user', 'create', '--realm', 'default', '--email', 'one@example.test', '--name', 'One', '--password-stdin'], `${PASSWORD}\n`));
      const { users } = server.services;
      expect((await users.verifyPassword('default', 'one@example.test', PASSWORD)).ok).toBe(true);
      expect((await users.verifyPassword('default', 'one@example.test', `${PASSWORD}\n`)).ok).toBe(false);

      // CRLF counts as one newline
      ok(await server.cli(['user', 'create', '--realm', 'default', '--email', 'crlf@example.test', '--password-stdin'], `${PASSWORD}\r\n`));
      expect((await users.verifyPassword('default', 'crlf@example.test', PASSWORD)).ok).toBe(true);

      // only one newline goes: a second one is part of the password
      ok(await server.cli(['user', 'create', '--realm', 'default', '--email', 'two@example.test', '--password-stdin'], `${PASSWORD}\n\n`));
      expect((await users.verifyPassword('default', 'two@example.test', PASSWORD)).ok).toBe(false);
      expect((await users.verifyPassword('default', 'two@example.test', `${PASSWORD}\n`)).ok).toBe(true);

      // without a newline the input is taken as is
      ok(await server.cli(['user', 'create', '--realm', 'default', '--email', 'none@example.test', '--password-stdin'], PASSWORD));
      expect((await users.verifyPassword('default', 'none@example.test', PASSWORD)).ok).toBe(true);
    });

    it('prints the user without its password hash', async () => {
      const json = ok(await server.cli(['user', 'create', '--realm', 'default', '--email', 'Three@Example.test', '--name', 'Three', '--password-stdin'], `${PASSWORD}\n`));
      expect(json).toMatchObject({ realm: 'default', email: 'Three@Example.test', name: 'Three', disabled: false });
      expect(json.id).toEqual(expect.any(String));
      expect(JSON.stringify(json)).not.toMatch(/argon2|\$2[aby]\$/i);
      // no password or hash under any name; the one password field is whether it is temporary
      expect(Object.keys(json).filter((k) => /password|hash/i.test(k))).toEqual(['password_change_required']);
      expect(json.password_change_required).toBe(false);
    });

    it('a weak password is refused with a message naming the rule, and no row is written', async () => {
      const before = await count('users');
      const cases: Array<[string, RegExp]> = [
        ['short-pass-1', /at least 15 characters/],
        ['0123456789012345', /too common/],
        ['aaaaaaaaaaaaaaaaaaaa', /single repeated character/],
        ['weak@example.test', /email address/],
      ];
      for (const [password, rule] of cases) {
        const res = await server.cli(['user', 'create', '--realm', 'default', '--email', 'weak@example.test', '--password-stdin'], `${password}\n`);
        refused(res, rule);
        if (password !== 'weak@example.test') expect(res.stderr).not.toContain(password); // never echoed
      }
      refused(await server.cli(['user', 'create', '--realm', 'default', '--email', 'weak@example.test', '--password-stdin'], ''), 'standard input was empty');
      refused(await server.cli(['user', 'create', '--realm', 'default', '--email', 'weak@example.test', '--password-stdin'], '\n'), 'standard input was empty');
      expect(await count('users')).toBe(before);
      expect(await server.services.users.findByEmail('default', 'weak@example.test')).toBeUndefined();
    });

    it('a duplicate email or a bad email is refused', async () => {
      const before = await count('users');
      refused(await server.cli(['user', 'create', '--realm', 'default', '--email', 'ONE@example.test', '--password-stdin'], `${PASSWORD}\n`), 'already exists');
      refused(await server.cli(['user', 'create', '--realm', 'default', '--email', 'not-an-email', '--password-stdin'], `${PASSWORD}\n`), 'not a valid email');
      expect(await count('users')).toBe(before);
    });

    it('user disable disables the account (and enable re-enables it)', async () => {
      ok(await server.cli(['user', 'create', '--realm', 'default', '--email', 'dis@example.test', '--password-stdin'], `${PASSWORD}\n`));
      const disabled = ok(await server.cli(['user', 'disable', '--realm', 'default', '--email', 'dis@example.test']));
      expect(disabled).toMatchObject({ email: 'dis@example.test', disabled: true });
      expect(await server.services.users.verifyPassword('default', 'dis@example.test', PASSWORD)).toMatchObject({ ok: false, reason: 'account_disabled' });
      const enabled = ok(await server.cli(['user', 'enable', '--realm', 'default', '--email', 'dis@example.test']));
      expect(enabled.disabled).toBe(false);
      expect((await server.services.users.verifyPassword('default', 'dis@example.test', PASSWORD)).ok).toBe(true);
      refused(await server.cli(['user', 'disable', '--realm', 'default', '--email', 'ghost@example.test']), 'does not exist');
    });
  });

  describe('realms and keys', () => {
    it('realm create makes a realm with its own keys; realm list prints JSON', async () => {
      const created = ok(await server.cli(['realm', 'create', '--id', 'acme', '--issuer', 'http://acme.localhost:9999', '--name', 'Acme']));
      expect(created).toMatchObject({ id: 'acme', displayName: 'Acme', issuers: ['http://acme.localhost:9999'] });
      const list = ok(await server.cli(['realm', 'list']));
      expect(list.realms.map((r: { id: string }) => r.id).sort()).toEqual(['acme', 'default']);
      const def = list.realms.find((r: { id: string }) => r.id === 'default');
      expect(def.issuers).toEqual([server.issuer]);
    });

    it('realm create --settings names an unknown settings key with its path', async () => {
      const dir = mkdtempSync(join(tmpdir(), 'latchkey-cli-settings-'));
      try {
        const file = join(dir, 'settings.json');
        writeFileSync(file, JSON.stringify({ mfa: 'optional', sigingAlg: 'RS256', passkeys: { attestaton: 'none' } }));
        const err = refused(await server.cli(['realm', 'create', '--id', 'typo', '--issuer', 'http://typo.localhost:9998', '--settings', file]), '--settings: ');
        expect(err).toContain('unknown key "sigingAlg"');
        expect(err).toContain('unknown key "passkeys.attestaton"');
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    });

    it('realm create with a bad id or an issuer with a path or query fails with a clear message', async () => {
      const before = await count('realms');
      refused(await server.cli(['realm', 'create', '--id', 'Bad_ID', '--issuer', 'http://bad.localhost']), '--id: realm id "Bad_ID"');
      refused(await server.cli(['realm', 'create', '--id=-dash', '--issuer', 'http://bad.localhost']), 'realm id');
      refused(await server.cli(['realm', 'create', '--id', 'pathy', '--issuer', 'http://pathy.localhost/tenant']), '--issuer: "http://pathy.localhost/tenant"', 'paths are not supported');
      refused(await server.cli(['realm', 'add-issuer', '--realm', 'default', '--issuer', 'http://pathy.localhost/tenant']), '--issuer: "http://pathy.localhost/tenant"', 'paths are not supported');
      refused(await server.cli(['realm', 'create', '--id', 'twice', '--issuer', 'http://twice.localhost', '--issuer', 'http://TWICE.localhost/']), '--issuer: ', 'listed twice');
      refused(await server.cli(['realm', 'create', '--id', 'query', '--issuer', 'http://query.localhost/?x=1']), 'must not have a query');
      refused(await server.cli(['realm', 'create', '--id', 'frag', '--issuer', 'http://frag.localhost#x']), 'must not have a query or fragment');
      refused(await server.cli(['realm', 'create', '--id', 'ftp', '--issuer', 'ftp://ftp.localhost']), 'https');
      refused(await server.cli(['realm', 'create', '--id', 'creds', '--issuer', 'http://u:p@creds.localhost']), 'credentials');
      // a host past DNS's 253 characters was a database error on PostgreSQL (its column holds 300)
      refused(await server.cli(['realm', 'create', '--id', 'long', '--issuer', `http://${Array.from({ length: 5 }, () => 'a'.repeat(60)).join('.')}.localhost`]), '--issuer: ', 'longer than 253');
      refused(await server.cli(['realm', 'create', '--id', 'noissuer']), '--issuer');
      refused(await server.cli(['realm', 'create', '--id', 'default', '--issuer', 'http://other.localhost']), 'already exists');
      refused(await server.cli(['realm', 'create', '--id', 'taken', '--issuer', server.issuer]), 'already served by realm "default"');
      expect(await count('realms')).toBe(before);
      expect(await count('realm_issuers', { realm_id: 'taken' })).toBe(0);
    });

    it('keys list prints the public state of the realm keys, never private material', async () => {
      const json = ok(await server.cli(['keys', 'list', '--realm', 'default']));
      expect(json.realm).toBe('default');
      expect(json.keys.map((k: { family: string }) => k.family).sort()).toEqual(['ES256', 'EdDSA', 'RSA']);
      for (const k of json.keys) {
        expect(k.state).toBe('active');
        expect(k.kid).toEqual(expect.any(String));
        expect(Number.isNaN(Date.parse(k.created_at))).toBe(false);
      }
      expect(JSON.stringify(json)).not.toMatch(/"d"|private|v1\./);
      refused(await server.cli(['keys', 'list', '--realm', 'nope']), 'realm "nope" does not exist');
    });

    it('keys rotate publishes a pending key set', async () => {
      const rotated = ok(await server.cli(['keys', 'rotate', '--realm', 'acme', '--activate-after', '3600']));
      expect(rotated.new_kids).toHaveLength(3);
      const list = ok(await server.cli(['keys', 'list', '--realm', 'acme']));
      expect(list.keys.filter((k: { state: string }) => k.state === 'pending')).toHaveLength(3);
      refused(await server.cli(['keys', 'rotate', '--realm', 'acme', '--activate-after', 'soon']), '--activate-after');
    });
  });

  describe('migrate', () => {
    it('prints the migrations it applied and the default realm; a second run applies none', async () => {
      const dir = mkdtempSync(join(tmpdir(), 'latchkey-cli-'));
      try {
        const env = {
          DATABASE_URL: `sqlite:${join(dir, 'fresh.db')}`,
          LATCHKEY_SECRET: randomBytes(32).toString('base64url'),
          LATCHKEY_ISSUER: 'http://fresh.localhost:4000',
        };
        const first = ok(await runCli(env, ['migrate'], undefined, dir));
        expect(first.applied.length).toBeGreaterThan(0);
        for (const m of first.applied) expect(m).toMatch(/^\d+_.+\.js$/);
        expect(first.default_realm).toEqual({ id: 'default', issuers: ['http://fresh.localhost:4000'] });
        const second = ok(await runCli(env, ['migrate'], undefined, dir));
        expect(second.applied).toEqual([]);
        expect(second.default_realm).toEqual(first.default_realm);
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    });

    it('on the server database, migrate applies nothing and reports the default realm', async () => {
      const json = ok(await server.cli(['migrate']));
      expect(json).toEqual({ applied: [], default_realm: { id: 'default', issuers: [server.issuer] } });
    });

    it('a command run without the server\'s LATCHKEY_ISSUER or PORT leaves the default realm\'s issuers alone (only serve and migrate add one)', async () => {
      const dir = mkdtempSync(join(tmpdir(), 'latchkey-cli-'));
      try {
        // the same database and secret, but a shell without the server's issuer: the configured issuer is http://localhost:3000
        const env = { DATABASE_URL: server.env.DATABASE_URL, LATCHKEY_SECRET: server.env.LATCHKEY_SECRET, LATCHKEY_ISSUER: '', PORT: '' };
        const listed = ok(await runCli(env, ['realm', 'list'], undefined, dir));
        expect(listed.realms.find((r: { id: string }) => r.id === 'default').issuers).toEqual([server.issuer]);
        ok(await runCli(env, ['client', 'list', '--realm', 'default'], undefined, dir));
        await new Promise((r) => setTimeout(r, 1000)); // past the server's refresh interval
        // the server does not start answering for a host nobody configured
        // (node:http, since fetch does not let a request choose its Host header)
        const res = await new Promise<{ status: number; body: string }>((resolve, reject) => {
          get({ host: '127.0.0.1', port: server.port, path: '/.well-known/openid-configuration', headers: { host: 'localhost:3000' } }, (r) => {
            let body = '';
            r.on('data', (d) => (body += d));
            r.on('end', () => resolve({ status: r.statusCode ?? 0, body }));
          }).on('error', reject);
        });
        expect(res.status, res.body).toBe(404);
        expect(JSON.parse(res.body).error).toBe('unknown_host');
        expect(ok(await server.cli(['realm', 'list'])).realms.find((r: { id: string }) => r.id === 'default').issuers).toEqual([server.issuer]);
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    });

    it('an unreachable PostgreSQL is reported in one line, without the driver\'s stack trace', async () => {
      const res = await runCli({ DATABASE_URL: 'postgres://latchkey@127.0.0.1:1/latchkey', LATCHKEY_SECRET: 'x'.repeat(40) }, ['realm', 'list'], undefined, tmpdir());
      refused(res, 'ECONNREFUSED');
      expect(stderrOf(res).trim().split('\n')).toHaveLength(1);
    });

    it('a bad configuration is reported without a stack trace', async () => {
      const res = await runCli({ DATABASE_URL: 'mysql://db/latchkey', LATCHKEY_SECRET: 'x'.repeat(40) }, ['migrate'], undefined, tmpdir());
      refused(res, 'DATABASE_URL');
    });
  });
});
