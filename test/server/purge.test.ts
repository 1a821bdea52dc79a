import { afterAll, beforeAll, expect, it } from 'vitest';
import { describeEachDatabase } from '../helpers/databases.js';
import { startTestServer, type TestServer } from '../helpers/server.js';
import { PURGE_BATCH_ROWS } from '../../src/db/batched-delete.js';
import { purgeExpired } from '../../src/server/purge.js';

describeEachDatabase('the background purge', (kind) => {
  let server: TestServer;
  const HOUR = 3600_000;

  beforeAll(async () => {
    server = await startTestServer({ db: kind });
  });
  afterAll(async () => server?.close());

  it('removes expired sign-in progress, old challenges and the tenant of vanished grants, and keeps the rest', async () => {
    const { db } = server.services;
    const now = Date.now();
    await db('signin_progress').insert([
      { realm_id: 'default', uid: 'expired', data: '{}', expires_at: now - 1 },
      { realm_id: 'default', uid: 'live', data: '{}', expires_at: now + HOUR },
    ]);
    const challenge = (id: string, expiresAt: number) => ({ challenge: id, realm_id: 'default', ceremony: 'authentication', bound_to: 'interaction:x', rp_id: 'localhost', user_id: null, expires_at: expiresAt, used_at: null });
    await db('webauthn_challenges').insert([challenge('old', now - 2 * HOUR), challenge('recent', now - 60_000), challenge('open', now + 300_000)]);
    await server.services.tenants.create('default', { id: 'acme', displayName: 'Acme' });
    await db('oidc_payloads').insert({ realm_id: 'default', model: 'Grant', id: 'grant-alive', payload: '{}', expires_at: now + HOUR });
    await db('grant_tenants').insert([
      { realm_id: 'default', grant_id: 'grant-alive', tenant_id: 'acme', created_at: now - 2 * HOUR },
      { realm_id: 'default', grant_id: 'grant-gone', tenant_id: 'acme', created_at: now - 2 * HOUR },
      { realm_id: 'default', grant_id: 'grant-being-saved', tenant_id: 'acme', created_at: now - 1000 },
    ]);

    const removed = await purgeExpired(server.services, now);
    expect(removed).toMatchObject({ signInProgress: 1, webauthnChallenges: 1, grantTenants: 1 });
    expect((await db('signin_progress').select('uid')).map((r) => r.uid)).toEqual(['live']);
    expect((await db('webauthn_challenges').select('challenge').orderBy('challenge')).map((r) => r.challenge)).toEqual(['open', 'recent']);
    expect((await db('grant_tenants').select('grant_id').orderBy('grant_id')).map((r) => r.grant_id)).toEqual(['grant-alive', 'grant-being-saved']);
    expect(await purgeExpired(server.services, now)).toMatchObject({ signInProgress: 0, webauthnChallenges: 0, grantTenants: 0 });
  });
  it('forgets brute-force counters once their failures are forgotten, unless locked, and abandoned password-check reservations', async () => {
    const { db, config } = server.services;
    const now = Date.now();
    const resetMs = config.bruteForce.failureResetSeconds * 1000;
    const counter = (key: string, lastFailureAt: number, lockedUntil: number) => ({ realm_id: 'default', key, failures: 3, last_failure_at: lastFailureAt, locked_until: lockedUntil });
    await db('login_throttle').insert([
      counter('purge:forgotten', now - resetMs - 1000, 0),
      counter('purge:recent', now - 1000, 0),
      counter('purge:locked', now - resetMs - 1000, now + 60_000),
    ]);
    await db('login_throttle_reservations').insert([
      { id: 'abandoned', realm_id: 'default', key: 'purge:recent', expires_at: now - 1 },
      { id: 'in-flight', realm_id: 'default', key: 'purge:recent', expires_at: now + 60_000 },
    ]);
    const removed = await purgeExpired(server.services, now);
    expect(removed.loginThrottle).toBe(2);
    expect((await db('login_throttle').where('key', 'like', 'purge:%').select('key').orderBy('key')).map((r) => r.key)).toEqual(['purge:locked', 'purge:recent']);
    expect((await db('login_throttle_reservations').where('key', 'like', 'purge:%').select('id')).map((r) => r.id)).toEqual(['in-flight']);
    expect((await purgeExpired(server.services, now)).loginThrottle).toBe(0);
  });

  it('deletes a large backlog in batches, giving the event loop turns in between, and keeps what has not expired', async () => {
    const { db } = server.services;
    const now = Date.now();
    const expired = PURGE_BATCH_ROWS * 3 + 7;
    const rows = Array.from({ length: expired + 5 }, (_, i) => ({
      realm_id: 'default',
      model: 'AuthorizationCode',
      id: `backlog-${i}`,
      payload: '{}',
      grant_id: `backlog-grant-${i}`,
      expires_at: i < expired ? now - 1 : now + HOUR,
    }));
    for (let i = 0; i < rows.length; i += 100) await db('oidc_payloads').insert(rows.slice(i, i + 100));
    // counts the event loop's turns while the purge runs (one setImmediate per turn)
    let turns = 0;
    let counting = true;
    const tick = () => {
      turns++;
      if (counting) setImmediate(tick);
    };
    setImmediate(tick);
    const removed = await purgeExpired(server.services, now);
    counting = false;
    expect(removed.oidcArtefacts).toBe(expired);
    expect(turns, 'the event loop turned between the batches').toBeGreaterThanOrEqual(Math.floor(expired / PURGE_BATCH_ROWS));
    const left = await db('oidc_payloads').where('id', 'like', 'backlog-%').select('id');
    expect(left.map((r) => r.id).sort()).toEqual(rows.slice(expired).map((r) => r.id).sort());
  });
});
