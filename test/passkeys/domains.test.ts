import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SoftAuthenticator } from '../helpers/authenticator.js';
import { authorizationRequest, discover, PASSWORD } from '../helpers/flows.js';
import { Browser, testFetch } from '../helpers/http.js';
import { passkeyAssertion, passkeyRegistration, postJson, readPage, submit } from '../helpers/passkey-flows.js';
import { startTestServer, type TestServer } from '../helpers/server.js';

const REDIRECT = 'http://app.example.test/cb';

describe('passkeys across a realm\'s domains', () => {
  let server: TestServer;
  const clients: Record<string, string> = {};

  async function realm(id: string, hosts: string[], settings: Record<string, unknown>) {
    const dir = mkdtempSync(join(tmpdir(), 'latchkey-ror-'));
    writeFileSync(join(dir, 's.json'), JSON.stringify(settings));
    const issuers = hosts.map((h) => `http://${h}.localhost:${server.port}`);
    const created = await server.cli(['realm', 'create', '--id', id, ...issuers.flatMap((i) => ['--issuer', i]), '--settings', join(dir, 's.json')]);
    expect(created.code, created.stderr).toBe(0);
    const client = await server.cli(['client', 'create', '--realm', id, '--name', 'App', '--redirect-uri', REDIRECT, '--first-party', '--public']);
    clients[id] = client.json.client_id;
    expect((await server.cli(['user', 'create', '--realm', id, '--email', `ada@${id}.test`, '--password-stdin'], PASSWORD)).code).toBe(0);
    return issuers;
  }

  async function signInPage(issuer: string, realmId: string, browser: Browser) {
    const config = await discover(issuer, clients[realmId]!);
    const auth = await authorizationRequest(config, REDIRECT);
    return readPage(await browser.follow(auth.url, {}, REDIRECT));
  }

  async function enrolOn(issuer: string, realmId: string, authenticator: SoftAuthenticator, capabilities: { relatedOrigins?: boolean } = {}) {
    const browser = new Browser();
    const page = await signInPage(issuer, realmId, browser);
    const pw = await readPage(await submit(browser, page, '/identify', { email: `ada@${realmId}.test` }, REDIRECT));
    const offer = await readPage(await submit(browser, pw, '/login', { email: `ada@${realmId}.test`, password: PASSWORD }, REDIRECT));
    const options = await postJson(browser, offer, '/passkey/register/options', { ...capabilities });
    const registered = await passkeyRegistration(browser, offer, authenticator, issuer, undefined, capabilities);
    expect(registered.status, JSON.stringify(registered.body)).toBe(200);
    return options;
  }

  beforeAll(async () => {
    server = await startTestServer();
  });
  afterAll(async () => server?.close());

  it('without related origins: the RP ID is the domain the user is on, and a passkey stays on its domain', async () => {
    const [a, b] = await realm('split', ['a', 'b'], {});
    const authenticator = new SoftAuthenticator();
    await enrolOn(a!, 'split', authenticator);
    const [row] = await server.services.db('webauthn_credentials').join('users', 'users.id', 'webauthn_credentials.user_id').where('users.email', 'ada@split.test').select('rp_id');
    expect(row.rp_id).toBe('a.localhost');

    const browserA = new Browser();
    const pageA = await signInPage(a!, 'split', browserA);
    expect((await passkeyAssertion(browserA, pageA, authenticator, 'button')).status).toBe(200);

    const browserB = new Browser();
    const pageB = await signInPage(b!, 'split', browserB);
    const options = await postJson(browserB, pageB, '/passkey/options', { mode: 'button' });
    expect(options.body.rpId).toBe('b.localhost');
    await expect(authenticator.getAssertion(options.body, b!)).rejects.toThrow(); // nothing for b.localhost
    // an assertion made for a.localhost is refused on b
    const forged = await authenticator.getAssertion({ ...options.body, rpId: 'a.localhost' }, a!);
    const res = await postJson(browserB, pageB, '/passkey/verify', { response: forged });
    expect(res.status).toBe(400);
    expect(await testFetch(`${a}/.well-known/webauthn`).then((r) => r.status)).toBe(404);
  });

  it('with related origins: one passkey works on every domain of the realm', async () => {
    const [primary, other] = await realm('shared', ['c', 'd'], { passkeys: { relatedOrigins: true } });
    const wellKnown = await testFetch(`${primary}/.well-known/webauthn`);
    expect(wellKnown.status).toBe(200);
    expect(await wellKnown.json()).toEqual({ origins: [primary, other] });
    expect((await testFetch(`${other}/.well-known/webauthn`)).status).toBe(404);

    // a browser supporting Related Origin Requests enrols on the secondary domain with the primary RP ID ...
    const authenticator = new SoftAuthenticator();
    const registration = await enrolOn(other!, 'shared', authenticator, { relatedOrigins: true });
    expect(registration.body.rp.id).toBe('c.localhost');
    // ... and the one passkey signs in on every domain
    for (const issuer of [primary!, other!]) {
      const browser = new Browser();
      const page = await signInPage(issuer, 'shared', browser);
      const result = await passkeyAssertion(browser, page, authenticator, 'button', issuer, { relatedOrigins: true });
      expect(result.status, `${issuer}: ${JSON.stringify(result.body)}`).toBe(200);
      // the sign-in was resumed within the verify request: the answer points at the client, with this domain as iss
      const back = new URL(result.body.redirect);
      expect(back.href.startsWith(REDIRECT), back.href).toBe(true);
      expect(back.searchParams.get('code')).toBeTruthy();
      expect(back.searchParams.get('iss')).toBe(issuer);
    }
    // a browser without it falls back to a per-domain passkey on the secondary domain
    const browser = new Browser();
    const page = await signInPage(other!, 'shared', browser);
    const options = await postJson(browser, page, '/passkey/options', { mode: 'button', relatedOrigins: false });
    expect(options.body.rpId).toBe('d.localhost');
    await expect(authenticator.getAssertion(options.body, other!)).rejects.toThrow();
  });
  it('with related origins: a passkey added on the account page of another domain works on every domain too', async () => {
    const [primary, other] = await realm('shared-account', ['e', 'f'], { passkeys: { relatedOrigins: true } });
    const email = 'ada@shared-account.test';
    // the account page of the secondary domain: email, password, "Not now" to the passkey offer
    const browser = new Browser();
    const never = 'never:';
    const start = await readPage(await browser.follow(`${other}/account`, {}, never));
    const pw = await readPage(await submit(browser, start, '/identify', { email }, never));
    const offer = await readPage(await submit(browser, pw, '/login', { email, password: PASSWORD }, never));
    const account = await readPage(await submit(browser, offer, '/offer/skip', {}, never));
    expect(account.url.pathname).toBe('/account');
    const post = async (path: string, body: unknown) => {
      const res = await browser.request(new URL(path, other), { method: 'POST', json: body, headers: { 'x-csrf-token': account.csrf } });
      return { status: res.status, body: await res.json() };
    };

    // the passkey script tells the server the browser supports Related Origin Requests, as on the sign-in pages
    const authenticator = new SoftAuthenticator();
    const options = await post('/account/passkeys/options', { relatedOrigins: true });
    expect(options.status, JSON.stringify(options.body)).toBe(200);
    expect(options.body.rp.id).toBe('e.localhost');
    const verified = await post('/account/passkeys/verify', { response: await authenticator.createCredential(options.body, other!), name: 'Phone' });
    expect(verified.status, JSON.stringify(verified.body)).toBe(200);
    const [row] = await server.services.db('webauthn_credentials').join('users', 'users.id', 'webauthn_credentials.user_id').where('users.email', email).select('webauthn_credentials.rp_id');
    expect(row.rp_id).toBe('e.localhost');
    for (const issuer of [primary!, other!]) {
      const b = new Browser();
      const page = await signInPage(issuer, 'shared-account', b);
      const result = await passkeyAssertion(b, page, authenticator, 'button', issuer, { relatedOrigins: true });
      expect(result.status, `${issuer}: ${JSON.stringify(result.body)}`).toBe(200);
    }

    // a browser without it keeps a passkey of the secondary domain, as before
    const local = await post('/account/passkeys/options', { relatedOrigins: false });
    expect(local.body.rp.id).toBe('f.localhost');
    const second = new SoftAuthenticator();
    const kept = await post('/account/passkeys/verify', { response: await second.createCredential(local.body, other!) });
    expect(kept.status, JSON.stringify(kept.body)).toBe(200);
  });
});
