import * as oidc from 'openid-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { LatchkeyEvent } from '../../src/events/bus.js';
import { authorizationRequest, discover, exchangeCode, PASSWORD, signIn } from '../helpers/flows.js';
import { Browser } from '../helpers/http.js';
import { startTestServer, type TestServer } from '../helpers/server.js';

const REDIRECT = 'http://app.example.test/callback';

// Single sign-on: a second application (or the same one again) signed in by the browser's session,
// without any sign-in page, is a sign-in outcome too (method `session`, declared on SignInEvent and
// never emitted before).
describe('a sign-in by the existing session emits signin.success with method session', () => {
  let server: TestServer;
  let web: oidc.Configuration;
  let other: oidc.Configuration;
  let otherId: string;
  let userId: string;
  const events: LatchkeyEvent[] = [];
  let off: () => void;

  beforeAll(async () => {
    server = await startTestServer();
    const a = await server.cli(['client', 'create', '--realm', 'default', '--name', 'Web', '--redirect-uri', REDIRECT, '--first-party']);
    const b = await server.cli(['client', 'create', '--realm', 'default', '--name', 'Reports', '--redirect-uri', REDIRECT, '--first-party']);
    expect(a.code, a.stderr).toBe(0);
    expect(b.code, b.stderr).toBe(0);
    otherId = b.json.client_id;
    web = await discover(server.issuer, a.json.client_id, { client_secret: a.json.client_secret });
    other = await discover(server.issuer, otherId, { client_secret: b.json.client_secret });
    const u = await server.cli(['user', 'create', '--realm', 'default', '--email', 'ada@example.test', '--password-stdin'], `${PASSWORD}\n`);
    expect(u.code, u.stderr).toBe(0);
    userId = u.json.id;
    off = server.services.events.on('*', (e) => void events.push(e));
  });
  afterAll(async () => {
    off?.();
    await server?.close();
  });

  it('the password sign-in is a password event only; the next application signed in by the session is a session event', async () => {
    const browser = new Browser();
    await signIn(browser, web, REDIRECT, 'ada@example.test', { scope: 'openid' });
    expect(events.map((e) => [e.type, e.method])).toEqual([['signin.success', 'password']]);

    for (const params of [{ scope: 'openid' }, { scope: 'openid', prompt: 'none' }] as Array<Record<string, string>>) {
      const auth = await authorizationRequest(other, REDIRECT, params);
      const done = await browser.follow(auth.url, {}, REDIRECT);
      expect(done.url.searchParams.get('code'), done.url.href).toBeTruthy();
      expect((await exchangeCode(other, auth, done.url)).id_token).toBeTruthy();
    }
    expect(events.slice(1).map((e) => [e.type, e.method, e.userId, e.clientId, e.realm])).toEqual([
      ['signin.success', 'session', userId, otherId, 'default'],
      ['signin.success', 'session', userId, otherId, 'default'],
    ]);
    for (const e of events.slice(1)) expect(e.address).toBeTruthy();
  });
});
