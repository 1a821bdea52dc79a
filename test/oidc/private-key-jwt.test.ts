import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { exportJWK, generateKeyPair, SignJWT } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { testFetch } from '../helpers/http.js';
import { startTestServer, type TestServer } from '../helpers/server.js';

describe('private_key_jwt with per-realm assertion algorithms', () => {
  let server: TestServer;
  let issuer: string;
  let clientId: string;
  const keys: Record<string, { privateKey: CryptoKey; kid: string }> = {};

  beforeAll(async () => {
    server = await startTestServer();
    issuer = `http://pkjwt.localhost:${server.port}`;
    const dir = mkdtempSync(join(tmpdir(), 'latchkey-pkjwt-'));
    writeFileSync(join(dir, 'settings.json'), JSON.stringify({ clientAuthSigningAlgs: ['ES256'] }));
    const realm = await server.cli(['realm', 'create', '--id', 'pk', '--issuer', issuer, '--settings', join(dir, 'settings.json')]);
    expect(realm.code, realm.stderr).toBe(0);
    const publicJwks = [];
    for (const alg of ['ES256', 'EdDSA'] as const) {
      const pair = await generateKeyPair(alg, { extractable: true });
      const jwk = await exportJWK(pair.publicKey);
      const kid = `${alg}-key`;
      keys[alg] = { privateKey: pair.privateKey as CryptoKey, kid };
      publicJwks.push({ ...jwk, kid, alg, use: 'sig' });
    }
    const created = await server.cli([
      'client', 'create', '--realm', 'pk', '--name', 'signed', '--grant', 'client_credentials',
      '--auth-method', 'private_key_jwt', '--jwks', JSON.stringify({ keys: publicJwks }),
    ]);
    expect(created.code, created.stderr).toBe(0);
    expect(created.json.client_secret).toBeUndefined();
    clientId = created.json.client_id;
  });
  afterAll(async () => server?.close());

  async function tokenWith(alg: 'ES256' | 'EdDSA') {
    const assertion = await new SignJWT({})
      .setProtectedHeader({ alg, kid: keys[alg]!.kid })
      .setIssuer(clientId)
      .setSubject(clientId)
      .setAudience(issuer)
      .setJti(crypto.randomUUID())
      .setIssuedAt()
      .setExpirationTime('1m')
      .sign(keys[alg]!.privateKey);
    const res = await testFetch(`${issuer}/token`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({
        grant_type: 'client_credentials',
        client_id: clientId,
        client_assertion_type: 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer',
        client_assertion: assertion,
      }),
    });
    return { status: res.status, json: (await res.json()) as any, assertion };
  }

  it('discovery advertises only the realm\'s algorithms', async () => {
    const meta = (await (await testFetch(`${issuer}/.well-known/openid-configuration`)).json()) as any;
    expect(meta.token_endpoint_auth_signing_alg_values_supported).toEqual(['ES256']);
  });

  it('accepts an assertion signed with an allowed algorithm', async () => {
    const res = await tokenWith('ES256');
    expect(res.status).toBe(200);
    expect(res.json.access_token).toBeTruthy();
  });

  it('refuses an assertion signed with an algorithm the realm does not accept', async () => {
    const res = await tokenWith('EdDSA');
    expect(res.status).toBe(401);
    expect(res.json.error).toBe('invalid_client');
  });
});
