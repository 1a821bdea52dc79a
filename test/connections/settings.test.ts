import { describe, expect, it } from 'vitest';
import { resolveUpstreamConfig, type ConnectionInput } from '../../src/connections/settings.js';
import { mapClaims } from '../../src/connections/upstream.js';

const base = { realmId: 'default', clientId: 'client-1' };
const resolve = (input: Partial<ConnectionInput>) => resolveUpstreamConfig({ ...base, id: 'c', ...input } as ConnectionInput);

describe('connection settings', () => {
  it('fills in the presets', () => {
    expect(resolve({ preset: 'google' })).toEqual({
      type: 'oidc',
      preset: 'google',
      displayName: 'Google',
      config: { type: 'oidc', clientId: 'client-1', issuer: 'https://accounts.google.com', scopes: ['openid', 'email', 'profile'] },
    });
    expect(resolve({ preset: 'gitlab' }).config).toMatchObject({ issuer: 'https://gitlab.com' });
    expect(resolve({ preset: 'gitlab', baseUrl: 'https://git.example.com/' }).config).toMatchObject({ issuer: 'https://git.example.com' });
    expect(resolve({ preset: 'entra', entraTenant: '72F988BF-86F1-41AF-91AB-2D7CD011DB47' })).toMatchObject({
      displayName: 'Microsoft',
      config: { issuer: 'https://login.microsoftonline.com/72f988bf-86f1-41af-91ab-2d7cd011db47/v2.0' },
    });
    expect(resolve({ preset: 'github' })).toMatchObject({
      type: 'oauth2',
      displayName: 'GitHub',
      config: {
        authorizationEndpoint: 'https://github.com/login/oauth/authorize',
        tokenEndpoint: 'https://github.com/login/oauth/access_token',
        userinfoEndpoint: 'https://api.github.com/user',
        emailsEndpoint: 'https://api.github.com/user/emails',
        claims: { sub: 'id', name: 'name', picture: 'avatar_url' },
      },
    });
    // GitHub Enterprise Server: the API lives under /api/v3 of the base URL
    expect(resolve({ preset: 'github', baseUrl: 'https://ghe.example.com' }).config).toMatchObject({ userinfoEndpoint: 'https://ghe.example.com/api/v3/user' });
    expect(resolve({ preset: 'google', name: 'Work Google' }).displayName).toBe('Work Google');
  });

  it('generic OIDC needs an issuer and always asks for openid', () => {
    expect(resolve({ type: 'oidc', issuer: 'https://idp.example.com', scopes: ['email'] }).config).toMatchObject({ scopes: ['openid', 'email'] });
    expect(() => resolve({ type: 'oidc' })).toThrow(/issuer/);
    expect(() => resolve({ type: 'oidc', issuer: 'http://idp.example.com' })).toThrow(/https/);
    expect(resolve({ type: 'oidc', issuer: 'http://idp.localhost:3000' }).config).toMatchObject({ issuer: 'http://idp.localhost:3000' });
    expect(() => resolve({ type: 'oidc', issuer: 'https://idp.example.com', tokenEndpoint: 'https://idp.example.com/token' })).toThrow(/discovery/);
  });

  it('generic OAuth 2.0 needs its three endpoints and a claim mapping with sub', () => {
    const ok = { type: 'oauth2', authorizationEndpoint: 'https://p.example/authorize', tokenEndpoint: 'https://p.example/token', userinfoEndpoint: 'https://p.example/me' };
    expect(resolve({ ...ok, claims: { sub: 'id', email: 'contact.email' } }).config).toMatchObject({ claims: { sub: 'id', email: 'contact.email' } });
    expect(() => resolve({ ...ok, claims: { email: 'email' } })).toThrow(/claims\.sub/);
    expect(() => resolve({ ...ok, claims: { sub: 'id', avatar: 'x' } })).toThrow(/avatar/);
    expect(() => resolve({ ...ok, claims: { sub: 'a..b' } })).toThrow(/claim path/);
    expect(() => resolve({ ...ok, tokenEndpoint: undefined, claims: { sub: 'id' } })).toThrow(/tokenEndpoint/);
    expect(() => resolve({ ...ok, userinfoEndpoint: 'ftp://p.example/me', claims: { sub: 'id' } })).toThrow(/userinfo endpoint/);
  });

  it('refuses contradictory or unknown input with a message naming it', () => {
    expect(() => resolve({})).toThrow(/preset .* or a type/);
    expect(() => resolve({ preset: 'facebook' })).toThrow(/unknown preset "facebook"/);
    expect(() => resolve({ type: 'saml' })).toThrow(/unknown connection type "saml"/);
    expect(() => resolve({ preset: 'google', type: 'oidc' })).toThrow(/not both/);
    expect(() => resolve({ preset: 'google', issuer: 'https://x.example' })).toThrow(/base URL/);
    expect(() => resolve({ preset: 'entra' })).toThrow(/tenant/);
    expect(() => resolve({ preset: 'entra', entraTenant: 'common' })).toThrow(/GUID/);
    expect(() => resolve({ preset: 'google', entraTenant: '72f988bf-86f1-41af-91ab-2d7cd011db47' })).toThrow(/entra preset only/);
    expect(() => resolve({ type: 'oidc', issuer: 'https://x.example', baseUrl: 'https://y.example' })).toThrow(/presets only/);
    expect(() => resolve({ type: 'oidc', issuer: 'https://x.example', scopes: ['openid', 'x'.repeat(201)] })).toThrow(/a scope is at most 200 characters/);
    expect(resolve({ type: 'oidc', issuer: 'https://x.example', scopes: ['x'.repeat(200)] }).config).toMatchObject({ scopes: ['openid', 'x'.repeat(200)] });
  });
});

describe('claim mapping of a userinfo document', () => {
  it('reads nested paths; a numeric id becomes the subject; email_verified only when exactly true', () => {
    const doc = { id: 42, contact: { email: 'a@b.test', verified: 'true' }, name: 'A', avatar: 'https://x' };
    expect(mapClaims(doc, { sub: 'id', email: 'contact.email', email_verified: 'contact.verified', name: 'name', picture: 'avatar' })).toEqual({
      subject: '42',
      email: 'a@b.test',
      emailVerified: false,
      name: 'A',
      picture: 'https://x',
    });
    expect(mapClaims({ sub: 's', ok: true, email: 'a@b.test' }, { sub: 'sub', email: 'email', email_verified: 'ok' }).emailVerified).toBe(true);
  });

  it('refuses a document without a subject, and ignores inherited properties', () => {
    expect(() => mapClaims({ name: 'x' }, { sub: 'id' })).toThrow(/"id"/);
    expect(() => mapClaims({ id: '' }, { sub: 'id' })).toThrow();
    expect(() => mapClaims({ id: 1.5 }, { sub: 'id' })).toThrow();
    expect(() => mapClaims([], { sub: 'length' })).toThrow();
    expect(mapClaims({ id: 'x' }, { sub: 'id', email: 'constructor' }).email).toBeUndefined();
  });
});
