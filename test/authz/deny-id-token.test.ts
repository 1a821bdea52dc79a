import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as oidc from 'openid-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { authorizationRequest, discover, PASSWORD, postForm, signIn, submitLogin } from '../helpers/flows.js';
import { Browser } from '../helpers/http.js';
import { startTestServer, type TestServer } from '../helpers/server.js';

const REDIRECT = 'http://app.example.test/callback';
const dir = mkdtempSync(join(tmpdir(), 'latchkey-authz-idt-'));
const modulePath = join(dir, 'module.mjs');
// while this file exists the module refuses ID tokens (and only ID tokens)
const denyFile = join(dir, 'deny-id-tokens');
writeFileSync(
  modulePath,
  `import { existsSync } from 'node:fs';
  export function createAuthorizationModule(options) {
    return {
      name: 'id-token-gate',
      async onIssue(identity) {
        if (identity.token === 'id_token' && existsSync(options.denyFile)) return { allow: false, reason: 'no ID tokens for this application today' };
        return { allow: true };
      },
      async check() { return false; },
    };
  }`,
);

// The module's answer for an ID token was read for its claims and its "deny" dropped: the ID token was issued.
describe('an authorization module that denies an ID token stops the token response', () => {
  let server: TestServer;
  let client: { id: string; secret: string };
  let config: oidc.Configuration;

  beforeAll(async () => {
    server = await startTestServer({ overrides: { authorization: { module: modulePath, options: { denyFile } } } });
    const created = await server.cli(['client', 'create', '--realm', 'default', '--name', 'App', '--redirect-uri', REDIRECT, '--first-party']);
    expect(created.code, created.stderr).toBe(0);
    client = { id: created.json.client_id, secret: created.json.client_secret };
    const user = await server.cli(['user', 'create', '--realm', 'default', '--email', 'ada@example.test', '--password-stdin'], `${PASSWORD}\n`);
    expect(user.code, user.stderr).toBe(0);
    config = await discover(server.issuer, client.id, { client_secret: client.secret });
  });
  afterAll(async () => {
    await server?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  const token = (form: Record<string, string>) => postForm(`${server.issuer}/token`, form, client);
  /** The realm's stored access and refresh tokens: a refused token request leaves none behind (nobody received them). */
  const stored = async () =>
    ((await server.services.db('oidc_payloads').where({ realm_id: 'default' }).whereIn('model', ['RefreshToken', 'AccessToken']).select('model', 'id')) as Array<{ model: string; id: string }>)
      .map((r) => `${r.model}:${r.id}`)
      .sort();

  it('authorization_code: access_denied with the module\'s reason, and no tokens', async () => {
    const browser = new Browser();
    const auth = await authorizationRequest(config, REDIRECT, { scope: 'openid offline_access' });
    const login = await browser.follow(auth.url, {}, REDIRECT);
    const done = await submitLogin(browser, login, 'ada@example.test', PASSWORD, REDIRECT);
    writeFileSync(denyFile, '');
    const before = await stored();
    try {
      const res = await token({ grant_type: 'authorization_code', code: done.url.searchParams.get('code')!, redirect_uri: REDIRECT, code_verifier: auth.verifier });
      expect(res.status, JSON.stringify(res.body)).toBe(400);
      expect(res.body.error).toBe('access_denied');
      expect(res.body.error_description).toContain('no ID tokens');
      expect(res.body.id_token).toBeUndefined();
      expect(res.body.access_token).toBeUndefined();
      // the access and refresh tokens minted before the ID token was refused are not left stored
      expect(await stored()).toEqual(before);
    } finally {
      rmSync(denyFile, { force: true });
    }
  });

  it('refresh_token: access_denied once the module says no', async () => {
    const tokens = await signIn(new Browser(), config, REDIRECT, 'ada@example.test', { scope: 'openid offline_access' });
    expect(tokens.id_token).toBeTruthy();
    writeFileSync(denyFile, '');
    try {
      const res = await token({ grant_type: 'refresh_token', refresh_token: tokens.refresh_token! });
      expect(res.status, JSON.stringify(res.body)).toBe(400);
      expect(res.body.error).toBe('access_denied');
      expect(res.body.id_token).toBeUndefined();
    } finally {
      rmSync(denyFile, { force: true });
    }
    expect(existsSync(denyFile)).toBe(false);
  });
});
