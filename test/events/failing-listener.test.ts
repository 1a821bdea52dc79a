import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { LatchkeyEvent } from '../../src/events/bus.js';
import { authorizationRequest, discover, PASSWORD, signIn } from '../helpers/flows.js';
import { Browser, parseForm } from '../helpers/http.js';
import { startTestServer, type TestServer } from '../helpers/server.js';

const REDIRECT = 'http://app.example.test/callback';

// The bus is where the audit capability and operators' hooks listen: one of them failing must not
// turn a sign-in into an error page, nor keep the event from the other listeners.
describe('a sign-in event listener that throws cannot break a sign-in', () => {
  let server: TestServer;
  let clientId: string;
  let clientSecret: string;
  const seen: LatchkeyEvent[] = [];
  const offs: Array<() => void> = [];

  beforeAll(async () => {
    server = await startTestServer();
    const c = await server.cli(['client', 'create', '--realm', 'default', '--name', 'App', '--redirect-uri', REDIRECT, '--first-party']);
    expect(c.code, c.stderr).toBe(0);
    clientId = c.json.client_id;
    clientSecret = c.json.client_secret;
    const u = await server.cli(['user', 'create', '--realm', 'default', '--email', 'ada@example.test', '--password-stdin'], `${PASSWORD}\n`);
    expect(u.code, u.stderr).toBe(0);
    // a listener that throws, one whose promise rejects, and then one that records
    offs.push(server.services.events.on('*', () => {
      throw new Error('audit sink is down');
    }));
    offs.push(server.services.events.on('signin.failure', async () => {
      throw new Error('async audit sink is down');
    }));
    offs.push(server.services.events.on('*', (e) => void seen.push(e)));
  });
  afterAll(async () => {
    for (const off of offs) off();
    await server?.close();
  });

  it('a successful password sign-in still ends at the client with tokens, and later listeners get the event', async () => {
    const config = await discover(server.issuer, clientId, { client_secret: clientSecret });
    const tokens = await signIn(new Browser(), config, REDIRECT, 'ada@example.test', { scope: 'openid' });
    expect(tokens.id_token).toBeTruthy();
    expect(seen.filter((e) => e.type === 'signin.success').map((e) => e.method)).toEqual(['password']);
  });

  it('a wrong password still shows the sign-in page with its error (401), and the failure is still emitted', async () => {
    const config = await discover(server.issuer, clientId, { client_secret: clientSecret });
    const browser = new Browser();
    const auth = await authorizationRequest(config, REDIRECT, { scope: 'openid' });
    const first = await browser.follow(auth.url, {}, REDIRECT);
    const identify = parseForm(await first.res.text(), '/identify');
    const step = await browser.follow(new URL(identify.action, first.url), { form: { ...identify.fields, email: 'ada@example.test' } }, REDIRECT);
    const login = parseForm(await step.res.text(), '/login');
    const before = seen.length;
    const wrong = await browser.follow(new URL(login.action, step.url), { form: { ...login.fields, email: 'ada@example.test', password: 'quartz-meadow-lantern-fig-37' } }, REDIRECT);
    expect(wrong.res.status).toBe(401);
    expect(await wrong.res.text()).toContain('Incorrect email or password');
    expect(seen.slice(before).map((e) => [e.type, e.reason])).toEqual([['signin.failure', 'invalid_credentials']]);
    // the rejected promise of the async listener does not take the process down either
    await new Promise((r) => setTimeout(r, 50));
  });
});
