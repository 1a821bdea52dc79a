import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { LatchkeyEvent } from '../../src/events/bus.js';
import { PASSWORD, postForm, submitLogin } from '../helpers/flows.js';
import { Browser, parseForm } from '../helpers/http.js';
import { startTestServer, type TestServer } from '../helpers/server.js';

const DEVICE_GRANT = 'urn:ietf:params:oauth:grant-type:device_code';
const LIMIT = 3;
const USER_AGENT = 'DeviceEventsTest/1.0';

// The device flow is a way of signing in (RFC 8628): what happens to the device is on the bus, as the
// other methods' outcomes are, without the user code.
describe('device flow sign-in events', () => {
  let server: TestServer;
  let tv: string;
  let userId: string;
  const events: LatchkeyEvent[] = [];
  let off: () => void;

  beforeAll(async () => {
    server = await startTestServer({ overrides: { bruteForce: { maxFailuresPerAddress: LIMIT, waitIncrementSeconds: 60 } } });
    const created = await server.cli(['client', 'create', '--realm', 'default', '--name', 'TV', '--public', '--first-party', '--grant', DEVICE_GRANT]);
    expect(created.code, created.stderr).toBe(0);
    tv = created.json.client_id;
    const user = await server.cli(['user', 'create', '--realm', 'default', '--email', 'ada@example.test', '--password-stdin'], `${PASSWORD}\n`);
    expect(user.code, user.stderr).toBe(0);
    userId = user.json.id;
    off = server.services.events.on('*', (e) => void events.push(e));
  });
  afterAll(async () => {
    off?.();
    await server?.close();
  });

  const deviceEvents = () => events.filter((e) => e.method === 'device-code');

  async function submitCode(browser: Browser, userCode: string) {
    const page = await browser.request(`${server.issuer}/device`, { headers: { 'user-agent': USER_AGENT } });
    const form = parseForm(await page.text());
    return browser.follow(new URL(form.action, `${server.issuer}/device`), { form: { ...form.fields, user_code: userCode } });
  }

  it('a device signed in: success with the user and the device client; the person\'s password step has its own event', async () => {
    const started = await postForm(`${server.issuer}/device/auth`, { client_id: tv, scope: 'openid' });
    expect(started.status, JSON.stringify(started.body)).toBe(200);
    const browser = new Browser();
    const confirm = await submitCode(browser, started.body.user_code);
    const confirmForm = parseForm(await confirm.res.text(), '/device');
    expect(confirmForm.fields.confirm).toBe('yes');
    const login = await browser.follow(new URL(confirmForm.action, confirm.url), { form: confirmForm.fields });
    const done = await submitLogin(browser, login, 'ada@example.test', PASSWORD, 'http://never.test');
    expect(await done.res.text()).toContain('Your device is signed in');

    expect(deviceEvents().map((e) => [e.type, e.userId, e.clientId, e.realm])).toEqual([['signin.success', userId, tv, 'default']]);
    expect(events.filter((e) => e.method === 'password').map((e) => [e.type, e.clientId])).toEqual([['signin.success', tv]]);
    for (const e of events) expect(JSON.stringify(e)).not.toContain(started.body.user_code);
  });

  it('wrong user codes are failures (invalid_user_code), then the locked address is one (throttled); never the code', async () => {
    const before = deviceEvents().length;
    const browser = new Browser();
    for (let i = 0; i < LIMIT; i++) {
      const wrong = await submitCode(browser, 'BCDF-GHJK');
      expect(await wrong.res.text()).toContain('The code you entered is incorrect');
    }
    const locked = await submitCode(browser, 'BCDF-GHJK');
    expect(locked.res.status).toBe(429);
    const mine = deviceEvents().slice(before);
    expect(mine.map((e) => [e.type, e.reason, e.userId])).toEqual([
      ...Array.from({ length: LIMIT }, () => ['signin.failure', 'invalid_user_code', undefined]),
      ['signin.failure', 'throttled', undefined],
    ]);
    for (const e of mine) {
      expect(e.address).toBeTruthy();
      expect(JSON.stringify(e)).not.toContain('BCDF');
    }
  });
});
