import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { decodeJwt, jwtVerify } from 'jose';
import type * as oidc from 'openid-client';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { describeEachDatabase } from '../helpers/databases.js';
import { authorizationRequest, discover, exchangeCode, PASSWORD, remoteJwks, skipPasskeyOffer } from '../helpers/flows.js';
import { SoftAuthenticator } from '../helpers/authenticator.js';
import { Browser, parseForm, testFetch } from '../helpers/http.js';
import { passkeyAssertion, passkeyRegistration, readPage } from '../helpers/passkey-flows.js';
import { startTestServer, type TestServer } from '../helpers/server.js';

const REDIRECT = 'http://app.example.test/callback';
const API = 'https://api.corp.test';
const T0 = 1_900_000_000_000;

/** Whether the page has a password field. */
const hasPasswordField = (html: string) => /<input[^>]*name="password"/.test(html);

describeEachDatabase('tenant-aware sign-in', (kind) => {
  let server: TestServer;
  let issuer: string;
  let settingsDir: string;
  let config: oidc.Configuration;
  let thirdParty: oidc.Configuration;

  const cli = async (args: string[], stdin?: string) => {
    const r = await server.cli(args, stdin);
    expect(r.code, `${args.join(' ')}: ${r.stderr}`).toBe(0);
    return r.json;
  };

  beforeAll(async () => {
    settingsDir = mkdtempSync(join(tmpdir(), 'latchkey-settings-'));
    // an authorization module that repeats the tenant it was shown, so the tests see what it sees
    const modulePath = join(settingsDir, 'authz.mjs');
    writeFileSync(modulePath, `export function createAuthorizationModule() {
      return {
        name: 'tenant-echo',
        async onIssue(identity) { return { allow: true, claims: { seen_tenant: identity.tenantId ?? 'none', tenant_id: 'forged' } }; },
        async check() { return false; },
      };
    }`);
    server = await startTestServer({ db: kind, overrides: { authorization: { module: modulePath, options: {} } } });
    issuer = `http://corp.localhost:${server.port}`;
    writeFileSync(join(settingsDir, 'corp.json'), JSON.stringify({ resources: [{ uri: API, scopes: ['read'] }], branding: { primaryColor: '#123456' } }));
    await cli(['realm', 'create', '--id', 'corp', '--name', 'Corp Login', '--issuer', issuer, '--settings', join(settingsDir, 'corp.json')]);
    const web = await cli(['client', 'create', '--realm', 'corp', '--name', 'Web', '--redirect-uri', REDIRECT, '--first-party', '--grant', 'authorization_code', '--grant', 'refresh_token']);
    const partner = await cli(['client', 'create', '--realm', 'corp', '--name', 'Partner', '--redirect-uri', REDIRECT]);
    config = await discover(issuer, web.client_id, { client_secret: web.client_secret });
    thirdParty = await discover(issuer, partner.client_id, { client_secret: partner.client_secret });
    for (const email of ['ann@acme.test', 'multi@example.test', 'sam@initech.test', 'outsider@example.test']) {
      await cli(['user', 'create', '--realm', 'corp', '--email', email, '--password-stdin'], `${PASSWORD}\n`);
    }
    // connections are created by the connections capability; here they are plain rows the tenants refer to
    for (const id of ['initech-okta', 'hooli-saml', 'hooli-entra', 'open-google']) {
      await server.services.db('connections').insert({ realm_id: 'corp', id, type: 'oidc', display_name: `${id} login`, config: '{}', enabled: true, created_at: T0, updated_at: T0 });
    }
    await cli(['tenant', 'create', '--realm', 'corp', '--id', 'acme', '--name', 'Acme Corp', '--domain', 'acme.test', '--logo-url', 'https://acme.test/logo.svg', '--primary-color', '#aa3300']);
    await cli(['tenant', 'create', '--realm', 'corp', '--id', 'globex', '--name', 'Globex']);
    await cli(['tenant', 'create', '--realm', 'corp', '--id', 'initech', '--name', 'Initech', '--domain', 'initech.test', '--connection', 'initech-okta', '--sso-enforced']);
    await cli(['tenant', 'create', '--realm', 'corp', '--id', 'hooli', '--name', 'Hooli', '--domain', 'hooli.test', '--connection', 'hooli-saml', '--connection', 'hooli-entra']);
    await cli(['tenant', 'create', '--realm', 'corp', '--id', 'vault', '--name', 'Vault', '--sso-enforced']);
    await cli(['tenant', 'add-member', '--realm', 'corp', '--tenant', 'acme', '--email', 'ann@acme.test']);
    await cli(['tenant', 'add-member', '--realm', 'corp', '--tenant', 'acme', '--email', 'multi@example.test']);
    await cli(['tenant', 'add-member', '--realm', 'corp', '--tenant', 'globex', '--email', 'multi@example.test']);
    await cli(['tenant', 'add-member', '--realm', 'corp', '--tenant', 'initech', '--email', 'sam@initech.test']);
  });
  afterAll(async () => {
    await server?.close();
    if (settingsDir) rmSync(settingsDir, { recursive: true, force: true });
  });

  /** Follows redirects inside the issuer until a page, a redirect to the app, or one to a connection. */
  async function walk(browser: Browser, start: URL | string, init: { form?: Record<string, string> } = {}): Promise<{ status: number; url: URL; html: string; location?: URL }> {
    let url = new URL(start);
    let res = await browser.request(url, init);
    for (let i = 0; i < 20 && res.status >= 300 && res.status < 400; i++) {
      const next = new URL(res.headers.get('location')!, url);
      if (next.href.startsWith(REDIRECT) || next.pathname.includes('/connection/')) return { status: res.status, url, html: '', location: next };
      url = next;
      res = await browser.request(url);
    }
    return { status: res.status, url, html: await res.text() };
  }

  async function begin(params: Record<string, string>, rp = config) {
    const browser = new Browser();
    const auth = await authorizationRequest(rp, REDIRECT, { scope: 'openid email offline_access read', resource: API, prompt: 'consent', ...params });
    return { browser, auth, first: await walk(browser, auth.url) };
  }

  async function typeEmail(browser: Browser, pageAt: { url: URL; html: string }, email: string) {
    const form = parseForm(pageAt.html, '/identify');
    return walk(browser, new URL(form.action, pageAt.url), { form: { ...form.fields, email } });
  }

  async function typePassword(browser: Browser, pageAt: { url: URL; html: string }, email: string) {
    expect(hasPasswordField(pageAt.html)).toBe(true);
    const form = parseForm(pageAt.html, '/login');
    const done = await browser.follow(new URL(form.action, pageAt.url), { form: { ...form.fields, email, password: PASSWORD } }, REDIRECT);
    return skipPasskeyOffer(browser, done, REDIRECT);
  }

  async function claimsOf(rp: oidc.Configuration, auth: Awaited<ReturnType<typeof authorizationRequest>>, callback: URL) {
    expect(callback.href.startsWith(REDIRECT), callback.href).toBe(true);
    expect(callback.searchParams.get('error'), callback.searchParams.get('error_description') ?? '').toBeNull();
    const tokens = await exchangeCode(rp, auth, callback, { resource: API });
    const id = (await jwtVerify(tokens.id_token!, remoteJwks(issuer), { issuer })).payload;
    const access = (await jwtVerify(tokens.access_token, remoteJwks(issuer), { issuer, audience: API, typ: 'at+jwt' })).payload;
    return { tokens, id, access };
  }

  it('tenant_id: the pages wear the tenant branding, and both tokens carry tenant_id, also after refresh', async () => {
    const { browser, auth, first } = await begin({ tenant_id: 'acme' });
    expect(first.status).toBe(200);
    expect(first.html).toContain('Acme Corp');
    expect(first.html).toContain('https://acme.test/logo.svg');
    // and its colour: the page's stylesheet link names it, and the stylesheet carries it (not the realm's #123456)
    expect(first.html).toContain('<link rel="stylesheet" href="/assets/realm.css?primary=%23aa3300">');
    const css = await (await testFetch(new URL('/assets/realm.css?primary=%23aa3300', issuer))).text();
    expect(css).toContain('--lk-primary: #aa3300;');
    expect(css).not.toContain('#123456');
    const realmCss = await (await testFetch(new URL('/assets/realm.css', issuer))).text();
    expect(realmCss).toContain('--lk-primary: #123456;');
    const pwd = await typeEmail(browser, first, 'ann@acme.test');
    expect(pwd.html).toContain('Acme Corp');
    const done = await typePassword(browser, pwd, 'ann@acme.test');
    const { tokens, id, access } = await claimsOf(config, auth, done.url);
    expect(id.tenant_id).toBe('acme');
    expect(access.tenant_id).toBe('acme');
    expect(id.email).toBe('ann@acme.test');
    // the authorization module was given the tenant (and cannot forge the claim)
    expect(access.seen_tenant).toBe('acme');

    // the tenant survives refresh-token rotation
    const oidcClient = await import('openid-client');
    const refreshed = await oidcClient.refreshTokenGrant(config, tokens.refresh_token!, { resource: API });
    expect((await jwtVerify(refreshed.id_token!, remoteJwks(issuer), { issuer })).payload.tenant_id).toBe('acme');
    expect((await jwtVerify(refreshed.access_token, remoteJwks(issuer), { issuer, audience: API })).payload.tenant_id).toBe('acme');
  });

  it('a user with no tenant gets tokens without tenant_id', async () => {
    const { browser, auth, first } = await begin({});
    const pwd = await typeEmail(browser, first, 'outsider@example.test');
    const done = await typePassword(browser, pwd, 'outsider@example.test');
    const { id, access } = await claimsOf(config, auth, done.url);
    expect(id.tenant_id).toBeUndefined();
    expect(access.tenant_id).toBeUndefined();
    expect(access.seen_tenant).toBe('none');
  });

  it('an unknown tenant_id is a clear error page', async () => {
    const { first } = await begin({ tenant_id: 'nope' });
    expect(first.status).toBe(400);
    expect(first.html).toContain('&quot;nope&quot;');
    expect(first.html).toContain('unknown_tenant');
    expect(hasPasswordField(first.html)).toBe(false);
  });

  it('a non-member cannot get tokens for a tenant: the application gets access_denied', async () => {
    const { browser, auth, first } = await begin({ tenant_id: 'globex' });
    const pwd = await typeEmail(browser, first, 'ann@acme.test');
    const done = await typePassword(browser, pwd, 'ann@acme.test');
    expect(done.url.href.startsWith(REDIRECT)).toBe(true);
    expect(done.url.searchParams.get('error')).toBe('access_denied');
    expect(done.url.searchParams.get('error_description')).toContain('not a member of tenant globex');
    expect(done.url.searchParams.get('code')).toBeNull();
    void auth;
  });

  it('tenant picker: a member of two tenants chooses one; the tokens carry the choice; a later sign-in for the other does not leak it', async () => {
    for (const choice of ['globex', 'acme']) {
      const { browser, auth, first } = await begin({});
      const pwd = await typeEmail(browser, first, 'multi@example.test');
      const after = await typePassword(browser, pwd, 'multi@example.test');
      expect(after.res.status).toBe(200);
      const html = await after.res.text();
      expect(html).toContain('Choose an organisation');
      expect(html).toMatch(/type="radio"[^>]*name="tenant"[^>]*value="acme"/);
      expect(html).toMatch(/type="radio"[^>]*name="tenant"[^>]*value="globex"/);
      expect(html).toContain('name="csrf"');
      const form = parseForm(html, '/tenant');
      // a forged choice is refused; a missing CSRF token too
      const forged = await browser.request(new URL(form.action, after.url), { form: { ...form.fields, tenant: 'initech' } });
      expect(forged.status).toBe(400);
      expect(await forged.text()).toContain('Choose one of the organisations listed.');
      const noCsrf = await browser.request(new URL(form.action, after.url), { form: { tenant: choice } });
      expect(noCsrf.status).toBe(403);
      const done = await browser.follow(new URL(form.action, after.url), { form: { ...form.fields, tenant: choice } }, REDIRECT);
      const { id, access } = await claimsOf(config, auth, done.url);
      expect(id.tenant_id).toBe(choice);
      expect(access.tenant_id).toBe(choice);
    }
  });

  it('a new sign-in in the same browser session for another tenant gets the new tenant', async () => {
    const browser = new Browser();
    for (const tenant of ['acme', 'globex']) {
      const auth = await authorizationRequest(config, REDIRECT, { scope: 'openid read', resource: API, tenant_id: tenant, prompt: 'login' });
      const first = await walk(browser, auth.url);
      const pwd = first.html.includes('/identify"') ? await typeEmail(browser, first, 'multi@example.test') : first;
      const done = await typePassword(browser, pwd, 'multi@example.test');
      const { id, access } = await claimsOf(config, auth, done.url);
      expect(id.tenant_id).toBe(tenant);
      expect(access.tenant_id).toBe(tenant);
    }
  });

  it('a member removed from the tenant gets no more tokens for it: not by refresh, not from the live session', async () => {
    await cli(['user', 'create', '--realm', 'corp', '--email', 'rita@example.test', '--password-stdin'], `${PASSWORD}\n`);
    await cli(['tenant', 'add-member', '--realm', 'corp', '--tenant', 'acme', '--email', 'rita@example.test']);
    const { browser, auth, first } = await begin({ tenant_id: 'acme' });
    const pwd = await typeEmail(browser, first, 'rita@example.test');
    const done = await typePassword(browser, pwd, 'rita@example.test');
    const { tokens, id } = await claimsOf(config, auth, done.url);
    expect(id.tenant_id).toBe('acme');

    await cli(['tenant', 'remove-member', '--realm', 'corp', '--tenant', 'acme', '--email', 'rita@example.test']);
    const oidcClient = await import('openid-client');
    // the refresh token of the acme sign-in no longer gives tokens
    const refreshed = await oidcClient.refreshTokenGrant(config, tokens.refresh_token!, { resource: API }).then(
      (t) => ({ tenant: decodeJwt(t.id_token!).tenant_id }),
      (err: { error?: string }) => ({ error: err.error }),
    );
    expect(refreshed).toEqual({ error: 'invalid_grant' });
    // nor does the live browser session give a code for acme: it has to sign in again
    const silent = await authorizationRequest(config, REDIRECT, { scope: 'openid', prompt: 'none' });
    const res = await browser.follow(silent.url, {}, REDIRECT);
    expect(res.url.href.startsWith(REDIRECT), res.url.href).toBe(true);
    expect(res.url.searchParams.get('code')).toBeNull();
    expect(res.url.searchParams.get('error')).toBe('login_required');
    // and signing in again gives tokens without the tenant
    const again = await authorizationRequest(config, REDIRECT, { scope: 'openid email offline_access read', resource: API });
    const page = await walk(browser, again.url);
    expect(hasPasswordField(page.html) || page.html.includes('/identify"'), page.html.slice(0, 300)).toBe(true);
    const pwdPage = page.html.includes('/identify"') ? await typeEmail(browser, page, 'rita@example.test') : page;
    const back = await typePassword(browser, pwdPage, 'rita@example.test');
    const after = await claimsOf(config, again, back.url);
    expect(after.id.sub).toBe(id.sub);
    expect(after.id.tenant_id).toBeUndefined();
  });

  it('a live session signed in for one tenant does not answer a request for another tenant without a sign-in for it', async () => {
    const browser = new Browser();
    const auth = await authorizationRequest(config, REDIRECT, { scope: 'openid read', resource: API, tenant_id: 'acme' });
    const first = await walk(browser, auth.url);
    const done = await typePassword(browser, await typeEmail(browser, first, 'multi@example.test'), 'multi@example.test');
    expect((await claimsOf(config, auth, done.url)).id.tenant_id).toBe('acme');

    // the same tenant again: the session answers
    const same = await authorizationRequest(config, REDIRECT, { scope: 'openid read', resource: API, tenant_id: 'acme', prompt: 'none' });
    const sameDone = await browser.follow(same.url, {}, REDIRECT);
    expect((await claimsOf(config, same, sameDone.url)).id.tenant_id).toBe('acme');

    // another tenant: not silently answered with the session's tenant
    const other = await authorizationRequest(config, REDIRECT, { scope: 'openid read', resource: API, tenant_id: 'globex', prompt: 'none' });
    const otherDone = await browser.follow(other.url, {}, REDIRECT);
    expect(otherDone.url.searchParams.get('code')).toBeNull();
    expect(otherDone.url.searchParams.get('error')).toBe('login_required');

    // a tenant the user is not a member of: no code either, even with the session
    const foreign = await authorizationRequest(config, REDIRECT, { scope: 'openid read', resource: API, tenant_id: 'initech' });
    const foreignDone = await walk(browser, foreign.url);
    expect(foreignDone.location?.searchParams.get('code') ?? null).toBeNull();

    // signing in for the other tenant gives its tokens
    const again = await authorizationRequest(config, REDIRECT, { scope: 'openid read', resource: API, tenant_id: 'globex' });
    const page = await walk(browser, again.url);
    const pwd = page.html.includes('/identify"') ? await typeEmail(browser, page, 'multi@example.test') : page;
    const back = await typePassword(browser, pwd, 'multi@example.test');
    expect((await claimsOf(config, again, back.url)).id.tenant_id).toBe('globex');
  });

  it('home realm discovery: an email of a tenant domain with one connection goes to that connection', async () => {
    const { browser, first } = await begin({});
    const next = await typeEmail(browser, first, 'someone@Initech.test');
    expect(next.location?.pathname).toMatch(/^\/interaction\/[^/]+\/connection\/initech-okta$/);
    expect(next.location?.origin).toBe(issuer);
  });

  it('home realm discovery: a tenant domain with several connections lists them, without a password', async () => {
    const { browser, first } = await begin({});
    const next = await typeEmail(browser, first, 'erlich@hooli.test');
    expect(next.status).toBe(200);
    expect(hasPasswordField(next.html)).toBe(false);
    expect(next.html).toMatch(/href="\/interaction\/[^/"]+\/connection\/hooli-saml"/);
    expect(next.html).toMatch(/href="\/interaction\/[^/"]+\/connection\/hooli-entra"/);
    expect(next.html).toContain('Hooli');
  });

  it('SSO-enforced tenant: its member never sees a password field, even with a password, and a posted password is refused', async () => {
    const viaEmail = await begin({});
    const next = await typeEmail(viaEmail.browser, viaEmail.first, 'sam@initech.test');
    expect(next.location?.pathname).toMatch(/\/connection\/initech-okta$/);

    const viaTenant = await begin({ tenant_id: 'initech' });
    expect(viaTenant.first.location?.pathname).toMatch(/\/connection\/initech-okta$/);

    // straight to the password endpoint (no page offered it): the sign-in is refused for the tenant
    const uid = /\/interaction\/([^/]+)\//.exec(viaTenant.first.location!.pathname)![1]!;
    const page = await walk(viaTenant.browser, `${issuer}/interaction/${uid}`);
    expect(hasPasswordField(page.html)).toBe(false);
    expect(page.html).toContain('Initech');
    const csrf = /name="csrf" value="([^"]+)"/.exec(page.html)![1]!;
    const refused = await viaTenant.browser.request(`${issuer}/interaction/${uid}/login`, { form: { csrf, email: 'sam@initech.test', password: PASSWORD } });
    expect(refused.status).toBe(403);
    const html = await refused.text();
    expect(html).toContain('sso_required');
    expect(html).toContain('Initech signs you in with its own identity provider');
    expect(hasPasswordField(html)).toBe(false);

    // no tenant named yet: a password posted straight to the password step, past the email step that
    // would have sent the user to the tenant's connection, is refused as well (by the email's domain)
    const plain = await begin({});
    const plainPage = await readPage(await plain.browser.follow(plain.first.url, {}, REDIRECT));
    const plainUid = /\/interaction\/([^/?]+)/.exec(plainPage.url.pathname)![1]!;
    const plainCsrf = /name="csrf" value="([^"]+)"/.exec(plainPage.html)![1]!;
    const straight = await plain.browser.request(`${issuer}/interaction/${plainUid}/login`, { form: { csrf: plainCsrf, email: 'sam@initech.test', password: PASSWORD } });
    expect(straight.status).toBe(403);
    expect(await straight.text()).toContain('sso_required');
    expect(straight.headers.get('location')).toBeNull();
  });

  it('SSO-enforced tenant: a passkey does not get around its single sign-on, for the tenant or into the tenant claim', async () => {
    // pat created a passkey before joining an SSO-enforced tenant
    await cli(['user', 'create', '--realm', 'corp', '--email', 'pat@example.test', '--password-stdin'], `${PASSWORD}\n`);
    const authenticator = new SoftAuthenticator();
    const setup = await begin({});
    const pwd = await typeEmail(setup.browser, setup.first, 'pat@example.test');
    const form = parseForm(pwd.html, '/login');
    const offer = await readPage(await setup.browser.follow(new URL(form.action, pwd.url), { form: { ...form.fields, email: 'pat@example.test', password: PASSWORD } }, REDIRECT));
    const registered = await passkeyRegistration(setup.browser, offer, authenticator, issuer);
    expect(registered.status, JSON.stringify(registered.body)).toBe(200);
    await cli(['tenant', 'add-member', '--realm', 'corp', '--tenant', 'initech', '--email', 'pat@example.test']);

    // a sign-in for the tenant goes to its connection; the passkey on the sign-in page is no way in
    const forTenant = await begin({ tenant_id: 'initech' });
    expect(forTenant.first.location?.pathname).toMatch(/\/connection\/initech-okta$/);
    const uid = /\/interaction\/([^/]+)\//.exec(forTenant.first.location!.pathname)![1]!;
    const page = await readPage(await forTenant.browser.follow(`${issuer}/interaction/${uid}`, {}, REDIRECT));
    const viaPasskey = await passkeyAssertion(forTenant.browser, page, authenticator, 'button');
    if (viaPasskey.status === 200) {
      const back = await forTenant.browser.follow(new URL(viaPasskey.body.redirect, issuer), {}, REDIRECT);
      expect(back.url.href.startsWith(REDIRECT), back.url.href).toBe(true);
      expect(back.url.searchParams.get('code')).toBeNull();
      expect(back.url.searchParams.get('error')).toBe('access_denied');
      expect(back.url.searchParams.get('error_description')).toContain('requires single sign-on');
    } else {
      expect(viaPasskey.status).toBe(403);
    }

    // without a tenant named, the passkey signs pat in, but not for the SSO-enforced tenant
    const plain = await begin({});
    const plainPage = await readPage(await plain.browser.follow(plain.first.url, {}, REDIRECT));
    const signedIn = await passkeyAssertion(plain.browser, plainPage, authenticator, 'button');
    expect(signedIn.status, JSON.stringify(signedIn.body)).toBe(200);
    const done = await plain.browser.follow(new URL(signedIn.body.redirect, issuer), {}, REDIRECT);
    const { id, access } = await claimsOf(config, plain.auth, done.url);
    expect(id.email).toBe('pat@example.test');
    expect(id.tenant_id).toBeUndefined();
    expect(access.tenant_id).toBeUndefined();
  });

  it('SSO-enforced tenant without connections: a clear message, no password', async () => {
    const { first } = await begin({ tenant_id: 'vault' });
    expect(first.status).toBe(200);
    expect(hasPasswordField(first.html)).toBe(false);
    expect(first.html).toContain('no sign-in method is set up');
  });

  it('connection_id jumps straight to the connection; unknown or not allowed ones are a clear error', async () => {
    const open = await begin({ connection_id: 'open-google' });
    expect(open.first.location?.pathname).toMatch(/^\/interaction\/[^/]+\/connection\/open-google$/);
    const tenants = await begin({ connection_id: 'hooli-entra', tenant_id: 'hooli' });
    expect(tenants.first.location?.pathname).toMatch(/\/connection\/hooli-entra$/);
    const unknown = await begin({ connection_id: 'ghost' });
    expect(unknown.first.status).toBe(400);
    expect(unknown.first.html).toContain('unknown_connection');
    expect(unknown.first.html).toContain('&quot;ghost&quot;');
    const notAllowed = await begin({ connection_id: 'initech-okta', tenant_id: 'hooli' });
    expect(notAllowed.first.status).toBe(400);
    expect(notAllowed.first.html).toContain('not available for Hooli');
  });

  it('login_hint pre-fills the email and runs the same discovery', async () => {
    const routed = await begin({ login_hint: 'someone@initech.test' });
    expect(routed.first.location?.pathname).toMatch(/\/connection\/initech-okta$/);
    const plain = await begin({ login_hint: 'ann@acme.test' });
    expect(plain.first.status).toBe(200);
    expect(plain.first.html).toContain('value="ann@acme.test"');
  });

  it('a third-party client (consent page) gets the tenant too', async () => {
    const { browser, auth, first } = await begin({ tenant_id: 'acme' }, thirdParty);
    const pwd = await typeEmail(browser, first, 'ann@acme.test');
    const afterPwd = await typePassword(browser, pwd, 'ann@acme.test');
    let at = afterPwd;
    const html = await at.res.text();
    if (html.includes('/confirm"')) {
      const form = parseForm(html, '/confirm');
      at = await browser.follow(new URL(form.action, at.url), { form: form.fields }, REDIRECT);
    }
    const { id, access } = await claimsOf(thirdParty, auth, at.url);
    expect(id.tenant_id).toBe('acme');
    expect(access.tenant_id).toBe('acme');
  });
});
