import { createLocalJWKSet, decodeProtectedHeader, jwtVerify, type JSONWebKeySet } from 'jose';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { describeEachDatabase } from '../helpers/databases.js';
import { postForm, until } from '../helpers/flows.js';
import { testFetch } from '../helpers/http.js';
import { startTestServer, type TestServer } from '../helpers/server.js';

interface PublishedJwks {
  etag: string;
  jwks: JSONWebKeySet;
  kids: string[];
}

describeEachDatabase('signing key rotation', (kind) => {
  let server: TestServer;
  let service: { id: string; secret: string };

  beforeAll(async () => {
    server = await startTestServer({ db: kind });
    const created = await server.cli(['client', 'create', '--realm', 'default', '--name', 'Billing worker', '--grant', 'client_credentials']);
    expect(created.code, created.stderr).toBe(0);
    service = { id: created.json.client_id, secret: created.json.client_secret };
  });
  afterAll(async () => server?.close());

  async function jwks(): Promise<PublishedJwks> {
    const res = await testFetch(`${server.issuer}/jwks`);
    expect(res.status).toBe(200);
    const body = (await res.json()) as JSONWebKeySet;
    return { etag: res.headers.get('etag')!, jwks: body, kids: body.keys.map((k) => k.kid!) };
  }

  async function serviceToken(): Promise<string> {
    const res = await postForm(`${server.issuer}/token`, { grant_type: 'client_credentials' }, service);
    expect(res.status, JSON.stringify(res.body)).toBe(200);
    return res.body.access_token;
  }

  const kidOf = (jwt: string) => decodeProtectedHeader(jwt).kid!;
  const eddsaKid = (kids: string[]) => kids.filter((k) => k.startsWith('eddsa-'));

  async function rotate(activateAfter: number): Promise<string[]> {
    const rotated = await server.cli(['keys', 'rotate', '--realm', 'default', '--activate-after', String(activateAfter)]);
    expect(rotated.code, rotated.stderr).toBe(0);
    expect(rotated.json.new_kids).toHaveLength(3);
    return rotated.json.new_kids;
  }

  /** Waits until the served JWKS lists every one of `kids`. */
  const published = (kids: string[]) =>
    until(async () => {
      const now = await jwks();
      return kids.every((k) => now.kids.includes(k)) ? now : undefined;
    }, `kids ${kids.join(', ')} in the JWKS`, 5000);

  it('issues client_credentials JWT access tokens for the realm default audience', async () => {
    const token = await serviceToken();
    const header = decodeProtectedHeader(token);
    expect(header.typ).toBe('at+jwt');
    expect(header.alg).toBe('EdDSA');
    const { payload } = await jwtVerify(token, createLocalJWKSet((await jwks()).jwks), { issuer: server.issuer, typ: 'at+jwt' });
    expect(payload.aud).toBe(`${server.issuer}/api`);
    expect(payload.client_id).toBe(service.id);
  });

  it('rotate --activate-after 0: new keys published next to the old ones, new tokens signed with the new key', async () => {
    const oldToken = await serviceToken();
    const oldKid = kidOf(oldToken);
    const before = await jwks();
    expect(before.kids).toContain(oldKid);

    const fresh = await rotate(0);
    const after = await published(fresh);
    expect(after.etag).toBeTruthy();
    expect(after.etag).not.toBe(before.etag);
    expect(after.kids).toContain(oldKid); // retired, still published
    for (const kid of before.kids) expect(after.kids).toContain(kid);

    const notModified = await testFetch(`${server.issuer}/jwks`, { headers: { 'if-none-match': after.etag } });
    expect(notModified.status).toBe(304);
    const stale = await testFetch(`${server.issuer}/jwks`, { headers: { 'if-none-match': before.etag } });
    expect(stale.status).toBe(200);

    // a token signed before the rotation still verifies against the JWKS served now
    const { payload } = await jwtVerify(oldToken, createLocalJWKSet(after.jwks), { issuer: server.issuer });
    expect(payload.client_id).toBe(service.id);

    const newEddsa = eddsaKid(fresh);
    expect(newEddsa).toHaveLength(1);
    const newToken = await until(async () => {
      const t = await serviceToken();
      return kidOf(t) === newEddsa[0] ? t : undefined;
    }, 'a token signed with the new EdDSA key', 3000);
    expect(decodeProtectedHeader(newToken).alg).toBe('EdDSA');
    await jwtVerify(newToken, createLocalJWKSet(after.jwks), { issuer: server.issuer });
  });

  it('rotate --activate-after 3600: the new key is published ahead of use and does not sign yet', async () => {
    const currentKid = kidOf(await serviceToken());
    const fresh = await rotate(3600);
    const after = await published(fresh);
    expect(after.kids).toContain(currentKid);
    // the provider has been rebuilt with the new key set (it is published); the signer did not change
    await new Promise((r) => setTimeout(r, 500));
    for (let i = 0; i < 3; i++) expect(kidOf(await serviceToken())).toBe(currentKid);
  });

  it('keys list shows pending, active and retired keys with their times', async () => {
    const active = await rotate(0);
    const pending = await rotate(3600);
    const listed = await server.cli(['keys', 'list', '--realm', 'default']);
    expect(listed.code, listed.stderr).toBe(0);
    const keys: Array<{ kid: string; family: string; state: string; activate_at: string; retired_at: string | null; remove_at: string | null }> = listed.json.keys;
    const stateOf = (kid: string) => keys.find((k) => k.kid === kid)?.state;
    for (const kid of active) expect(stateOf(kid)).toBe('active');
    for (const kid of pending) expect(stateOf(kid)).toBe('pending');
    const retired = keys.filter((k) => k.state === 'retired');
    expect(retired.length).toBeGreaterThanOrEqual(3);
    for (const k of retired) {
      expect(k.retired_at).not.toBeNull();
      expect(Date.parse(k.remove_at!)).toBeGreaterThan(Date.parse(k.retired_at!));
    }
    // exactly one signer per family
    for (const family of ['EdDSA', 'RSA', 'ES256']) expect(keys.filter((k) => k.family === family && k.state === 'active')).toHaveLength(1);
    const rsa = keys.find((k) => k.family === 'RSA') as unknown as { algs: string[] };
    expect(rsa.algs).toEqual(['RS256', 'PS256']);
  });
});
