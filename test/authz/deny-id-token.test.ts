import { existsSync } from 'node:fs';
import type * as oidc from 'openid-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { idTokenGate, MODULE_APP_REDIRECT as REDIRECT, startWithModule } from '../helpers/authz-module.js';
import { authorizationRequest, PASSWORD, postForm, signIn, submitLogin } from '../helpers/flows.js';
import { Browser } from '../helpers/http.js';
import type { TestServer } from '../helpers/server.js';

// while its deny file exists the module refuses ID tokens (and only ID tokens)
const gate = idTokenGate('idt', 'no ID tokens for this application today');

// The module's answer for an ID token was read for its claims and its "deny" dropped: the ID token was issued.
describe('an authorization module that denies an ID token stops the token response', () => {
  let server: TestServer;
  let client: { id: string; secret: string };
  let config: oidc.Configuration;

  beforeAll(async () => {
    ({ server, web: client, config } = await startWithModule(gate, { email: 'ada@example.test' }));
  });
  afterAll(async () => {
    await server?.close();
    gate.remove();
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
    await gate.denying(async () => {
      const before = await stored();
      const res = await token({ grant_type: 'authorization_code', code: done.url.searchParams.get('code')!, redirect_uri: REDIRECT, code_verifier: auth.verifier });
      expect(res.status, JSON.stringify(res.body)).toBe(400);
      expect(res.body.error).toBe('access_denied');
      expect(res.body.error_description).toContain('no ID tokens');
      expect(res.body.id_token).toBeUndefined();
      expect(res.body.access_token).toBeUndefined();
      // the access and refresh tokens minted before the ID token was refused are not left stored
      expect(await stored()).toEqual(before);
    });
  });

  it('refresh_token: access_denied once the module says no', async () => {
    const tokens = await signIn(new Browser(), config, REDIRECT, 'ada@example.test', { scope: 'openid offline_access' });
    expect(tokens.id_token).toBeTruthy();
    await gate.denying(async () => {
      const res = await token({ grant_type: 'refresh_token', refresh_token: tokens.refresh_token! });
      expect(res.status, JSON.stringify(res.body)).toBe(400);
      expect(res.body.error).toBe('access_denied');
      expect(res.body.id_token).toBeUndefined();
    });
    expect(existsSync(gate.denyFile)).toBe(false);
  });
});
