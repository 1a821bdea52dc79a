import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type * as oidc from 'openid-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { LatchkeyEvent } from '../../src/events/bus.js';
import { SoftAuthenticator } from '../helpers/authenticator.js';
import { authorizationRequest, discover } from '../helpers/flows.js';
import { Browser } from '../helpers/http.js';
import { passkeyRegistration, readPage, submit } from '../helpers/passkey-flows.js';
import { startTestServer, type TestServer } from '../helpers/server.js';

const REDIRECT = 'http://app.example.test/cb';

// A sign-in succeeds when a factor is proven. A passwordless sign-up proves nothing until its passkey is
// made: typing an email (anyone's, including one of a half-finished sign-up) is not a sign-in.
describe('a passwordless sign-up emits its sign-in success when its passkey is registered, not when the email is typed', () => {
  let server: TestServer;
  let issuer: string;
  let config: oidc.Configuration;
  let dir: string;
  const events: LatchkeyEvent[] = [];
  let off: () => void;

  beforeAll(async () => {
    server = await startTestServer();
    dir = mkdtempSync(join(tmpdir(), 'latchkey-signup-events-'));
    writeFileSync(join(dir, 's.json'), JSON.stringify({ signup: true }));
    issuer = `http://open.localhost:${server.port}`;
    expect((await server.cli(['realm', 'create', '--id', 'open', '--issuer', issuer, '--settings', join(dir, 's.json')])).code).toBe(0);
    const client = await server.cli(['client', 'create', '--realm', 'open', '--name', 'App', '--redirect-uri', REDIRECT, '--first-party']);
    config = await discover(issuer, client.json.client_id, { client_secret: client.json.client_secret });
    off = server.services.events.on('*', (e) => void events.push(e));
  });
  afterAll(async () => {
    off?.();
    await server?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  async function startSignup(browser: Browser, email: string) {
    const auth = await authorizationRequest(config, REDIRECT);
    const login = await readPage(await browser.follow(auth.url, {}, REDIRECT));
    const form = await readPage(await browser.follow(new URL(`/interaction/${login.uid}/signup`, issuer), {}, REDIRECT));
    return readPage(await submit(browser, form, '/signup', { email }, REDIRECT));
  }

  it('no success for the typed email (first time, nor when someone resumes the half-finished sign-up); one, with the user, after the passkey', async () => {
    const offer = await startSignup(new Browser(), 'halfway@open.test');
    expect(offer.html).toContain('lk-passkey-create');
    // someone else types the same email while no passkey exists yet
    const resumedBrowser = new Browser();
    const resumed = await startSignup(resumedBrowser, 'halfway@open.test');
    expect(resumed.html).toContain('lk-passkey-create');
    expect(events.filter((e) => e.type === 'signin.success')).toEqual([]);

    const registered = await passkeyRegistration(resumedBrowser, resumed, new SoftAuthenticator(), issuer);
    expect(registered.status, JSON.stringify(registered.body)).toBe(200);
    const user = (await server.services.users.findByEmail('open', 'halfway@open.test'))!;
    expect(events.filter((e) => e.type === 'signin.success').map((e) => [e.method, e.reason, e.userId, e.realm])).toEqual([['passkey', 'signup', user.id, 'open']]);
  });
});
