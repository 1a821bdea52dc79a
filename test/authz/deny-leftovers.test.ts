import type * as oidc from 'openid-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { idTokenGate, MODULE_APP_REDIRECT as REDIRECT, startWithModule } from '../helpers/authz-module.js';
import { authorizationRequest, PASSWORD, postForm, submitLogin } from '../helpers/flows.js';
import { Browser, parseForm } from '../helpers/http.js';
import type { TestServer } from '../helpers/server.js';

const DEVICE_GRANT = 'urn:ietf:params:oauth:grant-type:device_code';
// while its deny file exists the module refuses ID tokens: the access and refresh tokens are minted (and
// stored) before the ID token is asked for
const gate = idTokenGate('leftovers', 'no ID tokens today');

// A token request the module refuses at the ID token has minted an access token and a refresh token
// that nobody received. They must not stay usable: each one the refused request stored is looked up by
// its value (an opaque token's value is its id) at the introspection endpoint and is inactive, and the
// code cannot be exchanged again.
describe('tokens minted by a token request the authorization module refused', () => {
  let server: TestServer;
  let web: { id: string; secret: string };
  let tv: { id: string; secret: string };
  let config: oidc.Configuration;

  beforeAll(async () => {
    ({ server, web, config } = await startWithModule(gate, { email: 'ada@example.test', db: 'sqlite' }));
    const device = await server.cli(['client', 'create', '--realm', 'default', '--name', 'TV', '--first-party', '--grant', DEVICE_GRANT, '--grant', 'refresh_token']);
    expect(device.code, device.stderr).toBe(0);
    tv = { id: device.json.client_id, secret: device.json.client_secret };
    // every access and refresh token the server stores is noted as it is written, so a token deleted
    // afterwards can still be presented
    await server.services.db.raw('create table captured_tokens (model text, id text)');
    await server.services.db.raw(
      "create trigger capture_tokens after insert on oidc_payloads when new.model in ('AccessToken', 'RefreshToken') begin insert into captured_tokens (model, id) values (new.model, new.id); end",
    );
  });
  afterAll(async () => {
    await server?.close();
    gate.remove();
  });

  const captured = async () => (await server.services.db('captured_tokens').select('model', 'id')) as Array<{ model: string; id: string }>;
  const introspect = (client: { id: string; secret: string }, token: string) => postForm(`${server.issuer}/token/introspection`, { token }, client);

  /** Runs `request` with the module refusing ID tokens; returns its answer and the tokens it stored. */
  async function refused(request: () => Promise<{ status: number; body: any }>) {
    await server.services.db('captured_tokens').delete();
    return gate.denying(async () => {
      const res = await request();
      expect(res.status, JSON.stringify(res.body)).toBe(400);
      expect(res.body.error).toBe('access_denied');
      expect(res.body.access_token).toBeUndefined();
      expect(res.body.refresh_token).toBeUndefined();
      return { res, minted: await captured() };
    });
  }

  it('authorization_code: the access and refresh tokens are inactive, and the code is spent', async () => {
    const browser = new Browser();
    const auth = await authorizationRequest(config, REDIRECT, { scope: 'openid offline_access' });
    const done = await submitLogin(browser, await browser.follow(auth.url, {}, REDIRECT), 'ada@example.test', PASSWORD, REDIRECT);
    const form = { grant_type: 'authorization_code', code: done.url.searchParams.get('code')!, redirect_uri: REDIRECT, code_verifier: auth.verifier };
    const { minted } = await refused(() => postForm(`${server.issuer}/token`, form, web));
    // the refused request did mint both (the module was asked for the ID token after them)
    expect(minted.map((t) => t.model).sort()).toEqual(['AccessToken', 'RefreshToken']);
    for (const t of minted) {
      const res = await introspect(web, t.id);
      expect(res.status).toBe(200);
      expect(res.body, t.model).toEqual({ active: false });
      // and the refresh token gets nothing
      if (t.model === 'RefreshToken') expect((await postForm(`${server.issuer}/token`, { grant_type: 'refresh_token', refresh_token: t.id }, web)).body.error).toBe('invalid_grant');
    }
    // the module allows again: the code is still spent (a code is good for one exchange)
    const again = await postForm(`${server.issuer}/token`, form, web);
    expect(again.status).toBe(400);
    expect(again.body.error).toBe('invalid_grant');
  });

  it('device_code: the access and refresh tokens are inactive, and the device code is spent', async () => {
    const started = await postForm(`${server.issuer}/device/auth`, { scope: 'openid offline_access' }, tv);
    expect(started.status, JSON.stringify(started.body)).toBe(200);
    const browser = new Browser();
    const page = await browser.request(`${server.issuer}/device`);
    const entry = parseForm(await page.text());
    const confirm = await browser.follow(new URL(entry.action, `${server.issuer}/device`), { form: { ...entry.fields, user_code: started.body.user_code } });
    const confirmForm = parseForm(await confirm.res.text(), '/device');
    const login = await browser.follow(new URL(confirmForm.action, confirm.url), { form: confirmForm.fields });
    const done = await submitLogin(browser, login, 'ada@example.test', PASSWORD, 'http://never.test');
    expect(await done.res.text()).toContain('Your device is signed in');

    const form = { grant_type: DEVICE_GRANT, device_code: started.body.device_code };
    const { minted } = await refused(() => postForm(`${server.issuer}/token`, form, tv));
    expect(minted.map((t) => t.model).sort()).toEqual(['AccessToken', 'RefreshToken']);
    for (const t of minted) {
      const res = await introspect(tv, t.id);
      expect(res.status).toBe(200);
      expect(res.body, t.model).toEqual({ active: false });
    }
    const again = await postForm(`${server.issuer}/token`, form, tv);
    expect(again.status).toBe(400);
    expect(again.body.error).toBe('invalid_grant');
  });
});
