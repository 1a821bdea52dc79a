import type * as oidc from 'openid-client';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { describeEachDatabase } from '../helpers/databases.js';
import { authorizationRequest, discover, exchangeCode, PASSWORD, skipPasskeyOffer } from '../helpers/flows.js';
import { startGitHubStub, type OAuthStub } from '../helpers/github-stub.js';
import { SoftAuthenticator } from '../helpers/authenticator.js';
import { Browser, parseForm } from '../helpers/http.js';
import { passkeyAssertion, passkeyRegistration, readPage, submit } from '../helpers/passkey-flows.js';
import { startTestServer, type TestServer } from '../helpers/server.js';

const REDIRECT = 'http://app.example.test/callback';

/** A generic OAuth 2.0 provider's userinfo document (the stub serves whatever we set). */
const upstreamUser = (id: string, email: string, verified: boolean, name = 'Someone') => ({ user: { uid: id, mail: email, mail_verified: verified, display: name }, emails: [] });

// Linking an upstream identity to an existing account: only a verified email, and only after the
// account's owner proves it here (password or passkey).
describeEachDatabase('account linking', (kind) => {
  let server: TestServer;
  let stub: OAuthStub;
  let config: oidc.Configuration;
  const ids: Record<string, string> = {};

  const links = (userId: string) => server.services.linking.identitiesOf('default', userId);
  const count = async (table: string, where: Record<string, unknown> = {}) => {
    const [row] = await server.services.db(table).where(where).count({ n: '*' });
    return Number((row as { n: number | string }).n);
  };

  beforeAll(async () => {
    server = await startTestServer({ db: kind });
    stub = await startGitHubStub(upstreamUser('0', 'nobody@corp.test', true));
    const created = await server.cli(
      [
        'connection', 'create', '--realm', 'default', '--id', 'corp', '--type', 'oauth2', '--name', 'Corp SSO',
        '--authorization-endpoint', `${stub.url}/login/oauth/authorize`,
        '--token-endpoint', `${stub.url}/login/oauth/access_token`,
        '--userinfo-endpoint', `${stub.url}/api/v3/user`,
        '--claim', 'sub=uid', '--claim', 'email=mail', '--claim', 'email_verified=mail_verified', '--claim', 'name=display',
        '--scope', 'profile', '--client-id', stub.clientId, '--client-secret-stdin',
      ],
      stub.clientSecret,
    );
    expect(created.code, created.stderr).toBe(0);
    for (const email of ['bob@corp.test', 'carol@corp.test', 'dave@corp.test', 'frank@corp.test', 'gina@corp.test']) {
      const u = await server.cli(['user', 'create', '--realm', 'default', '--email', email, '--password-stdin'], `${PASSWORD}\n`);
      expect(u.code, u.stderr).toBe(0);
      ids[email] = u.json.id;
    }
    const rp = await server.cli(['client', 'create', '--realm', 'default', '--name', 'App', '--redirect-uri', REDIRECT, '--first-party']);
    config = await discover(server.issuer, rp.json.client_id, { client_secret: rp.json.client_secret });
  });
  afterAll(async () => {
    await server?.close();
    await stub?.close();
  });

  /** From the application through "Continue with Corp SSO" and back; returns where the browser ends. */
  async function viaCorp(browser: Browser) {
    const auth = await authorizationRequest(config, REDIRECT);
    const page = await browser.follow(auth.url, {}, REDIRECT);
    const href = /href="([^"]+\/connection\/corp)"/.exec(await page.res.text())![1]!;
    const done = await browser.follow(new URL(href, page.url), {}, REDIRECT);
    return { auth, done };
  }

  async function submitPassword(browser: Browser, page: { res: Response; url: URL }, password: string) {
    const html = await page.res.text();
    const form = parseForm(html, '/login');
    return browser.follow(new URL(form.action, page.url), { form: { ...form.fields, password } }, REDIRECT);
  }

  it('a verified email matching an account asks for that account’s password; a wrong one links nothing, the right one links', async () => {
    stub.account = upstreamUser('u-bob', 'Bob@Corp.test', true);
    const browser = new Browser();
    const { auth, done } = await viaCorp(browser);
    // not signed in: the password page for the existing account, saying why
    expect(done.res.status).toBe(200);
    const html = await done.res.text();
    expect(html).toContain('name="password"');
    expect(html).toContain('bob@corp.test');
    expect(html).toContain('To connect your Corp SSO account to this account, confirm it is yours.');
    expect(await links(ids['bob@corp.test']!)).toEqual([]);

    const page = { res: new Response(html, { status: 200 }), url: done.url };
    const wrong = await submitPassword(browser, page, 'not-the-password-at-all-1');
    expect(wrong.res.status).toBe(401);
    const wrongHtml = await wrong.res.text();
    expect(wrongHtml).toContain('Incorrect email or password.');
    expect(wrongHtml).toContain('To connect your Corp SSO account');
    expect(await links(ids['bob@corp.test']!)).toEqual([]);

    const right = await skipPasskeyOffer(browser, await submitPassword(browser, { res: new Response(wrongHtml, { status: 200 }), url: wrong.url }, PASSWORD), REDIRECT);
    expect(right.url.href.startsWith(REDIRECT), `ended at ${right.url.href}`).toBe(true);
    const tokens = await exchangeCode(config, auth, right.url);
    expect(tokens.claims()!.sub).toBe(ids['bob@corp.test']);
    expect((await links(ids['bob@corp.test']!)).map((l) => [l.connectionId, l.subject])).toEqual([['corp', 'u-bob']]);

    // linked: the next sign-in through Corp SSO needs no password
    const again = await viaCorp(new Browser());
    expect(again.done.url.href.startsWith(REDIRECT), `ended at ${again.done.url.href}`).toBe(true);
    expect((await exchangeCode(config, again.auth, again.done.url)).claims()!.sub).toBe(ids['bob@corp.test']);
  });

  it('a passkey proves the account too: the owner of a passkey is asked for it, and the link follows', async () => {
    // frank signs in with his password once and creates a passkey at the offer
    const authenticator = new SoftAuthenticator();
    const setup = new Browser();
    const auth0 = await authorizationRequest(config, REDIRECT);
    const first = await readPage(await setup.follow(auth0.url, {}, REDIRECT));
    const passwordPage = await readPage(await submit(setup, first, '/identify', { email: 'frank@corp.test' }, REDIRECT));
    const offer = await readPage(await submit(setup, passwordPage, '/login', { email: 'frank@corp.test', password: PASSWORD }, REDIRECT));
    const registered = await passkeyRegistration(setup, offer, authenticator, server.issuer);
    expect(registered.status, JSON.stringify(registered.body)).toBe(200);

    stub.account = upstreamUser('u-frank', 'frank@corp.test', true);
    const browser = new Browser();
    const { auth, done } = await viaCorp(browser);
    const page = await readPage(done);
    expect(page.html).toContain('lk-passkey-button');
    expect(page.html).toContain('To connect your Corp SSO account');
    expect(await links(ids['frank@corp.test']!)).toEqual([]);
    const proof = await passkeyAssertion(browser, page, authenticator, 'identified');
    expect(proof.status, JSON.stringify(proof.body)).toBe(200);
    const back = await browser.follow(new URL(proof.body.redirect, server.issuer), {}, REDIRECT);
    expect(back.url.href.startsWith(REDIRECT)).toBe(true);
    expect((await exchangeCode(config, auth, back.url)).claims()!.sub).toBe(ids['frank@corp.test']);
    expect((await links(ids['frank@corp.test']!)).map((l) => l.subject)).toEqual(['u-frank']);
  });

  it('proof of another account does not link: "Not you?" then signing in as someone else', async () => {
    stub.account = upstreamUser('u-carol', 'carol@corp.test', true);
    const browser = new Browser();
    const { auth, done } = await viaCorp(browser);
    const html = await done.res.text();
    expect(html).toContain('carol@corp.test');
    const notYou = parseForm(html, '/restart');
    const identify = await browser.follow(new URL(notYou.action, done.url), { form: notYou.fields }, REDIRECT);
    const identifyHtml = await identify.res.text();
    const emailForm = parseForm(identifyHtml, '/identify');
    const passwordPage = await browser.follow(new URL(emailForm.action, identify.url), { form: { ...emailForm.fields, email: 'dave@corp.test' } }, REDIRECT);
    const signedIn = await skipPasskeyOffer(browser, await submitPassword(browser, passwordPage, PASSWORD), REDIRECT);
    expect(signedIn.url.href.startsWith(REDIRECT)).toBe(true);
    expect((await exchangeCode(config, auth, signedIn.url)).claims()!.sub).toBe(ids['dave@corp.test']);
    expect(await links(ids['dave@corp.test']!)).toEqual([]);
    expect(await links(ids['carol@corp.test']!)).toEqual([]);
    expect(await count('federated_identities', { subject: 'u-carol' })).toBe(0);
  });

  it('an unverified email matching an account never links, not silently and not after proof: a clear refusal', async () => {
    stub.account = upstreamUser('u-mallory', 'carol@corp.test', false);
    const users = await count('users');
    const { done } = await viaCorp(new Browser());
    expect(done.res.status).toBe(409);
    const html = await done.res.text();
    expect(html).toContain('This email already has an account');
    expect(html).toContain('email_unverified');
    expect(html).not.toContain('name="password"');
    expect(await count('users')).toBe(users);
    expect(await count('federated_identities', { subject: 'u-mallory' })).toBe(0);
    expect(await links(ids['carol@corp.test']!)).toEqual([]);
  });

  it('an email no account uses makes a new user (verified as the upstream says) and links it', async () => {
    stub.account = upstreamUser('u-erin', 'erin@corp.test', false, 'Erin');
    const { auth, done } = await viaCorp(new Browser());
    expect(done.url.href.startsWith(REDIRECT), `ended at ${done.url.href}`).toBe(true);
    const claims = (await exchangeCode(config, auth, done.url)).claims()!;
    const erin = await server.services.users.findByEmail('default', 'erin@corp.test');
    expect(claims.sub).toBe(erin!.id);
    expect(erin!.emailVerified).toBe(false);
    expect(erin!.name).toBe('Erin');
    expect(erin!.passwordHash).toBeNull();
    expect((await links(erin!.id)).map((l) => l.subject)).toEqual(['u-erin']);
  });

  it('a disabled account linked upstream cannot sign in through the connection', async () => {
    const disabled = await server.cli(['user', 'disable', '--realm', 'default', '--email', 'bob@corp.test']);
    expect(disabled.code, disabled.stderr).toBe(0);
    stub.account = upstreamUser('u-bob', 'bob@corp.test', true);
    const { done } = await viaCorp(new Browser());
    expect(done.res.status).toBe(401);
    expect(await done.res.text()).toContain('account_disabled');
  });

  it('a connection removed while its identity waits for proof: the sign-in still completes, nothing is linked', async () => {
    const created = await server.cli(
      [
        'connection', 'create', '--realm', 'default', '--id', 'corp-old', '--type', 'oauth2', '--name', 'Old Corp',
        '--authorization-endpoint', `${stub.url}/login/oauth/authorize`, '--token-endpoint', `${stub.url}/login/oauth/access_token`,
        '--userinfo-endpoint', `${stub.url}/api/v3/user`, '--claim', 'sub=uid', '--claim', 'email=mail', '--claim', 'email_verified=mail_verified',
        '--client-id', stub.clientId, '--client-secret-stdin',
      ],
      stub.clientSecret,
    );
    expect(created.code, created.stderr).toBe(0);
    stub.account = upstreamUser('u-gina', 'gina@corp.test', true);
    const browser = new Browser();
    const auth = await authorizationRequest(config, REDIRECT);
    const page = await browser.follow(auth.url, {}, REDIRECT);
    const href = /href="([^"]+\/connection\/corp-old)"/.exec(await page.res.text())![1]!;
    const proofPage = await browser.follow(new URL(href, page.url), {}, REDIRECT);
    expect(await proofPage.res.clone().text()).toContain('To connect your Old Corp account');
    expect((await server.cli(['connection', 'remove', '--realm', 'default', '--id', 'corp-old'])).code).toBe(0);
    const done = await skipPasskeyOffer(browser, await submitPassword(browser, proofPage, PASSWORD), REDIRECT);
    expect(done.url.href.startsWith(REDIRECT), `ended at ${done.url.href}`).toBe(true);
    expect((await exchangeCode(config, auth, done.url)).claims()!.sub).toBe(ids['gina@corp.test']);
    expect(await links(ids['gina@corp.test']!)).toEqual([]);
  });
});
