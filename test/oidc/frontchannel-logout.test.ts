/**
 * OpenID Connect Front-Channel Logout 1.0, over HTTP: the client fields through the CLI (checked, shown,
 * changed, removed), discovery, and the page a sign-out answers with (the iframes' URLs, the
 * Content-Security-Policy that allows exactly their origins, the way on). What Chromium does with that page
 * is test/browser/frontchannel-logout.test.ts.
 */
import * as oidc from 'openid-client';
import { decodeJwt, jwtVerify } from 'jose';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { describeEachDatabase } from '../helpers/databases.js';
import { discover, PASSWORD, remoteJwks, signIn, until } from '../helpers/flows.js';
import { Browser, parseForm, testFetch } from '../helpers/http.js';
import { startTestServer, type TestServer } from '../helpers/server.js';

const REDIRECT = 'http://app.example.test/callback';
const BYE = 'http://app.example.test/bye';
// on the scheme, host and port of the client's redirect URI, as Front-Channel Logout 1.0 section 2 requires
const FRONT = 'http://app.example.test/frontchannel-logout?tenant=a';

describeEachDatabase('front-channel logout', (kind) => {
  let server: TestServer;

  beforeAll(async () => {
    server = await startTestServer({ db: kind });
    const user = await server.cli(['user', 'create', '--realm', 'default', '--email', 'ada@example.test', '--password-stdin'], PASSWORD);
    expect(user.code, user.stderr).toBe(0);
  });
  afterAll(async () => server?.close());

  const cli = async (args: string[]) => {
    const r = await server.cli(args);
    expect(r.code, `${args.join(' ')}: ${r.stderr}`).toBe(0);
    return r.json;
  };
  const createClient = (...extra: string[]) =>
    cli(['client', 'create', '--realm', 'default', '--name', 'Demo App', '--redirect-uri', REDIRECT, '--post-logout-redirect-uri', BYE, '--first-party', ...extra]);
  const clientCount = async () => (await cli(['client', 'list', '--realm', 'default'])).clients.length;

  it('discovery says it is supported, with the session', async () => {
    const doc = (await (await testFetch(`${server.issuer}/.well-known/openid-configuration`)).json()) as Record<string, unknown>;
    expect(doc.frontchannel_logout_supported).toBe(true);
    expect(doc.frontchannel_logout_session_supported).toBe(true);
  });

  it('the CLI sets the URI (session required by default, or not) and lists it; a bad one names the flag and writes nothing', async () => {
    const created = await createClient('--frontchannel-logout-uri', FRONT);
    expect(created.frontchannel_logout_uri).toBe(FRONT);
    expect(created.frontchannel_logout_session_required).toBe(true);
    const listed = (await cli(['client', 'list', '--realm', 'default'])).clients.find((c: { client_id: string }) => c.client_id === created.client_id);
    expect(listed).toMatchObject({ frontchannel_logout_uri: FRONT, frontchannel_logout_session_required: true });
    const off = await createClient('--frontchannel-logout-uri', FRONT, '--no-frontchannel-logout-session-required');
    expect(off.frontchannel_logout_session_required).toBe(false);

    const before = await clientCount();
    for (const [bad, problem] of [
      ['not a url', /is not an absolute URL/],
      ['javascript:alert(1)', /forbidden scheme|must be an https/],
      [`${FRONT}#frag`, /must not contain a fragment/],
      ['ftp://app.example.test/logout', /must be an https \(or http\) URL/],
      ['https://app.example.test/frontchannel-logout', /must be on the scheme, host and port of one of the client's redirect URIs \(--redirect-uri\); https:\/\/app.example.test is not/],
      ['http://elsewhere.example.test/frontchannel-logout', /http:\/\/elsewhere.example.test is not/],
    ] as const) {
      const refused = await server.cli(['client', 'create', '--realm', 'default', '--name', 'Bad', '--redirect-uri', REDIRECT, '--frontchannel-logout-uri', bad]);
      expect(refused.code, bad).not.toBe(0);
      expect(refused.stderr).toMatch(/--frontchannel-logout-uri/);
      expect(refused.stderr).toMatch(/front-channel logout URI/);
      expect(refused.stderr).toMatch(problem);
    }
    const orphan = await server.cli(['client', 'create', '--realm', 'default', '--name', 'Bad', '--redirect-uri', REDIRECT, '--no-frontchannel-logout-session-required']);
    expect(orphan.code).not.toBe(0);
    expect(orphan.stderr).toMatch(/--frontchannel-logout-session-required/);
    expect(orphan.stderr).toMatch(/--frontchannel-logout-uri/);
    expect(await clientCount()).toBe(before);
  }, 120_000);

  it('the CLI changes the URI and its session flag and removes both; a bad change names the flag and changes nothing', async () => {
    const created = await createClient('--frontchannel-logout-uri', FRONT);
    // a bad change leaves the stored URI as it was
    const badUpdate = await server.cli(['client', 'update', '--realm', 'default', '--client-id', created.client_id, '--frontchannel-logout-uri', 'javascript:alert(1)']);
    expect(badUpdate.code).not.toBe(0);
    expect(badUpdate.stderr).toMatch(/--frontchannel-logout-uri/);
    const both = await server.cli(['client', 'update', '--realm', 'default', '--client-id', created.client_id, '--frontchannel-logout-uri', FRONT, '--no-frontchannel-logout']);
    expect(both.code).not.toBe(0);
    expect(both.stderr).toMatch(/--frontchannel-logout-uri or --no-frontchannel-logout/);
    const stored = (await cli(['client', 'list', '--realm', 'default'])).clients.find((c: { client_id: string }) => c.client_id === created.client_id);
    expect(stored).toMatchObject({ frontchannel_logout_uri: FRONT, frontchannel_logout_session_required: true });

    const noSession = await cli(['client', 'update', '--realm', 'default', '--client-id', created.client_id, '--no-frontchannel-logout-session-required']);
    expect(noSession).toMatchObject({ frontchannel_logout_uri: FRONT, frontchannel_logout_session_required: false });
    const other = 'http://app.example.test/other-logout';
    const moved = await cli(['client', 'update', '--realm', 'default', '--client-id', created.client_id, '--frontchannel-logout-uri', other]);
    expect(moved).toMatchObject({ frontchannel_logout_uri: other, frontchannel_logout_session_required: false });
    const removed = await cli(['client', 'update', '--realm', 'default', '--client-id', created.client_id, '--no-frontchannel-logout']);
    expect(removed.frontchannel_logout_uri).toBeUndefined();
    expect(removed.frontchannel_logout_session_required).toBeUndefined();
    // without a URI the session flag has nothing to apply to
    const flagOnly = await server.cli(['client', 'update', '--realm', 'default', '--client-id', created.client_id, '--frontchannel-logout-session-required']);
    expect(flagOnly.code).not.toBe(0);
    expect(flagOnly.stderr).toMatch(/--frontchannel-logout-session-required/);
  }, 120_000);

  /** Signs in with a fresh client on `issuer` (a domain of the realm); the browser (cookie jar) and the verified ID token. */
  async function signedIn(...extra: string[]) {
    return signedInOn(server.issuer, ...extra);
  }
  async function signedInOn(issuer: string, ...extra: string[]) {
    const client = await createClient(...extra);
    const config = await until(() => discover(issuer, client.client_id, {}, oidc.ClientSecretBasic(client.client_secret)).catch(() => undefined), `${issuer} served`);
    const browser = new Browser();
    const tokens = await signIn(browser, config, REDIRECT, 'ada@example.test', { scope: 'openid email' });
    const { payload } = await jwtVerify(tokens.id_token!, remoteJwks(issuer), { issuer, audience: client.client_id });
    return { client, config, browser, tokens, idToken: payload };
  }

  /** RP-initiated logout, "Yes, sign me out": the answer to the confirmation (not followed). */
  async function signOut(config: oidc.Configuration, browser: Browser, idToken: string) {
    const page = await browser.follow(oidc.buildEndSessionUrl(config, { id_token_hint: idToken, post_logout_redirect_uri: BYE, state: 'st' }));
    expect(page.res.status).toBe(200);
    const form = parseForm(await page.res.text(), 'session/end');
    return browser.request(new URL(form.action, page.url), { form: { ...form.fields, logout: 'yes' } });
  }

  const iframes = (html: string) => [...html.matchAll(/<iframe\b[^>]*\bsrc="([^"]*)"/g)].map((m) => m[1]!.replace(/&amp;/g, '&'));

  it('the ID token carries sid; signing out answers with a page that frames the URI with iss and sid, allows only its origin, and goes on to the post-logout URI', async () => {
    const { config, browser, tokens, idToken } = await signedIn('--frontchannel-logout-uri', FRONT);
    expect(typeof idToken.sid, 'the ID token names the session the logout iframe will name').toBe('string');

    const res = await signOut(config, browser, tokens.id_token!);
    expect(res.status).toBe(200);
    const html = await res.text();
    const [src, ...more] = iframes(html);
    expect(more).toEqual([]);
    const url = new URL(src!);
    expect(`${url.origin}${url.pathname}`).toBe('http://app.example.test/frontchannel-logout');
    expect(url.searchParams.get('tenant'), 'the registered query is kept').toBe('a');
    expect(url.searchParams.get('iss')).toBe(server.issuer);
    expect(url.searchParams.get('sid')).toBe(idToken.sid);

    const csp = res.headers.get('content-security-policy')!;
    expect(csp).toMatch(/(^|; )frame-src http:\/\/app\.example\.test(;|$)/);
    expect(csp).toContain("script-src 'self'");
    expect(csp).not.toContain('*');
    // the way on: the post-logout redirect URI with its state, as a link and as the no-JavaScript refresh
    const on = `${BYE}?state=st`;
    expect(html).toContain(`id="lk-logout-continue" href="${on}"`);
    expect(html).toContain(`<meta http-equiv="refresh" content="4; url='${on}'">`);
    expect(html).toContain('<script src="/assets/frontchannel-logout.js"></script>');
    expect(html).toMatch(/<h1[^>]*>Signing you out<\/h1>/);
    expect(html).toMatch(/role="status"[^>]*>Signing you out…</);
    // the session ended with the page
    expect(res.headers.getSetCookie().some((c) => /^_session=;/.test(c))).toBe(true);
    expect((await oidc.tokenIntrospection(config, tokens.access_token)).active).toBe(false);
  });

  it('without the session flag the URI is framed as registered (no iss, no sid), and the ID token carries no sid', async () => {
    const { config, browser, tokens, idToken } = await signedIn('--frontchannel-logout-uri', FRONT, '--no-frontchannel-logout-session-required');
    expect(idToken.sid).toBeUndefined();
    const res = await signOut(config, browser, tokens.id_token!);
    expect(res.status).toBe(200);
    expect(iframes(await res.text())).toEqual([FRONT]);
  });

  it("on another domain of the realm, iss is that domain's issuer (where the session lived)", async () => {
    const second = `http://second.localhost:${server.port}`;
    await cli(['realm', 'add-issuer', '--realm', 'default', '--issuer', second]);
    const { config, browser, tokens, idToken } = await signedInOn(second, '--frontchannel-logout-uri', FRONT);
    const res = await signOut(config, browser, tokens.id_token!);
    expect(res.status).toBe(200);
    const url = new URL(iframes(await res.text())[0]!);
    expect(url.searchParams.get('iss')).toBe(second);
    expect(url.searchParams.get('sid')).toBe(idToken.sid);
  });

  it('a session without such applications signs out with the plain redirect', async () => {
    const { config, browser, tokens } = await signedIn();
    expect(decodeJwt(tokens.id_token!).sid).toBeUndefined();
    const res = await signOut(config, browser, tokens.id_token!);
    expect(res.status).toBe(303);
    expect(res.headers.get('location')).toBe(`${BYE}?state=st`);
  });
});
