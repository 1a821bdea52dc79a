import { jwtVerify } from 'jose';
import * as oidc from 'openid-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MODULE_APP_REDIRECT as REDIRECT, startWithModule, writeModule } from '../helpers/authz-module.js';
import { remoteJwks, signIn } from '../helpers/flows.js';
import { Browser } from '../helpers/http.js';
import type { TestServer } from '../helpers/server.js';

const API = 'https://api.acme.test';
// one claim per token kind, plus attempts at claims that are the server's to state
const moduleFile = writeModule(
  'claims',
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
    // the user has no name: the module must not be able to fill one in
    ({ server, issuer, config } = await startWithModule(moduleFile, { email: 'grace@example.test', resources: [{ uri: API, scopes: ['read'] }] }));
  });
  afterAll(async () => {
    await server?.close();
    moduleFile.remove();
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
