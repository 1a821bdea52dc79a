import als from 'oidc-provider/lib/helpers/als.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { grantTypeOf, refreshTokenTtl } from '../../src/oidc/request-context.js';
import { startTestServer, type TestServer } from '../helpers/server.js';

describe("node-oidc-provider's request storage (src/oidc/request-context.ts)", () => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startTestServer({ db: 'sqlite' });
    // a provider is built on the first request for its realm
    expect((await fetch(`${server.url}/.well-known/openid-configuration`)).status).toBe(200);
  });
  afterAll(async () => server?.close());

  it('is a pass-through once a provider exists: no AsyncLocalStorage (and no promise hook) per request', () => {
    const store = { marker: true };
    expect(als.run(store, (a: number, b: number) => a + b, 2, 3)).toBe(5);
    expect(als.run(store, () => als.getStore())).toBeUndefined();
  });

  it("hands it a context whose `oidc` is a plain property, not a getter made per request (patches/oidc-provider+*.patch)", async () => {
    // a getter defined per request is held by an accessor object V8 allocates in the old generation: every
    // request's context then outlived it until the next full collection (bench/README.md)
    const seen: (PropertyDescriptor | undefined)[] = [];
    const run = als.run;
    als.run = ((ctx: object, callback: (...args: unknown[]) => unknown, ...args: unknown[]) => {
      seen.push(Object.getOwnPropertyDescriptor(ctx, 'oidc'));
      return run.call(als, ctx, callback, ...args);
    }) as typeof als.run;
    try {
      expect((await fetch(`${server.url}/.well-known/openid-configuration`)).status).toBe(200);
    } finally {
      als.run = run;
    }
    expect(seen).toHaveLength(1);
    expect(seen[0]?.get).toBeUndefined();
    expect(seen[0]?.value).toMatchObject({ route: 'discovery' });
  });
});

describe('grantTypeOf', () => {
  it('maps the token kind and the last grant of gty to the OAuth grant_type', () => {
    expect(grantTypeOf({ kind: 'ClientCredentials' })).toBe('client_credentials');
    expect(grantTypeOf({ kind: 'AccessToken', gty: 'authorization_code' })).toBe('authorization_code');
    expect(grantTypeOf({ kind: 'AccessToken', gty: 'authorization_code refresh_token' })).toBe('refresh_token');
    expect(grantTypeOf({ kind: 'AccessToken', gty: 'device_code' })).toBe('urn:ietf:params:oauth:grant-type:device_code');
    expect(grantTypeOf({ kind: 'AccessToken', gty: 'token_exchange' })).toBe('urn:ietf:params:oauth:grant-type:token-exchange');
    expect(grantTypeOf({ kind: 'AccessToken' })).toBeUndefined();
  });
});

describe('refreshTokenTtl', () => {
  const now = 1_800_000_000;
  it('gives a fresh token the full lifetime and a rotated one what is left of its chain', () => {
    expect(refreshTokenTtl(3600, { iiat: now }, now)).toBe(3600);
    expect(refreshTokenTtl(3600, { rotations: 2, iiat: now - 600 }, now)).toBe(3000);
    // never zero or negative: node-oidc-provider rejects those
    expect(refreshTokenTtl(3600, { rotations: 1, iiat: now - 7200 }, now)).toBe(1);
  });
  it('gives a sender-constrained token the full lifetime on each rotation', () => {
    expect(refreshTokenTtl(3600, { rotations: 3, iiat: now - 600, isSenderConstrained: () => true }, now)).toBe(3600);
  });
});
