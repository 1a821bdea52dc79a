import type * as oidc from 'openid-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { LatchkeyEvent } from '../../src/events/bus.js';
import { authorizationRequest, discover, PASSWORD } from '../helpers/flows.js';
import { Browser } from '../helpers/http.js';
import { readPage, submit, type SignInPage } from '../helpers/passkey-flows.js';
import { startTestServer, type TestServer } from '../helpers/server.js';
import { codeForStep, stepOf } from '../helpers/totp.js';

const REDIRECT = 'http://app.example.test/callback';

// An account disabled between the password and the second factor is refused at the second factor:
// that refusal is a sign-in failure like the password step's account_disabled, and was not emitted.
describe('a second factor refused because the account was disabled meanwhile emits its failure', () => {
  let server: TestServer;
  let config: oidc.Configuration;
  let userId: string;
  let secret: string;
  const events: LatchkeyEvent[] = [];
  let off: () => void;

  beforeAll(async () => {
    server = await startTestServer();
    const c = await server.cli(['client', 'create', '--realm', 'default', '--name', 'App', '--redirect-uri', REDIRECT, '--first-party']);
    expect(c.code, c.stderr).toBe(0);
    config = await discover(server.issuer, c.json.client_id, { client_secret: c.json.client_secret });
    const u = await server.cli(['user', 'create', '--realm', 'default', '--email', 'ada@example.test', '--password-stdin'], `${PASSWORD}\n`);
    expect(u.code, u.stderr).toBe(0);
    userId = u.json.id;
    secret = (await server.services.totp.startEnrolment('default', userId, 'ada@example.test', 'Latchkey')).secret;
    expect(await server.services.totp.confirmEnrolment('default', userId, codeForStep(secret, stepOf(Date.now())))).toBe(true);
    off = server.services.events.on('*', (e) => void events.push(e));
  });
  afterAll(async () => {
    off?.();
    await server?.close();
  });

  async function atSecondFactor(): Promise<{ browser: Browser; page: SignInPage }> {
    await server.services.users.update('default', userId, { disabled: false });
    const browser = new Browser();
    const auth = await authorizationRequest(config, REDIRECT, { scope: 'openid' });
    const first = await readPage(await browser.follow(auth.url, {}, REDIRECT));
    const pw = await readPage(await submit(browser, first, '/identify', { email: 'ada@example.test' }, REDIRECT));
    const page = await readPage(await submit(browser, pw, '/login', { email: 'ada@example.test', password: PASSWORD }, REDIRECT));
    expect(page.html).toContain('/totp"');
    return { browser, page };
  }

  it('TOTP and recovery code: refused with account_disabled on the bus', async () => {
    for (const [action, method, fields] of [
      ['/totp"', 'totp', () => ({ code: codeForStep(secret, stepOf(Date.now()) + 1) })],
      ['/recovery', 'recovery-code', () => ({ code: 'abcd-efgh-ijkl' })],
    ] as const) {
      const { browser, page } = await atSecondFactor();
      await server.services.users.update('default', userId, { disabled: true });
      const before = events.length;
      const answer = await submit(browser, page, action, fields(), REDIRECT);
      expect(answer.url.href.startsWith(REDIRECT)).toBe(false);
      expect(events.slice(before).map((e) => [e.type, e.method, e.reason])).toEqual([['signin.failure', method, 'account_disabled']]);
    }
  });
});
