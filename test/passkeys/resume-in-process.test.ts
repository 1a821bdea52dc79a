import { decodeJwt } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SoftAuthenticator } from '../helpers/authenticator.js';
import { authorizationRequest, discover, exchangeCode, PASSWORD, postForm, signIn, type Authorization } from '../helpers/flows.js';
import { Browser, parseForm } from '../helpers/http.js';
import { passkeyAssertion, passkeyRegistration, postJson, readPage, submit, type SignInPage } from '../helpers/passkey-flows.js';
import { startTestServer, type TestServer } from '../helpers/server.js';
import type * as oidc from 'openid-client';

const REDIRECT = 'http://app.example.test/cb';
const THIRD_PARTY_REDIRECT = 'http://partner.example.test/cb';
const DEVICE_GRANT = 'urn:ietf:params:oauth:grant-type:device_code';

/**
 * A passkey verified by the page's script, or a form post that completes the sign-in (password, TOTP,
 * recovery code, "Not now" on the passkey offer), ends the sign-in within that request
 * (src/interactions/answer-step.ts, src/oidc/resume-in-process.ts): the answer points past
 * node-oidc-provider's resume, at the client, where the browser would otherwise have stopped at
 * /auth/<uid> on the way. Where the resume ends in something other than a redirect (form_post, another
 * account signed in, a device flow), the browser is sent to the resume as before.
 */
describe('a sign-in resumed within the request that completes it', () => {
  let server: TestServer;
  let firstParty: oidc.Configuration;
  let thirdParty: oidc.Configuration;
  const authenticator = new SoftAuthenticator();
  const email = 'lin@example.test';
  const other = 'mae@example.test';
  const typist = 'kit@example.test';
  let tv: string;

  async function start(browser: Browser, config: oidc.Configuration, redirect: string, params: Record<string, string> = {}) {
    const auth = await authorizationRequest(config, redirect, params);
    const first = await browser.follow(auth.url, {}, redirect);
    return { auth, page: await readPage(first) };
  }

  beforeAll(async () => {
    server = await startTestServer();
    const app = await server.cli(['client', 'create', '--realm', 'default', '--name', 'App', '--redirect-uri', REDIRECT, '--first-party']);
    const partner = await server.cli(['client', 'create', '--realm', 'default', '--name', 'Partner', '--redirect-uri', THIRD_PARTY_REDIRECT]);
    expect(app.code, app.stderr).toBe(0);
    expect(partner.code, partner.stderr).toBe(0);
    firstParty = await discover(server.issuer, app.json.client_id, { client_secret: app.json.client_secret });
    thirdParty = await discover(server.issuer, partner.json.client_id, { client_secret: partner.json.client_secret });
    const device = await server.cli(['client', 'create', '--realm', 'default', '--name', 'Hall TV', '--public', '--first-party', '--grant', DEVICE_GRANT]);
    expect(device.code, device.stderr).toBe(0);
    tv = device.json.client_id;
    for (const who of [email, other, typist]) expect((await server.cli(['user', 'create', '--realm', 'default', '--email', who, '--password-stdin'], PASSWORD)).code).toBe(0);
    // a passkey for `email`, from the offer after a password sign-in (that sign-in is left unfinished)
    const browser = new Browser();
    const { page } = await start(browser, firstParty, REDIRECT);
    const passwordPage = await readPage(await submit(browser, page, '/identify', { email }, REDIRECT));
    const offer = await readPage(await submit(browser, passwordPage, '/login', { email, password: PASSWORD }, REDIRECT));
    const registered = await passkeyRegistration(browser, offer, authenticator, server.issuer);
    expect(registered.status, JSON.stringify(registered.body)).toBe(200);
  });
  afterAll(async () => server?.close());

  it('answers with the client redirect (code, state, iss) and the session cookie: the next request with prompt=none needs no page', async () => {
    const browser = new Browser();
    const { auth, page } = await start(browser, firstParty, REDIRECT);
    const result = await passkeyAssertion(browser, page, authenticator, 'button');
    expect(result.status, JSON.stringify(result.body)).toBe(200);
    const back = new URL(result.body.redirect);
    expect(`${back.origin}${back.pathname}`).toBe(REDIRECT);
    expect(back.searchParams.get('state')).toBe(auth.state);
    expect(back.searchParams.get('iss')).toBe(server.issuer);
    const tokens = await exchangeCode(firstParty, auth, back);
    expect(decodeJwt(tokens.id_token!)).toMatchObject({ email, amr: expect.arrayContaining(['user', 'mfa']) });
    // the resume deleted the interaction (its result was never written: src/oidc/held-interactions.ts)
    expect(await server.services.db('oidc_payloads').where({ realm_id: 'default', model: 'Interaction', id: page.uid }).first()).toBeUndefined();

    // the session the resume started came with the verify answer: another authorization is answered at once
    const again = await authorizationRequest(firstParty, REDIRECT, { prompt: 'none' });
    const silent = await browser.follow(again.url, {}, REDIRECT);
    expect(silent.url.href.startsWith(REDIRECT), silent.url.href).toBe(true);
    expect(silent.url.searchParams.get('error')).toBeNull();
    expect(decodeJwt((await exchangeCode(firstParty, again, silent.url)).id_token!).sub).toBe(decodeJwt(tokens.id_token!).sub);
  });

  it('a client that needs consent: the answer leads on to the consent page of the same sign-in', async () => {
    const browser = new Browser();
    const { page } = await start(browser, thirdParty, THIRD_PARTY_REDIRECT);
    const result = await passkeyAssertion(browser, page, authenticator, 'button');
    expect(result.status, JSON.stringify(result.body)).toBe(200);
    const next = new URL(result.body.redirect, server.issuer);
    expect(next.origin).toBe(server.issuer);
    expect(next.pathname).toMatch(/^\/interaction\/[^/]+$/);
    const consent = await browser.follow(next, {}, THIRD_PARTY_REDIRECT);
    expect(consent.res.status).toBe(200);
    expect(await consent.res.text()).toContain('Partner');
  });

  it('response_mode=form_post: the browser is sent to /auth/<uid>, whose page posts the code to the client', async () => {
    const browser = new Browser();
    const { page } = await start(browser, firstParty, REDIRECT, { response_mode: 'form_post' });
    const result = await passkeyAssertion(browser, page, authenticator, 'button');
    expect(result.status, JSON.stringify(result.body)).toBe(200);
    const resume = new URL(result.body.redirect, server.issuer);
    expect(resume.pathname).toBe(`/auth/${page.uid}`);
    const posted = await browser.follow(resume, {}, REDIRECT);
    expect(posted.res.status).toBe(200);
    const html = await posted.res.text();
    expect(html).toContain(`action="${REDIRECT}"`);
    expect(html).toMatch(/name="code" value="[^"]+"/);
  });

  it('another account signed in on this browser: the browser is sent to /auth/<uid>, where the provider asks to end that session first', async () => {
    const browser = new Browser();
    await signIn(browser, firstParty, REDIRECT, other);
    const { page } = await start(browser, firstParty, REDIRECT, { prompt: 'login' });
    const result = await passkeyAssertion(browser, page, authenticator, 'button');
    expect(result.status, JSON.stringify(result.body)).toBe(200);
    const resume = new URL(result.body.redirect, server.issuer);
    expect(resume.pathname).toBe(`/auth/${page.uid}`);
    const confirm = await browser.follow(resume, {}, REDIRECT);
    expect(confirm.res.status).toBe(200);
    expect(await confirm.res.text()).toMatch(/name="logout" value="yes"/);
  });

  it('id_token_hint naming another account than the one signed in: the sign-in is for the hinted account, which then asks to end the other session', async () => {
    const named = 'noor@example.test';
    expect((await server.cli(['user', 'create', '--realm', 'default', '--email', named, '--password-stdin'], PASSWORD)).code).toBe(0);
    const browser = new Browser();
    await signIn(browser, firstParty, REDIRECT, other);
    const hinted = await signIn(new Browser(), firstParty, REDIRECT, named);
    const { page } = await start(browser, firstParty, REDIRECT, { id_token_hint: hinted.id_token! });
    expect(page.html).toContain('name="password"');
    expect(page.html).toContain(named);
    expect(page.html).not.toContain(other);
    const result = await submit(browser, page, '/login', { email: named, password: PASSWORD }, REDIRECT);
    expect(result.url.pathname).toBe(`/auth/${page.uid}`);
    expect(await result.res.text()).toMatch(/name="logout" value="yes"/);
  });

  it('a resume that fails part-way (the browser signed out meanwhile) writes the interaction with its result, as it was before the resume', async () => {
    const browser = new Browser();
    // signed in with the passkey, then a new sign-in of the same account (prompt=login) ...
    const first = await start(browser, firstParty, REDIRECT);
    expect((await passkeyAssertion(browser, first.page, authenticator, 'button')).status).toBe(200);
    const { page } = await start(browser, firstParty, REDIRECT, { prompt: 'login' });
    // ... during which the session ends elsewhere (its cookies are gone): the resume refuses the mismatch
    const jar = browser.cookies.get(new URL(server.issuer).host)!;
    for (const name of [...jar.keys()]) if (name.startsWith('_session')) jar.delete(name);
    const result = await passkeyAssertion(browser, page, authenticator, 'button');
    expect(result.status).toBe(400);
    expect(String(result.body)).toContain('<html');
    const row = await server.services.db('oidc_payloads').where({ realm_id: 'default', model: 'Interaction', id: page.uid }).first();
    expect(row, 'the interaction is still stored').toBeDefined();
    expect(JSON.parse(row.payload).result?.login?.accountId).toBeTruthy();
  });

  it('a verify that fails leaves the sign-in as it was: the page can still sign in', async () => {
    const browser = new Browser();
    const { auth, page } = await start(browser, firstParty, REDIRECT);
    const options = await postJson(browser, page, '/passkey/options', { mode: 'button' });
    const assertion = await authenticator.getAssertion(options.body, server.issuer);
    const tampered = { ...assertion, response: { ...assertion.response, signature: Buffer.from('not a signature').toString('base64url') } };
    const refused = await postJson(browser, page, '/passkey/verify', { response: tampered });
    expect(refused.status).toBe(400);
    expect(refused.body.error).toBe('assertion_failed');
    const result = await passkeyAssertion(browser, page, authenticator, 'button');
    expect(result.status, JSON.stringify(result.body)).toBe(200);
    const back = new URL(result.body.redirect);
    expect(`${back.origin}${back.pathname}`).toBe(REDIRECT);
    await exchangeCode(firstParty, auth, back);
  });
  /** Posts one of the page's forms without following the answer. */
  async function post(browser: Browser, page: SignInPage, action: string, fields: Record<string, string>): Promise<Response> {
    const form = parseForm(page.html, action);
    expect(form.action, `no form posting to ${action} on ${page.url.href}`).toContain(action);
    return browser.request(new URL(form.action, page.url), { method: 'POST', form: { ...form.fields, ...fields } });
  }

  /** A 303 straight to the client with the code for `auth` (no stop at /auth/<uid>), setting the session cookie. */
  function clientRedirect(res: Response, auth: Authorization): URL {
    expect(res.status).toBe(303);
    const back = new URL(res.headers.get('location')!);
    expect(`${back.origin}${back.pathname}`).toBe(REDIRECT);
    expect(back.searchParams.get('state')).toBe(auth.state);
    expect(back.searchParams.get('iss')).toBe(server.issuer);
    expect(back.searchParams.get('code')).toBeTruthy();
    expect(res.headers.getSetCookie().some((c) => c.startsWith('_session='))).toBe(true);
    return back;
  }

  it('password sign-ins end the same way: the form post (password, or "Not now" on the passkey offer) is answered with the client redirect', async () => {
    const browser = new Browser();
    // the first sign-in ends on the passkey offer: "Not now" is answered with the client redirect
    const first = await start(browser, firstParty, REDIRECT);
    const passwordPage = await readPage(await submit(browser, first.page, '/identify', { email: typist }, REDIRECT));
    const offer = await readPage(await submit(browser, passwordPage, '/login', { email: typist, password: PASSWORD }, REDIRECT));
    expect(offer.html).toContain('/offer/skip');
    const skipped = clientRedirect(await post(browser, offer, '/offer/skip', {}), first.auth);
    const firstTokens = await exchangeCode(firstParty, first.auth, skipped);
    expect(decodeJwt(firstTokens.id_token!)).toMatchObject({ email: typist, amr: ['pwd'] });

    // signing in again (prompt=login: straight to the password): the password post is answered with the client redirect
    const again = await start(browser, firstParty, REDIRECT, { prompt: 'login' });
    expect(again.page.html).toContain('/login');
    const back = clientRedirect(await post(browser, again.page, '/login', { email: typist, password: PASSWORD }), again.auth);
    const tokens = await exchangeCode(firstParty, again.auth, back);
    expect(decodeJwt(tokens.id_token!)).toMatchObject({ email: typist, amr: ['pwd'], sub: decodeJwt(firstTokens.id_token!).sub });
    expect(await server.services.db('oidc_payloads').where({ realm_id: 'default', model: 'Interaction', id: again.page.uid }).first()).toBeUndefined();

    // a wrong password is still answered with the page and its message, and nothing is resumed
    const third = await start(browser, firstParty, REDIRECT, { prompt: 'login' });
    const wrong = await post(browser, third.page, '/login', { email: typist, password: 'not-the-password-at-all' });
    expect(wrong.status).toBe(401);
    expect(await wrong.text()).toContain('Incorrect email or password.');
  });

  it('response_mode=form_post after a password: the form post sends the browser to /auth/<uid>, whose page posts the code to the client', async () => {
    const browser = new Browser();
    await signIn(browser, firstParty, REDIRECT, typist);
    const { page } = await start(browser, firstParty, REDIRECT, { prompt: 'login', response_mode: 'form_post' });
    const res = await post(browser, page, '/login', { email: typist, password: PASSWORD });
    expect(res.status).toBe(303);
    expect(new URL(res.headers.get('location')!, server.issuer).pathname).toBe(`/auth/${page.uid}`);
    const posted = await browser.follow(new URL(res.headers.get('location')!, server.issuer), {}, REDIRECT);
    expect(posted.res.status).toBe(200);
    expect(await posted.res.text()).toMatch(/name="code" value="[^"]+"/);
  });

  it('a device flow (its resume is /device/<uid>, which answers with a page): the passkey verify sends the browser there, and the device gets its tokens', async () => {
    const started = await postForm(`${server.issuer}/device/auth`, { client_id: tv, scope: 'openid email' });
    expect(started.status, JSON.stringify(started.body)).toBe(200);
    const browser = new Browser();
    const open = await browser.follow(started.body.verification_uri_complete);
    const autoPost = parseForm(await open.res.text());
    const confirm = await browser.follow(new URL(autoPost.action, open.url), { form: autoPost.fields });
    const confirmForm = parseForm(await confirm.res.text(), '/device');
    const page = await readPage(await browser.follow(new URL(confirmForm.action, confirm.url), { form: confirmForm.fields }));
    const result = await passkeyAssertion(browser, page, authenticator, 'button');
    expect(result.status, JSON.stringify(result.body)).toBe(200);
    const resume = new URL(result.body.redirect, server.issuer);
    expect(resume.pathname.startsWith('/device/'), resume.href).toBe(true);
    const done = await browser.follow(resume);
    expect(done.res.status).toBe(200);
    expect(await done.res.text()).toContain('Your device is signed in to Hall TV');
    const tokens = await postForm(`${server.issuer}/token`, { grant_type: DEVICE_GRANT, device_code: started.body.device_code, client_id: tv });
    expect(tokens.status, JSON.stringify(tokens.body)).toBe(200);
    expect(decodeJwt(tokens.body.id_token).email).toBe(email);
  });
});
