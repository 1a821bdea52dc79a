import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { ConnectionService } from '../../src/connections/service.js';
import { SecretBox } from '../../src/crypto/secret-box.js';
import { keysRepo } from '../../src/db/keys-repo.js';
import { realmsRepo } from '../../src/db/realms-repo.js';
import { generateKey } from '../../src/keys/generate.js';
import { listSecurityEvents } from '../../src/mfa/security-events.js';
import { TotpService } from '../../src/mfa/totp.js';
import { describeEachDatabase } from '../helpers/databases.js';
import { runCli, startTestServer, type TestServer } from '../helpers/server.js';
import { codeAt } from '../helpers/totp.js';

/**
 * A database in which some values were sealed, by the real sealing code, under another LATCHKEY_SECRET
 * (a command once run with the wrong secret, a restore mixing two installations): `secrets check` finds
 * them without printing a secret, and each kind has its fix.
 */
describeEachDatabase('latchkey secrets: values sealed with another LATCHKEY_SECRET', (kind) => {
  let server: TestServer;
  let ann: { id: string };
  let bob: { id: string };
  let foreignKid: string;
  const secrets: string[] = [];

  /** A user with a confirmed TOTP factor sealed by `totp` (the server's, or one holding another secret). */
  async function enrolled(email: string, totp: TotpService): Promise<{ id: string }> {
    const user = await server.services.users.create({ realmId: 'default', email });
    const enrolment = await totp.startEnrolment('default', user.id, email, 'Latchkey');
    expect(await totp.confirmEnrolment('default', user.id, codeAt(enrolment.secret, Date.now()))).toBe(true);
    secrets.push(enrolment.secret);
    return user;
  }

  beforeAll(async () => {
    server = await startTestServer({ db: kind });
    const { db, realms } = server.services;
    const other = new SecretBox(randomBytes(32).toString('base64url'));
    ann = await enrolled('ann@secrets.test', server.services.totp);
    bob = await enrolled('bob@secrets.test', new TotpService(db, other));
    await server.services.connections.create({ realmId: 'default', id: 'google', preset: 'google', clientId: 'good-client', clientSecret: 'good-upstream-secret' });
    await new ConnectionService(db, other, realms).create({ realmId: 'default', id: 'stale', preset: 'google', clientId: 'stale-client', clientSecret: 'stale-upstream-secret' });
    secrets.push('good-upstream-secret', 'stale-upstream-secret');
    // a second realm with one extra signing key sealed with the other secret
    await realms.create({ id: 'acme', issuers: [`http://acme.localhost:${server.port}`] });
    const key = generateKey('EdDSA');
    foreignKid = key.kid;
    const now = Date.now();
    await keysRepo.insert(db, { kid: key.kid, realmId: 'acme', family: 'EdDSA', publicJwk: key.publicJwk as Record<string, unknown>, sealedPrivateJwk: other.seal(JSON.stringify(key.privateJwk), `signing-key:${key.kid}`), createdAt: now, activateAt: now + 3_600_000 });
    await realmsRepo.bumpRevision(db, 'acme', now);
    // the stored (sealed) forms must not be printed either
    secrets.push(...(await db('totp_factors').select('secret')).map((r: { secret: string }) => r.secret));
    secrets.push(...(await db('connections').whereNotNull('client_secret').select('client_secret')).map((r: { client_secret: string }) => r.client_secret));
  });
  afterAll(async () => server?.close());

  const noSecretIn = (text: string) => {
    for (const s of secrets) expect(text.includes(s), 'a secret or its sealed form was printed').toBe(false);
  };

  it('check lists, per kind, how many open and which do not, with the fix, and prints no secret', async () => {
    const res = await server.cli(['secrets', 'check']);
    expect(res.code, res.stderr).toBe(0);
    noSecretIn(res.stdout + res.stderr);
    const r = res.json;
    expect(r.ok).toBe(false);
    expect(r.realm).toBe(null);
    expect(r.totp_factors).toMatchObject({ total: 2, readable: 1 });
    expect(r.totp_factors.unreadable).toEqual([
      { realm: 'default', user_id: bob.id, email: 'bob@secrets.test', confirmed: true, fix: `latchkey secrets reset-totp --realm default --user-id ${bob.id} --yes` },
    ]);
    expect(r.connection_secrets).toMatchObject({ total: 2, readable: 1 });
    expect(r.connection_secrets.unreadable).toEqual([{ realm: 'default', connection_id: 'stale', fix: 'latchkey connection set-secret --realm default --id stale --client-secret-stdin' }]);
    expect(r.signing_keys.unreadable).toEqual([{ realm: 'acme', kid: foreignKid, state: 'pending', fix: 'latchkey keys repair --realm acme --yes' }]);
    expect(r.signing_keys.readable).toBe(r.signing_keys.total - 1);
    expect(res.stderr).toContain('latchkey secrets: checking TOTP secrets');
    expect(res.stderr).toContain('latchkey secrets: checking upstream connection client secrets');
    expect(res.stderr).toContain('3 stored secrets cannot be opened with this LATCHKEY_SECRET');

    const one = await server.cli(['secrets', 'check', '--realm', 'default']);
    expect(one.code, one.stderr).toBe(0);
    expect(one.json.realm).toBe('default');
    expect(one.json.signing_keys.unreadable).toEqual([]);
    expect(one.json.signing_keys.fix).toBe(null);
    expect(one.json.totp_factors.unreadable.map((f: { user_id: string }) => f.user_id)).toEqual([bob.id]);
    const unknown = await server.cli(['secrets', 'check', '--realm', 'nope']);
    expect(unknown.code).toBe(1);
    expect(unknown.stderr).toContain('realm "nope"');
  });

  it('reset-totp deletes only a factor that does not open, asks for --yes, and records a security event', async () => {
    const readable = await server.cli(['secrets', 'reset-totp', '--realm', 'default', '--email', 'ann@secrets.test', '--yes']);
    expect(readable.code).toBe(1);
    expect(readable.stderr).toContain('opens with this LATCHKEY_SECRET: it works and is not reset');
    expect(await server.services.totp.isEnrolled('default', ann.id)).toBe(true);

    // with a wrong secret every factor would look unreadable: the command refuses to run at all
    const wrongSecret = await runCli({ ...server.env, LATCHKEY_SECRET: randomBytes(32).toString('base64url') }, ['secrets', 'reset-totp', '--realm', 'default', '--email', 'ann@secrets.test', '--yes']);
    expect(wrongSecret.code).toBe(1);
    expect(wrongSecret.stderr).toContain('latchkey secrets: LATCHKEY_SECRET is not the secret');
    expect(await server.services.totp.isEnrolled('default', ann.id)).toBe(true);

    const unconfirmed = await server.cli(['secrets', 'reset-totp', '--realm', 'default', '--user-id', bob.id]);
    expect(unconfirmed.code).toBe(2);
    expect(unconfirmed.stderr).toContain('Add --yes to go ahead');
    expect(await server.services.totp.isEnrolled('default', bob.id)).toBe(true);
    expect(await listSecurityEvents(server.services.db, 'default', bob.id)).not.toContainEqual(expect.objectContaining({ type: 'totp_reset_unreadable' }));

    const reset = await server.cli(['secrets', 'reset-totp', '--realm', 'default', '--user-id', bob.id, '--yes']);
    expect(reset.code, reset.stderr).toBe(0);
    expect(reset.json).toEqual({ realm: 'default', user_id: bob.id, email: 'bob@secrets.test', totp_reset: true, was_confirmed: true, security_event: 'totp_reset_unreadable' });
    expect(reset.stderr).toContain('password alone');
    expect(await server.services.totp.isEnrolled('default', bob.id)).toBe(false);
    expect(await listSecurityEvents(server.services.db, 'default', bob.id)).toContainEqual(expect.objectContaining({ type: 'totp_reset_unreadable', detail: expect.objectContaining({ via: 'cli', confirmed: true }) }));
    const again = await server.cli(['secrets', 'reset-totp', '--realm', 'default', '--user-id', bob.id, '--yes']);
    expect(again.code).toBe(1);
    expect(again.stderr).toContain('does not exist');
  });

  it('connection set-secret stores a secret that opens; the check is then clean for the realm', async () => {
    const set = await server.cli(['connection', 'set-secret', '--realm', 'default', '--id', 'stale', '--client-secret-stdin'], 'fresh-upstream-secret\n');
    expect(set.code, set.stderr).toBe(0);
    expect(set.json).toMatchObject({ id: 'stale', realm: 'default' });
    noSecretIn(set.stdout + set.stderr);
    expect(set.stdout).not.toContain('fresh-upstream-secret');
    expect((await server.services.connections.usable('default', 'stale'))?.clientSecret).toBe('fresh-upstream-secret');
    const missing = await server.cli(['connection', 'set-secret', '--realm', 'default', '--id', 'nope', '--client-secret-stdin'], 'x\n');
    expect(missing.code).toBe(1);
    expect(missing.stderr).toContain('connection "nope"');

    const clean = await server.cli(['secrets', 'check', '--realm', 'default']);
    expect(clean.code, clean.stderr).toBe(0);
    expect(clean.json).toMatchObject({ ok: true, totp_factors: { total: 1, readable: 1, unreadable: [], fix: null }, connection_secrets: { total: 2, readable: 2, unreadable: [], fix: null } });
    expect(clean.stderr).not.toContain('warning');
  });
});
