import { afterAll, beforeAll, expect, it } from 'vitest';
import { adminApi, adminToken } from '../helpers/admin-api.js';
import { describeEachDatabase } from '../helpers/databases.js';
import { PASSWORD } from '../helpers/flows.js';
import { testFetch } from '../helpers/http.js';
import { startTestServer, type TestServer } from '../helpers/server.js';

const WITH_PASSWORD = 'pia@ops.test';
const LINK_ONLY = 'lou@ops.test';

// The operator's side of linked accounts: `latchkey user identities|unlink` and
// GET/DELETE /api/v1/users/{id}/identities[/{connection}].
describeEachDatabase('linked identities for operators', (kind) => {
  let server: TestServer;
  let token: string;
  const ids: Record<string, string> = {};

  const links = async (email: string) => (await server.services.linking.identitiesOf('default', ids[email]!)).map((l) => `${l.connectionId}:${l.subject}`).sort();
  const lastEvent = async (userId: string) => server.services.db('security_events').where({ user_id: userId, type: 'account.identity_unlinked' }).orderBy('id', 'desc').first();

  beforeAll(async () => {
    server = await startTestServer({ db: kind });
    const ok = async (args: string[], stdin?: string) => {
      const r = await server.cli(args, stdin);
      expect(r.code, r.stderr).toBe(0);
      return r.json;
    };
    for (const id of ['corp', 'partner']) {
      await ok(['connection', 'create', '--realm', 'default', '--id', id, '--type', 'oidc', '--issuer', `https://${id}.example.test`, '--name', `${id} SSO`, '--client-id', 'downstream']);
    }
    ids[WITH_PASSWORD] = (await ok(['user', 'create', '--realm', 'default', '--email', WITH_PASSWORD, '--password-stdin'], `${PASSWORD}\n`)).id;
    ids[LINK_ONLY] = (await ok(['user', 'create', '--realm', 'default', '--email', LINK_ONLY])).id;
    // links as sign-ins through the connections leave them (the sign-in itself is covered in test/connections/)
    const at = Date.UTC(2026, 10, 1);
    for (const [email, connection, subject, lastUsed] of [
      [WITH_PASSWORD, 'corp', 'c-pia', at + 60_000],
      [WITH_PASSWORD, 'partner', 'p-pia', null],
      [LINK_ONLY, 'corp', 'c-lou', null],
    ] as const) {
      await server.services.db('federated_identities').insert({
        realm_id: 'default', connection_id: connection, subject, user_id: ids[email]!, email: `${subject}@${connection}.example.test`,
        profile: JSON.stringify({ name: `Name ${subject}` }), created_at: at, last_login_at: lastUsed,
      });
    }
    token = (await adminToken(server)).token;
  });
  afterAll(async () => server?.close());

  it('latchkey user identities lists the links as JSON; an unknown user is an error', async () => {
    const r = await server.cli(['user', 'identities', '--realm', 'default', '--email', WITH_PASSWORD]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.json).toEqual([
      { connection_id: 'corp', connection_name: 'corp SSO', subject: 'c-pia', email: 'c-pia@corp.example.test', name: 'Name c-pia', linked_at: '2026-11-01T00:00:00.000Z', last_used_at: '2026-11-01T00:01:00.000Z' },
      { connection_id: 'partner', connection_name: 'partner SSO', subject: 'p-pia', email: 'p-pia@partner.example.test', name: 'Name p-pia', linked_at: '2026-11-01T00:00:00.000Z', last_used_at: null },
    ]);
    const unknown = await server.cli(['user', 'identities', '--realm', 'default', '--email', 'nobody@ops.test']);
    expect(unknown.code).not.toBe(0);
    expect(unknown.stderr).toContain('user nobody@ops.test in realm "default" does not exist');
    const missing = await server.cli(['user', 'identities', '--realm', 'default']);
    expect(missing.code).not.toBe(0);
    expect(missing.stderr).toContain('--email');
  });

  it('latchkey user unlink refuses the last way in unless --force; unknown user or link is an error', async () => {
    const refused = await server.cli(['user', 'unlink', '--realm', 'default', '--email', LINK_ONLY, '--connection', 'corp']);
    expect(refused.code).not.toBe(0);
    expect(refused.stderr).toContain('is the only way user lou@ops.test can sign in');
    expect(refused.stderr).toContain('--force');
    expect(await links(LINK_ONLY)).toEqual(['corp:c-lou']);

    const noLink = await server.cli(['user', 'unlink', '--realm', 'default', '--email', LINK_ONLY, '--connection', 'partner']);
    expect(noLink.code).not.toBe(0);
    expect(noLink.stderr).toContain('does not exist');
    const noUser = await server.cli(['user', 'unlink', '--realm', 'default', '--email', 'nobody@ops.test', '--connection', 'corp']);
    expect(noUser.code).not.toBe(0);
    expect(noUser.stderr).toContain('user nobody@ops.test in realm "default" does not exist');

    const forced = await server.cli(['user', 'unlink', '--realm', 'default', '--email', LINK_ONLY, '--connection', 'corp', '--force']);
    expect(forced.code, forced.stderr).toBe(0);
    expect(forced.json).toEqual({ realm: 'default', email: LINK_ONLY, user_id: ids[LINK_ONLY], unlinked: 'corp', forced: true });
    expect(await links(LINK_ONLY)).toEqual([]);
    const event = await lastEvent(ids[LINK_ONLY]!);
    expect(JSON.parse(event.detail)).toEqual({ connectionId: 'corp', subjects: ['c-lou'], by: 'cli', lastWayIn: true });

    // a user with a password: no --force needed
    const plain = await server.cli(['user', 'unlink', '--realm', 'default', '--email', WITH_PASSWORD, '--connection', 'partner']);
    expect(plain.code, plain.stderr).toBe(0);
    expect(plain.json.forced).toBe(false);
    expect(await links(WITH_PASSWORD)).toEqual(['corp:c-pia']);
  });

  it('GET /users/{id}/identities and DELETE /users/{id}/identities/{connection}: token needed, 404 for unknown user or link, 409 for the last way in', async () => {
    const anonymous = await testFetch(`${server.issuer}/api/v1/users/${ids[WITH_PASSWORD]}/identities`);
    expect(anonymous.status).toBe(401);
    const anonymousDelete = await testFetch(`${server.issuer}/api/v1/users/${ids[WITH_PASSWORD]}/identities/corp`, { method: 'DELETE' });
    expect(anonymousDelete.status).toBe(401);
    expect(await links(WITH_PASSWORD)).toEqual(['corp:c-pia']);

    const listed = await adminApi(server, token, `/users/${ids[WITH_PASSWORD]}/identities`);
    expect(listed.status).toBe(200);
    expect(listed.body.items).toEqual([{ connection_id: 'corp', connection_name: 'corp SSO', subject: 'c-pia', email: 'c-pia@corp.example.test', name: 'Name c-pia', linked_at: '2026-11-01T00:00:00.000Z', last_used_at: '2026-11-01T00:01:00.000Z' }]);
    const unknownUser = await adminApi(server, token, '/users/no-such-user/identities');
    expect(unknownUser.status).toBe(404);
    expect(unknownUser.type).toContain('application/problem+json');
    expect((await adminApi(server, token, '/users/no-such-user/identities/corp', { method: 'DELETE' })).status).toBe(404);
    const unknownLink = await adminApi(server, token, `/users/${ids[WITH_PASSWORD]}/identities/nope`, { method: 'DELETE' });
    expect(unknownLink.status).toBe(404);
    expect(unknownLink.body.detail).toContain('connection "nope"');

    // the last way in: refused, then forced
    await server.services.db('federated_identities').insert({ realm_id: 'default', connection_id: 'partner', subject: 'p-lou', user_id: ids[LINK_ONLY]!, email: null, profile: '{}', created_at: Date.now(), last_login_at: null });
    const refused = await adminApi(server, token, `/users/${ids[LINK_ONLY]}/identities/partner`, { method: 'DELETE' });
    expect(refused.status).toBe(409);
    expect(refused.body.detail).toContain('force=true');
    expect(await links(LINK_ONLY)).toEqual(['partner:p-lou']);
    const badForce = await adminApi(server, token, `/users/${ids[LINK_ONLY]}/identities/partner?force=yes`, { method: 'DELETE' });
    expect(badForce.status).toBe(400);
    expect(JSON.stringify(badForce.body.errors)).toContain('query.force');
    const forced = await adminApi(server, token, `/users/${ids[LINK_ONLY]}/identities/partner?force=true`, { method: 'DELETE' });
    expect(forced.status).toBe(204);
    expect(await links(LINK_ONLY)).toEqual([]);
    expect(JSON.parse((await lastEvent(ids[LINK_ONLY]!)).detail).by).toBe('admin-api');

    const removed = await adminApi(server, token, `/users/${ids[WITH_PASSWORD]}/identities/corp`, { method: 'DELETE' });
    expect(removed.status).toBe(204);
    expect(await links(WITH_PASSWORD)).toEqual([]);
    expect((await adminApi(server, token, `/users/${ids[WITH_PASSWORD]}/identities`)).body.items).toEqual([]);

    const doc = await adminApi(server, token, '/openapi.json');
    expect(Object.keys(doc.body.paths['/users/{userId}/identities/{connectionId}'].delete.responses)).toContain('409');
  });
});
