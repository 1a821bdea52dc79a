import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { decodeProtectedHeader, jwtVerify } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Browser } from '../helpers/http.js';
import { discover, PASSWORD, postForm, remoteJwks, signIn } from '../helpers/flows.js';
import { startTestServer, type TestServer } from '../helpers/server.js';

const REDIRECT = 'http://rp.example.test/cb';

// Relying parties that cannot verify EdDSA (e.g. Apache mod_auth_openidc 2.4.12) pick RS256, ES256 or PS256.
describe('signing algorithms per client and per realm', () => {
  let server: TestServer;

  beforeAll(async () => {
    server = await startTestServer();
    const user = await server.cli(['user', 'create', '--realm', 'default', '--email', 'alg@example.test', '--password-stdin'], PASSWORD);
    expect(user.code, user.stderr).toBe(0);
  });
  afterAll(async () => server?.close());

  it('every realm publishes Ed25519, RSA and P-256 keys', async () => {
    const jwks = (await (await fetch(`${server.issuer}/jwks`)).json()) as { keys: Array<{ kty: string; crv?: string; d?: string }> };
    expect(jwks.keys.map((k) => `${k.kty}:${k.crv ?? ''}`).sort()).toEqual(['EC:P-256', 'OKP:Ed25519', 'RSA:']);
    expect(jwks.keys.every((k) => k.d === undefined)).toBe(true);
  });

  for (const alg of ['RS256', 'PS256', 'ES256', 'EdDSA'] as const) {
    it(`signs the ID token of a client registered with --id-token-alg ${alg}`, async () => {
      const created = await server.cli(['client', 'create', '--realm', 'default', '--name', `rp-${alg}`, '--redirect-uri', REDIRECT, '--first-party', '--id-token-alg', alg]);
      expect(created.code, created.stderr).toBe(0);
      expect(created.json.id_token_signed_response_alg).toBe(alg);
      const tokens = await signIn(new Browser(), await discover(server.issuer, created.json.client_id, { id_token_signed_response_alg: alg, client_secret: created.json.client_secret }), REDIRECT, 'alg@example.test');
      expect(decodeProtectedHeader(tokens.id_token!).alg).toBe(alg);
      const { payload } = await jwtVerify(tokens.id_token!, remoteJwks(server.issuer), { issuer: server.issuer, audience: created.json.client_id, algorithms: [alg] });
      expect(payload.email).toBe('alg@example.test');
    });
  }

  it('a realm whose default is ES256 signs ID tokens and JWT access tokens with ES256', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'latchkey-alg-'));
    writeFileSync(join(dir, 's.json'), JSON.stringify({ signingAlg: 'ES256' }));
    const issuer = `http://es.localhost:${server.port}`;
    expect((await server.cli(['realm', 'create', '--id', 'es', '--issuer', issuer, '--settings', join(dir, 's.json')])).code).toBe(0);
    const svc = await server.cli(['client', 'create', '--realm', 'es', '--name', 'svc', '--grant', 'client_credentials']);
    const token = await postForm(`${issuer}/token`, { grant_type: 'client_credentials' }, { id: svc.json.client_id, secret: svc.json.client_secret });
    expect(token.status).toBe(200);
    expect(decodeProtectedHeader(token.body.access_token)).toMatchObject({ alg: 'ES256', typ: 'at+jwt' });
    await jwtVerify(token.body.access_token, remoteJwks(issuer), { issuer, audience: `${issuer}/api`, algorithms: ['ES256'] });

    expect((await server.cli(['user', 'create', '--realm', 'es', '--email', 'es@example.test', '--password-stdin'], PASSWORD)).code).toBe(0);
    const rp = await server.cli(['client', 'create', '--realm', 'es', '--name', 'rp', '--redirect-uri', REDIRECT, '--first-party']);
    const tokens = await signIn(new Browser(), await discover(issuer, rp.json.client_id, { id_token_signed_response_alg: 'ES256', client_secret: rp.json.client_secret }), REDIRECT, 'es@example.test');
    expect(decodeProtectedHeader(tokens.id_token!).alg).toBe('ES256');
  });

  it('refuses an algorithm it does not offer', async () => {
    const res = await server.cli(['client', 'create', '--realm', 'default', '--name', 'x', '--redirect-uri', REDIRECT, '--id-token-alg', 'HS256']);
    expect(res.code).not.toBe(0);
    expect(res.stderr).toContain('HS256');
  });
});
