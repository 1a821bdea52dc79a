import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { decodeJwt, decodeProtectedHeader, jwtVerify } from 'jose';
import * as oidc from 'openid-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { describeEachDatabase } from '../helpers/databases.js';
import { authorizationRequest, discover, exchangeCode, PASSWORD, postForm, remoteJwks, signIn, submitLogin } from '../helpers/flows.js';
import { Browser, parseForm, testFetch } from '../helpers/http.js';
import { startTestServer, type TestServer } from '../helpers/server.js';

const REDIRECT = 'http://app.example.test/callback';
const API = 'https://api.acme.test';
const ADA = 'ada@shop.test';
const DEVICE_GRANT = 'urn:ietf:params:oauth:grant-type:device_code';

interface Client {
  id: string;
  secret: string;
}

const isJwt = (token: string) => token.split('.').length === 3;

describeEachDatabase('grants, consent, introspection, revocation and the device flow', (kind) => {
  let server: TestServer;
  let settingsDir: string;
  let issuer: string;
  let service: Client; // client_credentials, client_secret_basic
  let servicePost: Client; // client_credentials, client_secret_post
  let web: Client; // first-party web app
  let partner: Client; // third-party web app: sees the consent page
  let tv: string; // public device-flow client

  const cli = async (args: string[], stdin?: string) => {
    const r = await server.cli(args, stdin);
    expect(r.code, `${args.join(' ')}: ${r.stderr}`).toBe(0);
    return r.json;
  };
  const clientOf = (json: any): Client => ({ id: json.client_id, secret: json.client_secret });
  const token = (form: Record<string, string>, auth?: Client) => postForm(`${issuer}/token`, form, auth && { id: auth.id, secret: auth.secret });

  beforeAll(async () => {
    server = await startTestServer({ db: kind });
    issuer = `http://shop.localhost:${server.port}`;
    settingsDir = mkdtempSync(join(tmpdir(), 'latchkey-settings-'));
    const settingsFile = join(settingsDir, 'shop.json');
    writeFileSync(settingsFile, JSON.stringify({ resources: [{ uri: API, scopes: ['read', 'write'] }] }));
    await cli(['realm', 'create', '--id', 'shop', '--name', 'Shop', '--issuer', issuer, '--settings', settingsFile]);

    service = clientOf(await cli(['client', 'create', '--realm', 'shop', '--name', 'Stock sync', '--grant', 'client_credentials']));
    servicePost = clientOf(await cli(['client', 'create', '--realm', 'shop', '--name', 'Reports', '--grant', 'client_credentials', '--auth-method', 'client_secret_post']));
    web = clientOf(await cli(['client', 'create', '--realm', 'shop', '--name', 'Shop Web', '--redirect-uri', REDIRECT, '--first-party']));
    partner = clientOf(await cli(['client', 'create', '--realm', 'shop', '--name', 'Partner App', '--redirect-uri', REDIRECT]));
    tv = (await cli(['client', 'create', '--realm', 'shop', '--name', 'Shop TV', '--public', '--first-party', '--grant', DEVICE_GRANT])).client_id;
    await cli(['user', 'create', '--realm', 'shop', '--email', ADA, '--name', 'Ada', '--password-stdin'], `${PASSWORD}\n`);
  });
  afterAll(async () => {
    await server?.close();
    if (settingsDir) rmSync(settingsDir, { recursive: true, force: true });
  });

  const webConfig = () => discover(issuer, web.id, { client_secret: web.secret });
  const partnerConfig = () => discover(issuer, partner.id, { client_secret: partner.secret });

  describe('client_credentials', () => {
    it('issues a JWT for a resource listed in the realm settings, with the requested scopes', async () => {
      const res = await token({ grant_type: 'client_credentials', resource: API, scope: 'read write' }, service);
      expect(res.status, JSON.stringify(res.body)).toBe(200);
      expect(res.body.scope).toBe('read write');
      const { payload, protectedHeader } = await jwtVerify(res.body.access_token, remoteJwks(issuer), { issuer, audience: API, typ: 'at+jwt' });
      expect(protectedHeader.alg).toBe('EdDSA');
      expect(payload.scope).toBe('read write');
      expect(payload.client_id).toBe(service.id);

      const narrower = await token({ grant_type: 'client_credentials', resource: API, scope: 'read' }, service);
      expect(decodeJwt(narrower.body.access_token).scope).toBe('read');
    });

    it('refuses a resource the realm does not know with invalid_target', async () => {
      const res = await token({ grant_type: 'client_credentials', resource: 'https://unknown.example.test' }, service);
      expect(res.status).toBe(400);
      expect(res.body.error).toBe('invalid_target');
    });

    it('authenticates a client_secret_post client with the secret in the body', async () => {
      const post = await token({ grant_type: 'client_credentials', client_id: servicePost.id, client_secret: servicePost.secret });
      expect(post.status, JSON.stringify(post.body)).toBe(200);
      expect(decodeJwt(post.body.access_token).client_id).toBe(servicePost.id);
      // (node-oidc-provider treats client_secret_basic and client_secret_post as one family: either transport works)

      const missing = await token({ grant_type: 'client_credentials', client_id: servicePost.id });
      expect(missing.status).toBe(401);
      expect(missing.body.error).toBe('invalid_client');
      const wrong = await token({ grant_type: 'client_credentials', client_id: servicePost.id, client_secret: `${servicePost.secret}x` });
      expect(wrong.status).toBe(401);
      expect(wrong.body.error).toBe('invalid_client');
    });
  });

  describe('authorization code', () => {
    it('with a resource: the access token is a JWT for that API', async () => {
      const config = await webConfig();
      const tokens = await signIn(new Browser(), config, REDIRECT, ADA, { scope: 'openid read', resource: API });
      expect(isJwt(tokens.access_token)).toBe(true);
      expect(decodeProtectedHeader(tokens.access_token).typ).toBe('at+jwt');
      const { payload } = await jwtVerify(tokens.access_token, remoteJwks(issuer), { issuer, audience: API });
      expect(payload.scope).toBe('read');
      expect(payload.client_id).toBe(web.id);
      expect(payload.sub).toBe(tokens.claims()!.sub);
      // a token for the API is not a token for userinfo
      const info = await testFetch(`${issuer}/me`, { headers: { authorization: `Bearer ${tokens.access_token}` } });
      expect(info.status).toBe(401);
    });

    it('without a resource: the access token is opaque and reads userinfo', async () => {
      const config = await webConfig();
      const tokens = await signIn(new Browser(), config, REDIRECT, ADA, { scope: 'openid email' });
      expect(isJwt(tokens.access_token)).toBe(false);
      const info = await oidc.fetchUserInfo(config, tokens.access_token, tokens.claims()!.sub);
      expect(info.email).toBe(ADA);
    });
  });

  describe('consent for a third-party client', () => {
    async function consentPage(browser: Browser, config: oidc.Configuration, signedIn: boolean) {
      const auth = await authorizationRequest(config, REDIRECT, { scope: 'openid email offline_access', prompt: 'consent' });
      let page = await browser.follow(auth.url, {}, REDIRECT);
      if (!signedIn) page = await submitLogin(browser, page, ADA, PASSWORD, REDIRECT);
      expect(page.res.status).toBe(200);
      const html = await page.res.text();
      expect(html).toContain('Partner App');
      return { auth, page, html };
    }

    it('lists the scopes; Allow completes with a refresh token; Deny returns access_denied', async () => {
      const config = await partnerConfig();
      const browser = new Browser();
      const { auth, page, html } = await consentPage(browser, config, false);
      for (const text of ['offline_access', 'Stay connected when you are not using the app', 'See your email address', 'Confirm your identity']) {
        expect(html).toContain(text);
      }
      const allow = parseForm(html, '/confirm');
      const done = await browser.follow(new URL(allow.action, page.url), { form: allow.fields }, REDIRECT);
      expect(done.url.href.startsWith(REDIRECT), done.url.href).toBe(true);
      const tokens = await exchangeCode(config, auth, done.url);
      expect(tokens.refresh_token).toBeTruthy();
      expect(tokens.scope?.split(' ')).toEqual(expect.arrayContaining(['openid', 'email', 'offline_access']));
      const refreshed = await oidc.refreshTokenGrant(config, tokens.refresh_token!);
      expect(refreshed.access_token).toBeTruthy();

      // without prompt=consent a third-party client does not get offline access (OpenID Connect Core 11)
      const quiet = await authorizationRequest(config, REDIRECT, { scope: 'openid email offline_access' });
      const back = await browser.follow(quiet.url, {}, REDIRECT);
      expect(back.url.href.startsWith(REDIRECT), back.url.href).toBe(true);
      const noOffline = await exchangeCode(config, quiet, back.url);
      expect(noOffline.refresh_token).toBeUndefined();

      // asked again, the user says no
      const second = await consentPage(browser, config, true);
      const deny = parseForm(second.html, '/abort');
      const denied = await browser.follow(new URL(deny.action, second.page.url), { form: deny.fields }, REDIRECT);
      expect(denied.url.href.startsWith(REDIRECT), denied.url.href).toBe(true);
      expect(denied.url.searchParams.get('error')).toBe('access_denied');
      expect(denied.url.searchParams.get('state')).toBe(second.auth.state);
      expect(denied.url.searchParams.get('code')).toBeNull();
    });
  });

  describe('introspection and revocation', () => {
    let config: oidc.Configuration;
    let introspect: (token: string, client?: Client) => Promise<any>;
    let revoke: (token: string, client?: Client) => Promise<{ status: number; body: any }>;

    beforeAll(async () => {
      config = await webConfig();
      const meta = config.serverMetadata();
      expect(meta.introspection_endpoint).toBe(`${issuer}/token/introspection`);
      expect(meta.revocation_endpoint).toBe(`${issuer}/token/revocation`);
      introspect = async (token, client = web) => (await postForm(meta.introspection_endpoint!, { token }, client)).body;
      revoke = (token, client = web) => postForm(meta.revocation_endpoint!, { token }, client);
    });

    it('reports live tokens as active to their own client only, and only their client may revoke them', async () => {
      const tokens = await signIn(new Browser(), config, REDIRECT, ADA, { scope: 'openid email offline_access' });
      const sub = tokens.claims()!.sub;
      const live = await introspect(tokens.access_token);
      expect(live).toMatchObject({ active: true, client_id: web.id, sub, iss: issuer, token_type: 'Bearer' });
      expect(live.scope.split(' ')).toContain('email');
      const refresh = await introspect(tokens.refresh_token!);
      expect(refresh).toMatchObject({ active: true, client_id: web.id, sub });
      expect(refresh.scope.split(' ')).toContain('offline_access');
      expect(await introspect('not-a-token')).toEqual({ active: false });

      // another client can neither look at this client's tokens nor revoke them
      expect(await introspect(tokens.access_token, partner)).toEqual({ active: false });
      const hostile = await revoke(tokens.access_token, partner);
      expect(hostile.status).toBe(400);
      expect(hostile.body.error).toBe('invalid_request');
      expect((await introspect(tokens.access_token)).active).toBe(true);
    });

    it('revoking the access token deactivates it and the grant behind it', async () => {
      const tokens = await signIn(new Browser(), config, REDIRECT, ADA, { scope: 'openid email offline_access' });
      expect((await revoke(tokens.access_token)).status).toBe(200);
      expect(await introspect(tokens.access_token)).toEqual({ active: false });
      await expect(oidc.fetchUserInfo(config, tokens.access_token, tokens.claims()!.sub)).rejects.toThrow();
      // node-oidc-provider revokes the whole grant: the refresh token goes too
      expect(await introspect(tokens.refresh_token!)).toEqual({ active: false });
      await expect(oidc.refreshTokenGrant(config, tokens.refresh_token!)).rejects.toMatchObject({ error: 'invalid_grant' });
    });

    it('revoking the refresh token stops it yielding tokens', async () => {
      const tokens = await signIn(new Browser(), config, REDIRECT, ADA, { scope: 'openid email offline_access' });
      expect((await introspect(tokens.refresh_token!)).active).toBe(true);
      expect((await revoke(tokens.refresh_token!)).status).toBe(200);
      expect(await introspect(tokens.refresh_token!)).toEqual({ active: false });
      await expect(oidc.refreshTokenGrant(config, tokens.refresh_token!)).rejects.toMatchObject({ error: 'invalid_grant' });
      // revoking an unknown or already revoked token is not an error (RFC 7009)
      expect((await revoke(tokens.refresh_token!)).status).toBe(200);
    });
  });

  describe('device authorization grant', () => {
    it('goes from /device/auth through the browser pages to tokens at /token', async () => {
      const started = await postForm(`${issuer}/device/auth`, { client_id: tv, scope: 'openid email' });
      expect(started.status, JSON.stringify(started.body)).toBe(200);
      const { device_code: deviceCode, user_code: userCode, verification_uri: verificationUri, verification_uri_complete: complete } = started.body;
      expect(verificationUri).toBe(`${issuer}/device`);
      expect(new URL(complete).searchParams.get('user_code')).toBe(userCode);

      const poll = () => token({ grant_type: DEVICE_GRANT, device_code: deviceCode, client_id: tv });
      const pending = await poll();
      expect(pending.status).toBe(400);
      expect(pending.body.error).toBe('authorization_pending');

      const browser = new Browser();
      // verification_uri_complete answers with a self-submitting form carrying the code
      const open = await browser.follow(complete);
      expect(open.res.status).toBe(200);
      const autoPost = parseForm(await open.res.text());
      expect(autoPost.fields.user_code).toBeTruthy();
      const confirm = await browser.follow(new URL(autoPost.action, open.url), { form: autoPost.fields });
      expect(confirm.res.status).toBe(200);
      const confirmHtml = await confirm.res.text();
      expect(confirmHtml).toContain('Shop TV');
      expect(confirmHtml).toContain(userCode);
      const confirmForm = parseForm(confirmHtml, '/device');
      expect(confirmForm.fields.confirm).toBe('yes');
      const login = await browser.follow(new URL(confirmForm.action, confirm.url), { form: confirmForm.fields });
      const done = await submitLogin(browser, login, ADA, PASSWORD, REDIRECT);
      expect(done.res.status).toBe(200);
      expect(await done.res.text()).toContain('Your device is signed in to Shop TV');

      const tokens = await poll();
      expect(tokens.status, JSON.stringify(tokens.body)).toBe(200);
      expect(tokens.body.token_type).toBe('Bearer');
      const { payload } = await jwtVerify(tokens.body.id_token, remoteJwks(issuer), { issuer, audience: tv });
      expect(payload.email).toBe(ADA);
      const info = await testFetch(`${issuer}/me`, { headers: { authorization: `Bearer ${tokens.body.access_token}` } });
      expect(info.status).toBe(200);
      expect(((await info.json()) as { sub: string }).sub).toBe(payload.sub);

      // a device code is good for one set of tokens
      const again = await poll();
      expect(again.status).toBe(400);
      expect(again.body.error).toBe('invalid_grant');
    });
  });

  describe('device code page without its session', () => {
    it('the code posted once the browser session is gone (signed out in another tab, expired, cookies blocked) gets the code page again, not a 500', async () => {
      const started = await postForm(`${issuer}/device/auth`, { client_id: tv, scope: 'openid email' });
      const browser = new Browser();
      const page = await browser.follow(`${issuer}/device`);
      expect(page.res.status).toBe(200);
      const form = parseForm(await page.res.text(), '/device');
      browser.cookies.clear();
      const posted = await browser.follow(new URL(form.action, page.url), { form: { ...form.fields, user_code: started.body.user_code } });
      expect(posted.res.status).toBe(400);
      expect(posted.res.headers.get('content-type')).toContain('text/html');
      const html = await posted.res.text();
      expect(html).toContain('name="user_code"');
      expect(html).toContain('There was an error processing your request.');
      // starting again from the page works
      const again = await browser.follow(`${issuer}/device`);
      const retry = parseForm(await again.res.text(), '/device');
      const confirm = await browser.follow(new URL(retry.action, again.url), { form: { ...retry.fields, user_code: started.body.user_code } });
      expect(confirm.res.status).toBe(200);
      expect(await confirm.res.text()).toContain('Shop TV');
    });
  });

  describe('a disabled user', () => {
    it('cannot sign in, and tokens and sessions from before stop working', async () => {
      const email = 'mallory@shop.test';
      await cli(['user', 'create', '--realm', 'shop', '--email', email, '--password-stdin'], `${PASSWORD}\n`);
      const config = await webConfig();
      const browser = new Browser();
      const tokens = await signIn(browser, config, REDIRECT, email, { scope: 'openid email offline_access' });
      expect(tokens.refresh_token).toBeTruthy();
      const sub = tokens.claims()!.sub;

      const disabled = await cli(['user', 'disable', '--realm', 'shop', '--email', email]);
      expect(disabled.disabled).toBe(true);

      // the refresh token no longer yields tokens: findAccount refuses the account
      await expect(oidc.refreshTokenGrant(config, tokens.refresh_token!)).rejects.toMatchObject({ error: 'invalid_grant' });
      // the access token no longer reads userinfo
      await expect(oidc.fetchUserInfo(config, tokens.access_token, sub)).rejects.toThrow();
      const me = await testFetch(`${issuer}/me`, { headers: { authorization: `Bearer ${tokens.access_token}` } });
      expect(me.status).toBe(401);
      // and introspection no longer reports their tokens as active
      const introspection = await postForm(`${issuer}/token/introspection`, { token: tokens.access_token }, web);
      expect(introspection.body).toEqual({ active: false });

      // the browser session from before does not sign them in silently
      const auth = await authorizationRequest(config, REDIRECT, { scope: 'openid email' });
      const again = await browser.follow(auth.url, {}, REDIRECT);
      expect(again.url.href.startsWith(REDIRECT), again.url.href).toBe(false);
      expect(again.res.status).toBe(200);
      expect(await again.res.text()).toContain('name="email"'); // back to the sign-in page, not the app
      // and a client asking for no interaction at all is told to sign the user in
      const none = await authorizationRequest(config, REDIRECT, { scope: 'openid', prompt: 'none' });
      const answer = await browser.follow(none.url, {}, REDIRECT);
      expect(answer.url.searchParams.get('error')).toBe('login_required');

      // and the password no longer signs them in
      const fresh = new Browser();
      const login = await fresh.follow((await authorizationRequest(config, REDIRECT)).url, {}, REDIRECT);
      const refused = await submitLogin(fresh, login, email, PASSWORD, REDIRECT);
      expect(refused.res.status).toBe(401);
      expect(await refused.res.text()).toContain('This account is disabled');
    });
  });
});
