/**
 * `latchkey user import`: users moved from another identity provider with the password hashes it kept
 * (bcrypt as Auth0 exports them, argon2i as Logto keeps them, argon2id at another cost as Keycloak
 * does). The imported users sign in over HTTP with their old passwords through the real pages and an
 * openid-client relying party; the first sign-in replaces the hash with argon2id at this server's cost.
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import argon2 from 'argon2';
import bcrypt from 'bcryptjs';
import * as oidc from 'openid-client';
import { createRemoteJWKSet, customFetch, jwtVerify } from 'jose';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { describeEachDatabase } from '../helpers/databases.js';
import { authorizationRequest, exchangeCode, postForm, submitLogin } from '../helpers/flows.js';
import { Browser, testFetch } from '../helpers/http.js';
import { startTestServer, type TestServer } from '../helpers/server.js';

const REDIRECT = 'http://app.example.test/callback';
const BCRYPT_PASSWORD = 'auth0 export: correct horse battery staple';
const ARGON2I_PASSWORD = 'logto kept this one with argon2i';
const ARGON2ID_PASSWORD = 'keycloak used argon2id at a lower cost';

type CliResult = Awaited<ReturnType<TestServer['cli']>>;
const stderrOf = (res: CliResult) => res.stderr.replace(/^oidc-provider WARNING: Unsupported runtime\..*\n/m, '');

describeEachDatabase('latchkey user import', (kind) => {
  let server: TestServer;
  let dir: string;
  let config: oidc.Configuration;
  const users = () => server.services.db('users').where({ realm_id: 'default' }).orderBy('email');
  const hashOf = async (email: string) => ((await server.services.db('users').where({ realm_id: 'default', email }).first()) as { password_hash: string | null }).password_hash;
  const file = (name: string, text: string) => {
    const path = join(dir, name);
    writeFileSync(path, text);
    return path;
  };

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'latchkey-import-'));
    server = await startTestServer({ db: kind });
    const client = await server.cli(['client', 'create', '--realm', 'default', '--name', 'App', '--redirect-uri', REDIRECT, '--first-party']);
    expect(client.code, client.stderr).toBe(0);
    config = await oidc.discovery(new URL(server.issuer), client.json.client_id, { client_secret: client.json.client_secret }, undefined, {
      execute: [oidc.allowInsecureRequests],
      [oidc.customFetch]: testFetch,
    } as any);
  });
  afterAll(async () => server?.close());

  async function signIn(email: string, password: string) {
    const browser = new Browser();
    const auth = await authorizationRequest(config, REDIRECT, { scope: 'openid email' });
    const login = await browser.follow(auth.url, {}, REDIRECT);
    return { auth, done: await submitLogin(browser, login, email, password, REDIRECT) };
  }

  it('checks the whole file first: one bad entry imports nothing, and every problem is named with its line', async () => {
    const lines = [
      JSON.stringify({ email: 'fine@example.test' }),
      'not json',
      JSON.stringify({ email: 'nobody' }),
      JSON.stringify({ email: 'x@example.test', pasword_hash: '$2b$10$abc' }),
      JSON.stringify({ email: 'y@example.test', password_hash: 'plaintext-password' }),
      JSON.stringify({ email: 'z@example.test', password_hash: `$2b$15$${'a'.repeat(53)}` }),
      JSON.stringify({ email: 'w@example.test', password_hash: '$argon2id$v=19$m=4194304,t=2,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNo' }),
      JSON.stringify({ email: 'Fine@Example.test', email_verified: 'yes' }),
    ];
    const res = await server.cli(['user', 'import', '--realm', 'default', '--file', file('bad.jsonl', lines.join('\n'))]);
    expect(res.code).toBe(1);
    expect(res.stdout).toBe('');
    const err = stderrOf(res);
    expect(err).toContain('nothing was imported: 8 problems in the file');
    expect(err).toContain('line 2 is not valid JSON');
    expect(err).toContain('line 3: email "nobody" is not a valid email address');
    expect(err).toContain('line 4: unknown field "pasword_hash"');
    expect(err).toContain('line 5: password_hash is not an argon2');
    expect(err).toContain('line 6: password_hash is a bcrypt hash of cost 15; importable costs are 4 to 14');
    expect(err).toContain('line 7: password_hash is an argon2 hash with m=4194304 KiB');
    expect(err).toContain('line 8: email Fine@Example.test is already in the file (line 1)');
    expect(err).toContain('line 8: email_verified must be true or false');
    // the refusal never echoes a hash
    expect(err).not.toContain('plaintext-password');
    expect(await users()).toHaveLength(0);

    const missing = await server.cli(['user', 'import', '--realm', 'default', '--file', join(dir, 'nope.jsonl')]);
    expect(missing.code).toBe(2); // a usage error, as a missing option
    expect(stderrOf(missing)).toContain('--file');
    expect(stderrOf(missing)).toContain('no such file');
    const noRealm = await server.cli(['user', 'import', '--realm', 'ghost', '--file', file('one.jsonl', JSON.stringify({ email: 'one@example.test' }))]);
    expect(noRealm.code).toBe(1);
    expect(stderrOf(noRealm)).toContain('realm "ghost"');
    expect(await users()).toHaveLength(0);
  });

  it('imports bcrypt and argon2 hashes; the users sign in with their old passwords and get argon2id hashes', async () => {
    const records = [
      { email: 'bea@example.test', name: 'Bea', email_verified: true, password_hash: await bcrypt.hash(BCRYPT_PASSWORD, 8) },
      { email: 'ian@example.test', password_hash: await argon2.hash(ARGON2I_PASSWORD, { type: argon2.argon2i, memoryCost: 4096, timeCost: 3, parallelism: 1 }) },
      { email: 'kim@example.test', password_hash: await argon2.hash(ARGON2ID_PASSWORD, { type: argon2.argon2id, memoryCost: 8192, timeCost: 1, parallelism: 1 }) },
      { email: 'off@example.test', disabled: true, password_hash: await bcrypt.hash(BCRYPT_PASSWORD, 8) },
      { email: 'nohash@example.test', name: null },
    ];
    const path = file('users.json', JSON.stringify(records, null, 2));

    const dry = await server.cli(['user', 'import', '--realm', 'default', '--file', path, '--dry-run']);
    expect(dry.code, dry.stderr).toBe(0);
    expect(dry.json).toEqual({ realm: 'default', dry_run: true, total: 5, created: 5, skipped: [], password_hashes: { argon2: 2, bcrypt: 2, none: 1 } });
    expect(await users()).toHaveLength(0);

    const res = await server.cli(['user', 'import', '--realm', 'default', '--file', path]);
    expect(res.code, res.stderr).toBe(0);
    expect(res.json).toEqual({ realm: 'default', dry_run: false, total: 5, created: 5, skipped: [], password_hashes: { argon2: 2, bcrypt: 2, none: 1 } });
    const rows = await users();
    expect(rows.map((r: any) => [r.email, Boolean(r.email_verified), Boolean(r.disabled), r.name])).toEqual([
      ['bea@example.test', true, false, 'Bea'],
      ['ian@example.test', false, false, null],
      ['kim@example.test', false, false, null],
      ['nohash@example.test', false, false, null],
      ['off@example.test', false, true, null],
    ]);
    expect(await hashOf('bea@example.test')).toMatch(/^\$2[ab]\$08\$/);

    const jwks = createRemoteJWKSet(new URL(`${server.issuer}/jwks`), { [customFetch]: testFetch } as any);
    for (const [email, password] of [
      ['bea@example.test', BCRYPT_PASSWORD],
      ['ian@example.test', ARGON2I_PASSWORD],
      ['kim@example.test', ARGON2ID_PASSWORD],
    ] as const) {
      const { auth, done } = await signIn(email, password);
      expect(done.url.href.startsWith(REDIRECT), `${email} ended at ${done.url.href}`).toBe(true);
      const tokens = await exchangeCode(config, auth, done.url);
      const { payload } = await jwtVerify(tokens.id_token!, jwks, { issuer: server.issuer, audience: config.clientMetadata().client_id });
      expect(payload.email).toBe(email);
      // replaced at the first sign-in by an argon2id hash at the server's cost
      expect(await hashOf(email)).toMatch(/^\$argon2id\$v=19\$m=19456,p=1,t=2\$/);
      // and the password still works against the new hash
      expect((await server.services.users.verifyPassword('default', email, password)).ok).toBe(true);
    }

    // a wrong password against an imported hash fails like any other, and leaves the hash alone
    const wrong = await signIn('off@example.test', 'not the password at all, sorry');
    expect(wrong.done.url.href.startsWith(REDIRECT)).toBe(false);
    expect(await server.services.users.verifyPassword('default', 'off@example.test', 'not the password at all, sorry')).toEqual({ ok: false, reason: 'invalid_credentials' });
    // the disabled user's old password is right, but the account stays shut
    expect(await server.services.users.verifyPassword('default', 'off@example.test', BCRYPT_PASSWORD)).toEqual({ ok: false, reason: 'account_disabled' });
    expect(await hashOf('off@example.test')).toMatch(/^\$2[ab]\$08\$/);
  });

  it('skips addresses that already have an account, changing nothing, and reads standard input', async () => {
    const before = await users();
    const text = [JSON.stringify({ email: 'BEA@example.test', name: 'Someone else', password_hash: await bcrypt.hash('an attacker chose this', 4) }), JSON.stringify({ email: 'new@example.test' })].join('\n');
    const res = await server.cli(['user', 'import', '--realm', 'default', '--file', '-'], text);
    expect(res.code, res.stderr).toBe(0);
    expect(res.json).toMatchObject({ total: 2, created: 1, skipped: [{ email: 'BEA@example.test', where: 'line 1', reason: 'exists' }] });
    const after = await users();
    expect(after).toHaveLength(before.length + 1);
    expect(after.find((r: any) => r.email === 'bea@example.test')).toEqual(before.find((r: any) => r.email === 'bea@example.test'));
  });

  it('reports progress on stderr for a long import, keeping stdout one JSON document', async () => {
    const many = Array.from({ length: 150 }, (_, i) => JSON.stringify({ email: `bulk${i}@example.test` })).join('\n');
    const res = await server.cli(['user', 'import', '--realm', 'default', '--file', file('bulk.jsonl', many)]);
    expect(res.code, res.stderr).toBe(0);
    expect(res.json).toMatchObject({ total: 150, created: 150 });
    expect(stderrOf(res)).toMatch(/latchkey user import: imported 150 of 150 users \(100%\)\n$/);
  });

  it('the admin API creates a user with an imported hash (password_hash), checked as the import checks it', async () => {
    const c = await server.services.clients.create({ realmId: 'default', name: 'ops', grants: ['client_credentials'], adminApi: true });
    const t = await postForm(`${server.issuer}/token`, { grant_type: 'client_credentials', resource: 'urn:latchkey:admin-api', scope: 'admin' }, { id: c.client_id, secret: c.client_secret! });
    expect(t.status, JSON.stringify(t.body)).toBe(200);
    const create = async (body: unknown) => {
      const res = await testFetch(`${server.issuer}/api/v1/users`, { method: 'POST', headers: { authorization: `Bearer ${t.body.access_token}`, 'content-type': 'application/json' }, body: JSON.stringify(body) });
      return { status: res.status, body: await res.json() };
    };
    const before = (await users()).length;
    for (const [body, message] of [
      [{ email: 'api@example.test', password_hash: 'hunter2' }, 'password_hash is not an argon2'],
      [{ email: 'api@example.test', password_hash: `$2b$31$${'a'.repeat(53)}` }, 'bcrypt hash of cost 31'],
      [{ email: 'api@example.test', password_hash: await bcrypt.hash(BCRYPT_PASSWORD, 4), password: 'a long enough password for the policy' }, 'not both'],
    ] as const) {
      const res = await create(body);
      expect(res.status, JSON.stringify(res.body)).toBe(400);
      expect(res.body.detail).toContain(message);
      expect(res.body.errors.map((e: { field: string }) => e.field)).toEqual(['body.password_hash']);
    }
    expect(await users()).toHaveLength(before);

    const made = await create({ email: 'api@example.test', password_hash: await bcrypt.hash(BCRYPT_PASSWORD, 4) });
    expect(made.status, JSON.stringify(made.body)).toBe(201);
    expect(JSON.stringify(made.body)).not.toContain('$2');
    const { done } = await signIn('api@example.test', BCRYPT_PASSWORD);
    expect(done.url.href.startsWith(REDIRECT), `ended at ${done.url.href}`).toBe(true);
    expect(await hashOf('api@example.test')).toMatch(/^\$argon2id\$/);
  });

  it('user export prints the users in the form import reads; password hashes only when asked; its output imports into another realm', async () => {
    const plain = await server.cli(['user', 'export', '--realm', 'default']);
    expect(plain.code, plain.stderr).toBe(0);
    expect(plain.json.realm).toBe('default');
    expect(plain.json.password_hashes).toBe(false);
    const emails = plain.json.users.map((u: { email: string }) => u.email);
    expect(emails).toEqual(expect.arrayContaining(['bea@example.test', 'off@example.test', 'nohash@example.test']));
    expect(emails).toHaveLength((await users()).length);
    expect(plain.stdout).not.toContain('$argon2');
    expect(plain.stdout).not.toContain('$2');
    expect(plain.json.users.find((u: { email: string }) => u.email === 'off@example.test')).toEqual({ email: 'off@example.test', name: null, email_verified: false, disabled: true });

    const full = await server.cli(['user', 'export', '--realm', 'default', '--include-password-hashes']);
    expect(full.code, full.stderr).toBe(0);
    const bea = full.json.users.find((u: { email: string }) => u.email === 'bea@example.test');
    expect(bea).toEqual({ email: 'bea@example.test', name: 'Bea', email_verified: true, disabled: false, password_hash: await hashOf('bea@example.test') });

    expect((await server.cli(['realm', 'create', '--id', 'moved', '--issuer', `http://moved.localhost:${server.port}`])).code).toBe(0);
    const moved = await server.cli(['user', 'import', '--realm', 'moved', '--file', file('export.json', full.stdout)]);
    expect(moved.code, moved.stderr).toBe(0);
    expect(moved.json).toMatchObject({ realm: 'moved', total: emails.length, created: emails.length, skipped: [] });
    // Bea's argon2id hash (replaced at her first sign-in above) came along: her password works in the new realm
    expect((await server.services.users.verifyPassword('moved', 'bea@example.test', BCRYPT_PASSWORD)).ok).toBe(true);
    expect(await server.services.users.verifyPassword('moved', 'off@example.test', BCRYPT_PASSWORD)).toEqual({ ok: false, reason: 'account_disabled' });
    const missing = await server.cli(['user', 'export', '--realm', 'ghost']);
    expect(missing.code).toBe(1);
    expect(stderrOf(missing)).toContain('realm "ghost"');
  });

  it('while imported bcrypt hashes remain, every failed check costs one argon2 and one bcrypt verification, so none tells an account apart', async () => {
    expect((await server.cli(['realm', 'create', '--id', 'eq', '--issuer', `http://eq.localhost:${server.port}`])).code).toBe(0);
    expect((await server.cli(['user', 'create', '--realm', 'eq', '--email', 'native@example.test', '--password-stdin'], 'a password this server hashed itself')).code).toBe(0);
    const users = server.services.users;
    const counted = async (email: string, password: string) => {
      const before = { ...server.services.hasher.verifications };
      const result = await users.verifyPassword('eq', email, password);
      const after = server.services.hasher.verifications;
      return { result, argon2: after.argon2 - before.argon2, bcrypt: after.bcrypt - before.bcrypt };
    };
    const failed = { result: { ok: false, reason: 'invalid_credentials' }, argon2: 1, bcrypt: 1 };
    // before any import: argon2 only, for a wrong password and an unknown address alike
    expect(await users.importedBcryptCost('eq')).toBeNull();
    expect(await counted('nobody@example.test', 'a wrong password')).toEqual({ ...failed, bcrypt: 0 });
    expect(await counted('native@example.test', 'a wrong password')).toEqual({ ...failed, bcrypt: 0 });

    const records = [
      { email: 'old5@example.test', password_hash: await bcrypt.hash(BCRYPT_PASSWORD, 5) },
      { email: 'old6@example.test', password_hash: await bcrypt.hash(BCRYPT_PASSWORD, 6) },
    ];
    expect((await server.cli(['user', 'import', '--realm', 'eq', '--file', file('eq.json', JSON.stringify(records))])).code).toBe(0);
    expect(await users.importedBcryptCost('eq')).toBe(6);
    // per realm: the default realm still holds the first test's disabled user with a cost-8 hash
    expect(await users.importedBcryptCost('default')).toBe(8);
    for (const email of ['nobody@example.test', 'native@example.test', 'old6@example.test']) {
      expect(await counted(email, 'a wrong password'), email).toEqual(failed);
    }
    // a right password pays nothing extra (and replaces the imported hash)
    expect(await counted('old6@example.test', BCRYPT_PASSWORD)).toMatchObject({ result: { ok: true }, argon2: 0, bcrypt: 1 });
    expect(await users.importedBcryptCost('eq')).toBe(5);
    expect((await users.verifyPassword('eq', 'old5@example.test', BCRYPT_PASSWORD)).ok).toBe(true);
    // none left: failed checks are back to argon2 alone
    expect(await users.importedBcryptCost('eq')).toBeNull();
    expect(await counted('nobody@example.test', 'a wrong password')).toEqual({ ...failed, bcrypt: 0 });
    expect(await counted('old6@example.test', 'a wrong password')).toEqual({ ...failed, bcrypt: 0 });

    if (kind === 'sqlite') {
      // the question is answered from the partial index, not a scan of the realm's users
      const plan = await server.services.db.raw("explain query plan select max(substr(password_hash, 5, 2)) as cost from users where realm_id = ? and password_hash like '$2%'", ['eq']);
      expect(JSON.stringify(plan)).toContain('users_bcrypt_hash');
    }
  });
});
