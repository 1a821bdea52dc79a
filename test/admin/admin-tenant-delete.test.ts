import { decodeJwt } from 'jose';
import * as oidc from 'openid-client';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { describeEachDatabase } from '../helpers/databases.js';
import { discover, PASSWORD, postForm, signIn } from '../helpers/flows.js';
import { Browser, testFetch } from '../helpers/http.js';
import { startTestServer, type TestServer } from '../helpers/server.js';

const ADMIN = 'urn:latchkey:admin-api';
const REDIRECT = 'http://app.example.test/callback';

// Removing a member ends their sign-ins for the tenant at once (README, tenants); deleting the whole
// tenant removes every membership and must not do less.
describeEachDatabase('admin API: deleting a tenant ends the sign-ins made for it', (kind) => {
  let server: TestServer;
  let token: string;
  let config: oidc.Configuration;

  const cli = async (args: string[], stdin?: string) => {
    const r = await server.cli(args, stdin);
    expect(r.code, `${args.join(' ')}: ${r.stderr}`).toBe(0);
    return r.json;
  };

  beforeAll(async () => {
    server = await startTestServer({ db: kind });
    const c = await server.services.clients.create({ realmId: 'default', name: 'ops', grants: ['client_credentials'], adminApi: true });
    const r = await postForm(`${server.issuer}/token`, { grant_type: 'client_credentials', resource: ADMIN, scope: 'admin' }, { id: c.client_id, secret: c.client_secret! });
    expect(r.status, JSON.stringify(r.body)).toBe(200);
    token = r.body.access_token;
    const web = await cli(['client', 'create', '--realm', 'default', '--name', 'Web', '--redirect-uri', REDIRECT, '--first-party', '--grant', 'authorization_code', '--grant', 'refresh_token']);
    config = await discover(server.issuer, web.client_id, { client_secret: web.client_secret });
    await cli(['user', 'create', '--realm', 'default', '--email', 'ann@acme.test', '--password-stdin'], `${PASSWORD}\n`);
    await cli(['tenant', 'create', '--realm', 'default', '--id', 'acme', '--name', 'Acme Corp']);
    await cli(['tenant', 'add-member', '--realm', 'default', '--tenant', 'acme', '--email', 'ann@acme.test']);
  });
  afterAll(async () => server?.close());

  it('the refresh token of a sign-in for the deleted tenant gives nothing more (invalid_grant), not a token without the tenant', async () => {
    const tokens = await signIn(new Browser(), config, REDIRECT, 'ann@acme.test', { scope: 'openid email offline_access', tenant_id: 'acme' });
    expect(decodeJwt(tokens.id_token!).tenant_id).toBe('acme');

    const deleted = await testFetch(`${server.issuer}/api/v1/tenants/acme`, { method: 'DELETE', headers: { authorization: `Bearer ${token}` } });
    expect(deleted.status).toBe(204);

    const refreshed = await oidc.refreshTokenGrant(config, tokens.refresh_token!).then(
      (t) => ({ tenant: decodeJwt(t.id_token!).tenant_id ?? 'none' }),
      (err: { error?: string }) => ({ error: err.error }),
    );
    expect(refreshed).toEqual({ error: 'invalid_grant' });
  });
});
