import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { jwtVerify } from 'jose';
import * as oidc from 'openid-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { discover, PASSWORD, remoteJwks, signIn } from '../helpers/flows.js';
import { Browser } from '../helpers/http.js';
import { startTestServer, type TestServer } from '../helpers/server.js';

const REDIRECT = 'http://app.example.test/callback';
const API = 'https://api.acme.test';
const dir = mkdtempSync(join(tmpdir(), 'latchkey-authz-claims-'));
const modulePath = join(dir, 'module.mjs');
// one claim per token kind, plus attempts at claims that are the server's to state
writeFileSync(
  modulePath,
  `export function createAuthorizationModule() {
    return {
      name: 'claims',
      async onIssue(identity) {
        return { allow: true, claims: { ['https://latchkey.test/' + identity.token]: 'from-module', roles: ['editor'], name: 'Forged Name', email_verified: false, tenant_id: 'forged', acr: 'forged' } };
      },
      async check() { return false; },
    };
  }`,
);

describe("an authorization module's claims reach the token they were given for", () => {
  let server: TestServer;
  let config: oidc.Configuration;
  let issuer: string;

  beforeAll(async () => {
    server = await startTestServer({ overrides: { authorization: { module: modulePath, options: {} } } });
    const settings = join(dir, 'settings.json');
    writeFileSync(settings, JSON.stringify({ resources: [{ uri: API, scopes: ['read'] }] }));
    issuer = `http://acme.localhost:${server.port}`;
    const realm = await server.cli(['realm', 'create', '--id', 'acme', '--issuer', issuer, '--settings', settings]);
    expect(realm.code, realm.stderr).toBe(0);
    const web = await server.cli(['client', 'create', '--realm', 'acme', '--name', 'web', '--redirect-uri', REDIRECT, '--first-party']);
    expect(web.code, web.stderr).toBe(0);
    // no name: the module must not be able to fill one in
    const user = await server.cli(['user', 'create', '--realm', 'acme', '--email', 'grace@example.test', '--password-stdin'], `${PASSWORD}\n`);
    expect(user.code, user.stderr).toBe(0);
    config = await discover(issuer, web.json.client_id, { client_secret: web.json.client_secret });
  });
  afterAll(async () => {
    await server?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('ID tokens carry the claims given for the ID token (code and refresh grants), never the user claims it tried to set', async () => {
    const tokens = await signIn(new Browser(), config, REDIRECT, 'grace@example.test', { scope: 'openid email profile offline_access', resource: API });
    const verify = async (jwt: string, audience: string) => (await jwtVerify(jwt, remoteJwks(issuer), { issuer, audience })).payload;

    for (const idToken of [tokens.id_token!, (await oidc.refreshTokenGrant(config, tokens.refresh_token!, { resource: API })).id_token!]) {
      const claims = await verify(idToken, config.clientMetadata().client_id);
      expect(claims['https://latchkey.test/id_token']).toBe('from-module');
      expect(claims.roles).toEqual(['editor']);
      expect(claims['https://latchkey.test/access_token']).toBeUndefined();
      expect(claims.name).toBeUndefined();
      expect(claims.email_verified).toBe(true);
      expect(claims.tenant_id).toBeUndefined();
      expect(claims.acr).not.toBe('forged');
    }

    const access = await verify(tokens.access_token, API);
    expect(access['https://latchkey.test/access_token']).toBe('from-module');
    expect(access['https://latchkey.test/id_token']).toBeUndefined();
    expect(access.tenant_id).toBeUndefined();
  });
});
