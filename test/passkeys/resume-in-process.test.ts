import { decodeJwt } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SoftAuthenticator } from '../helpers/authenticator.js';
import { authorizationRequest, discover, exchangeCode, PASSWORD, signIn } from '../helpers/flows.js';
import { Browser } from '../helpers/http.js';
import { passkeyAssertion, passkeyRegistration, postJson, readPage, submit } from '../helpers/passkey-flows.js';
import { startTestServer, type TestServer } from '../helpers/server.js';
import type * as oidc from 'openid-client';

const REDIRECT = 'http://app.example.test/cb';
const THIRD_PARTY_REDIRECT = 'http://partner.example.test/cb';

/**
 * A passkey verified by the page's script ends the sign-in within that request (src/oidc/resume-in-process.ts):
 * the answer points past node-oidc-provider's resume, at the client, where the browser would otherwise
 * have stopped at /auth/<uid> on the way. Where the resume ends in something other than a redirect, the
 * browser is sent to /auth/<uid> as before.
 */
describe('a passkey sign-in resumed within the verify request', () => {
  let server: TestServer;
  let firstParty: oidc.Configuration;
  let thirdParty: oidc.Configuration;
  const authenticator = new SoftAuthenticator();
  const email = 'lin@example.test';
  const other = 'mae@example.test';

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
    for (const who of [email, other]) expect((await server.cli(['user', 'create', '--realm', 'default', '--email', who, '--password-stdin'], PASSWORD)).code).toBe(0);
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
});
