// A browser's navigation to the authorization endpoint gets the sign-in's first page in the same
// response (src/oidc/first-page.ts); any other request gets node-oidc-provider's 303 to that page.
import { jwtVerify } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { authorizationRequest, discover, exchangeCode, PASSWORD, remoteJwks, submitLogin } from '../helpers/flows.js';
import { Browser, parseForm } from '../helpers/http.js';
import { startTestServer, type TestServer } from '../helpers/server.js';
import type * as oidc from 'openid-client';

const REDIRECT = 'http://rp.example.test/cb';
const EMAIL = 'first-page@example.test';
/** What a browser sends on a top-level navigation (Fetch Metadata). */
const NAVIGATION = { 'sec-fetch-dest': 'document', 'sec-fetch-mode': 'navigate', 'sec-fetch-site': 'cross-site', accept: 'text/html' };

describe('the first sign-in page in the authorization response', () => {
  let server: TestServer;
  let config: oidc.Configuration;
  let firstParty: oidc.Configuration;

  beforeAll(async () => {
    server = await startTestServer();
    expect((await server.cli(['user', 'create', '--realm', 'default', '--email', EMAIL, '--password-stdin'], PASSWORD)).code).toBe(0);
    const rp = await server.cli(['client', 'create', '--realm', 'default', '--name', 'Third Party', '--redirect-uri', REDIRECT]);
    config = await discover(server.issuer, rp.json.client_id, { client_secret: rp.json.client_secret });
    const fp = await server.cli(['client', 'create', '--realm', 'default', '--name', 'First Party', '--redirect-uri', REDIRECT, '--first-party']);
    firstParty = await discover(server.issuer, fp.json.client_id, { client_secret: fp.json.client_secret });
  });
  afterAll(async () => server?.close());

  it('a browser navigation gets the email page at once, with the interaction cookies, and signs in from it', async () => {
    const browser = new Browser();
    const auth = await authorizationRequest(firstParty, REDIRECT);
    const res = await browser.request(auth.url, { headers: NAVIGATION });
    expect(res.status).toBe(200);
    expect(res.headers.get('location')).toBeNull();
    expect(res.headers.get('content-type')).toMatch(/^text\/html/);
    expect(res.headers.get('cache-control')).toContain('no-store');
    expect(res.headers.get('content-security-policy')).toContain("frame-ancestors 'none'");
    const html = await res.text();
    expect(html).toContain('<label for="lk-email">Email</label>');
    const identify = parseForm(html, '/identify');
    const uid = /^\/interaction\/([^/]+)\/identify$/.exec(identify.action)?.[1];
    expect(uid, identify.action).toBeTruthy();
    // the cookies the provider set for this interaction came with the page
    const jar = browser.cookies.get(auth.url.host)!;
    expect(jar.get('_interaction')).toBe(uid);
    expect(jar.get('_interaction_resume')).toBe(uid);

    // the same page the redirect would have led to
    const same = await browser.request(new URL(`/interaction/${uid}`, server.issuer));
    expect(same.status).toBe(200);
    const again = await same.text();
    expect(parseForm(again, '/identify').action).toBe(identify.action);

    const done = await submitLogin(browser, { res: new Response(html, { status: 200 }), url: auth.url }, EMAIL, PASSWORD, REDIRECT);
    expect(done.url.href.startsWith(REDIRECT), done.url.href).toBe(true);
    const tokens = await exchangeCode(firstParty, auth, done.url);
    const { payload } = await jwtVerify(tokens.id_token!, remoteJwks(server.issuer), { issuer: server.issuer });
    expect(payload.email).toBe(EMAIL);
  });

  it('other requests (no Fetch Metadata, or a frame) keep the 303 to the interaction page', async () => {
    for (const headers of [{}, { ...NAVIGATION, 'sec-fetch-dest': 'iframe' }, { ...NAVIGATION, 'sec-fetch-dest': 'empty' }]) {
      const browser = new Browser();
      const auth = await authorizationRequest(firstParty, REDIRECT);
      const res = await browser.request(auth.url, { headers });
      expect(res.status, JSON.stringify(headers)).toBe(303);
      expect(new URL(res.headers.get('location')!, server.issuer).pathname).toMatch(/^\/interaction\/[^/]+$/);
    }
  });

  it('the page takes nothing from the authorization request\'s query (e.g. an injected method=recovery)', async () => {
    const browser = new Browser();
    const auth = await authorizationRequest(firstParty, REDIRECT, { method: 'recovery' });
    const res = await browser.request(auth.url, { headers: NAVIGATION });
    expect(res.status).toBe(200);
    const html = await res.text();
    expect(html).toContain('<label for="lk-email">Email</label>');
    expect(html).not.toContain('/recovery"');
  });

  it('a bad authorization request still gets its error page, not a sign-in page', async () => {
    const browser = new Browser();
    const auth = await authorizationRequest(firstParty, 'http://rp.example.test/other');
    const res = await browser.request(auth.url, { headers: NAVIGATION });
    expect(res.status).toBe(400);
    const html = await res.text();
    expect(html).toContain('redirect_uri');
    expect(html).not.toContain('/identify"');
  });

  it('a signed-in user goes straight back to a first-party client; a third-party client gets its consent page inline', async () => {
    const browser = new Browser();
    const first = await authorizationRequest(firstParty, REDIRECT);
    const page = await browser.request(first.url, { headers: NAVIGATION });
    const done = await submitLogin(browser, { res: page, url: first.url }, EMAIL, PASSWORD, REDIRECT);
    expect(done.url.href.startsWith(REDIRECT)).toBe(true);

    const silent = await authorizationRequest(firstParty, REDIRECT);
    const back = await browser.follow(silent.url, {}, REDIRECT);
    expect(back.url.href.startsWith(REDIRECT), back.url.href).toBe(true);
    const direct = await browser.request((await authorizationRequest(firstParty, REDIRECT)).url, { headers: NAVIGATION });
    expect(direct.status).toBe(303);
    expect(direct.headers.get('location')!.startsWith(REDIRECT)).toBe(true);

    const third = await authorizationRequest(config, REDIRECT);
    const consent = await browser.request(third.url, { headers: NAVIGATION });
    expect(consent.status).toBe(200);
    const html = await consent.text();
    expect(html).toContain('Third Party');
    const form = parseForm(html, '/confirm');
    const granted = await browser.follow(new URL(form.action, server.issuer), { form: form.fields }, REDIRECT);
    expect(granted.url.href.startsWith(REDIRECT), granted.url.href).toBe(true);
    const tokens = await exchangeCode(config, third, granted.url);
    expect(tokens.id_token).toBeTruthy();
  });
});
