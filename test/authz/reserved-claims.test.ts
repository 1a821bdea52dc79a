import { jwtVerify } from 'jose';
import * as oidc from 'openid-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RESERVED_CLAIMS } from '../../src/authz/module.js';
import { MODULE_APP_REDIRECT as REDIRECT, startWithModule, writeModule } from '../helpers/authz-module.js';
import { postForm, remoteJwks, signIn } from '../helpers/flows.js';
import { Browser } from '../helpers/http.js';
import type { TestServer } from '../helpers/server.js';

const API = 'https://api.acme.test';
// claims with protocol meaning that a token's reader acts on: who acts for whom (RFC 8693), proof of
// possession (RFC 7800, RFC 9449), the other hash claims of an ID token (OIDC Core), security event
// tokens (RFC 8417), the token's type and use, authorization details (RFC 9396), vectors of trust (RFC 8485)
const PROTOCOL_CLAIMS = ['act', 'may_act', 'cnf', 's_hash', 'at_hash', 'c_hash', 'typ', 'token_use', 'events', 'toe', 'txn', 'htm', 'htu', 'ath', 'authorization_details', 'sub_jwk', 'vot', 'vtm', 'sid', 'azp', 'nonce', 'auth_time', 'acr', 'amr', 'client_id', 'scope', 'jti', 'nbf'];
// a module that tries to set every one of them (an actor saying an admin acts for the user, a key it holds)
const moduleFile = writeModule(
  'reserved',
  `export function createAuthorizationModule() {
    return {
      name: 'forger',
      async onIssue(identity) {
        const forged = { act: { sub: 'admin@evil.test' }, may_act: { sub: 'evil' }, cnf: { jkt: 'forged' }, events: { 'https://schemas.openid.net/secevent/risc/event-type/account-disabled': {} } };
        const claims = { ['https://latchkey.test/' + identity.token]: 'from-module' };
        for (const k of ${JSON.stringify(PROTOCOL_CLAIMS)}) claims[k] = forged[k] ?? 'forged';
        return { allow: true, claims };
      },
      async check() { return false; },
    };
  }`,
);

describe('an authorization module cannot set claims that carry protocol meaning', () => {
  let server: TestServer;
  let config: oidc.Configuration;
  let issuer: string;
  let service: { id: string; secret: string };

  beforeAll(async () => {
    ({ server, issuer, config } = await startWithModule(moduleFile, { email: 'grace@example.test', resources: [{ uri: API, scopes: ['read'] }] }));
    const svc = await server.cli(['client', 'create', '--realm', 'acme', '--name', 'svc', '--grant', 'client_credentials']);
    expect(svc.code, svc.stderr).toBe(0);
    service = { id: svc.json.client_id, secret: svc.json.client_secret };
  });
  afterAll(async () => {
    await server?.close();
    moduleFile.remove();
  });

  it('the list of reserved claims names every one of them', () => {
    expect(PROTOCOL_CLAIMS.filter((c) => !RESERVED_CLAIMS.has(c))).toEqual([]);
  });

  it('ID tokens and access tokens (code, refresh and client_credentials grants) carry none of them from the module', async () => {
    const tokens = await signIn(new Browser(), config, REDIRECT, 'grace@example.test', { scope: 'openid email profile offline_access', resource: API });
    const verify = async (jwt: string, audience: string) => (await jwtVerify(jwt, remoteJwks(issuer), { issuer, audience })).payload;
    const refreshed = await oidc.refreshTokenGrant(config, tokens.refresh_token!, { resource: API });
    const cc = await postForm(`${issuer}/token`, { grant_type: 'client_credentials', resource: API, scope: 'read' }, service);
    expect(cc.status, JSON.stringify(cc.body)).toBe(200);

    const idTokens = await Promise.all([tokens.id_token!, refreshed.id_token!].map((t) => verify(t, config.clientMetadata().client_id)));
    const accessTokens = await Promise.all([tokens.access_token, refreshed.access_token, cc.body.access_token as string].map((t) => verify(t, API)));
    for (const [kind, claims] of [...idTokens.map((c) => ['id_token', c] as const), ...accessTokens.map((c) => ['access_token', c] as const)]) {
      // the module ran for this token: its own claim is there
      expect(claims[`https://latchkey.test/${kind}`]).toBe('from-module');
      for (const name of PROTOCOL_CLAIMS) expect(JSON.stringify(claims[name]) ?? '', `${kind} ${name}`).not.toMatch(/forged|evil/);
      expect(claims.act, kind).toBeUndefined();
      expect(claims.may_act, kind).toBeUndefined();
      expect(claims.events, kind).toBeUndefined();
    }
  });
});
