import * as oidc from 'openid-client';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { signInToAccount } from '../helpers/account-pages.js';
import { adminApi, adminToken } from '../helpers/admin-api.js';
import { describeEachDatabase } from '../helpers/databases.js';
import { discover, PASSWORD, postForm, signIn } from '../helpers/flows.js';
import { testFetch } from '../helpers/http.js';
import { startTestServer, type TestServer } from '../helpers/server.js';
import { BrowserWithAgent, USER_AGENTS } from '../helpers/user-agents.js';

const REDIRECT = 'http://app.example.test/callback';
const ADA = 'ada@example.test';
const ISO = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/;

/** `latchkey user sessions` and the admin API's GET /users/{userId}/sessions: a user's live sessions, for operators. */
describeEachDatabase("a user's sessions for operators (CLI and admin API)", (kind) => {
  let server: TestServer;
  let adaId: string;
  let notes: { id: string; secret: string };

  beforeAll(async () => {
    server = await startTestServer({ db: kind });
    const c = await server.services.clients.create({ realmId: 'default', name: 'Notes', redirectUris: [REDIRECT], firstParty: true });
    notes = { id: c.client_id, secret: c.client_secret! };
    adaId = (await server.services.users.create({ realmId: 'default', email: ADA, password: PASSWORD })).id;
    await server.services.users.create({ realmId: 'default', email: 'bob@example.test', password: PASSWORD });
    // two sessions: the account page from Firefox on Linux, an application from Edge on Windows
    await signInToAccount(new BrowserWithAgent(USER_AGENTS.firefoxLinux), server.issuer, { email: ADA, password: PASSWORD });
    await signIn(new BrowserWithAgent(USER_AGENTS.edgeWindows), await discover(server.issuer, notes.id, {}, oidc.ClientSecretBasic(notes.secret)), REDIRECT, ADA, { scope: 'openid' });
  });
  afterAll(async () => server?.close());

  const expected = () => {
    const domain = new URL(server.issuer).host;
    const session = (browser: string, os: string, clients: Array<{ client_id: string; name: string }>) => ({
      id: expect.any(String),
      domain,
      browser,
      os,
      signed_in_at: expect.stringMatching(ISO),
      last_used_at: expect.stringMatching(ISO),
      clients,
    });
    return expect.arrayContaining([
      session('Firefox 133', 'Linux', [{ client_id: 'latchkey-account', name: 'Your account' }]),
      session('Edge 131', 'Windows', [{ client_id: notes.id, name: 'Notes' }]),
    ]);
  };

  it('latchkey user sessions prints them as JSON; an unknown user is an error', async () => {
    const r = await server.cli(['user', 'sessions', '--realm', 'default', '--email', ADA]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.json).toEqual({ realm: 'default', email: ADA, user_id: adaId, sessions: expected() });
    expect(r.json.sessions).toHaveLength(2);
    // the ids are the sessions' uids, not their cookie values
    const stored = await server.services.db('oidc_payloads').where({ realm_id: 'default', model: 'Session', account_id: adaId }).select('id', 'uid');
    expect(new Set(r.json.sessions.map((s: { id: string }) => s.id))).toEqual(new Set(stored.map((s: { uid: string }) => s.uid)));
    expect(stored.some((s: { id: string }) => r.stdout.includes(s.id))).toBe(false);

    const bob = await server.cli(['user', 'sessions', '--realm', 'default', '--email', 'bob@example.test']);
    expect(bob.code, bob.stderr).toBe(0);
    expect(bob.json.sessions).toEqual([]);
    const unknown = await server.cli(['user', 'sessions', '--realm', 'default', '--email', 'nobody@example.test']);
    expect(unknown.code).not.toBe(0);
    expect(unknown.stderr).toContain('nobody@example.test');
    const missing = await server.cli(['user', 'sessions', '--realm', 'default']);
    expect(missing.code).not.toBe(0);
    expect(missing.stderr).toContain('--email');
  });

  it('GET /api/v1/users/{userId}/sessions answers the same to an admin token (read-only is enough); 401 without one, 404 for an unknown user', async () => {
    const { token } = await adminToken(server);
    const res = await adminApi(server, token, `/users/${adaId}/sessions`);
    expect(res.status, JSON.stringify(res.body)).toBe(200);
    expect(res.body).toEqual({ user_id: adaId, sessions: expected() });

    const reader = await server.services.clients.create({ realmId: 'default', name: 'auditor', grants: ['client_credentials'], adminApi: true });
    const read = await postForm(`${server.issuer}/token`, { grant_type: 'client_credentials', resource: 'urn:latchkey:admin-api', scope: 'admin:read' }, { id: reader.client_id, secret: reader.client_secret! });
    expect((await adminApi(server, read.body.access_token, `/users/${adaId}/sessions`)).status).toBe(200);

    const anonymous = await testFetch(`${server.issuer}/api/v1/users/${adaId}/sessions`);
    expect(anonymous.status).toBe(401);
    const unknown = await adminApi(server, token, '/users/no-such-user/sessions');
    expect(unknown.status).toBe(404);
    expect(unknown.type).toContain('application/problem+json');

    const doc = await adminApi(server, token, '/openapi.json');
    expect(doc.body.paths['/users/{userId}/sessions'].get.operationId).toBe('listUserSessions');
  });
});
