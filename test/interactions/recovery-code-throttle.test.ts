import type * as oidc from 'openid-client';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { describeEachDatabase } from '../helpers/databases.js';
import { authorizationRequest, discover } from '../helpers/flows.js';
import { Browser, parseForm } from '../helpers/http.js';
import { readPage, submit, type SignInPage } from '../helpers/passkey-flows.js';
import { startTestServer, type TestServer } from '../helpers/server.js';

const REDIRECT = 'http://app.example.test/cb';
const LIMIT = 5;
const PARALLEL = 30;
// well-formed (so it is looked up) and never issued: the alphabet has no 0, 1, l or o, so "aaaa" codes are
// as likely as any, but a generation's ten codes are not these
const wrongCode = (i: number) => `zzzz-zzzz-${'abcdefghijkmnpqrstuvwxyz23456789'[i % 32]!.repeat(4)}`;

/**
 * The recovery-code check at sign-in read the lock, then tried the code, then counted the failure: parallel
 * wrong codes all read "not locked" before any was counted, so a burst had every one of its guesses
 * evaluated, whatever the limit. Each attempt is now counted, under the lock of its throttle row, before
 * the code is tried.
 */
describeEachDatabase('recovery codes at sign-in: parallel wrong guesses', (kind) => {
  let server: TestServer;
  let config: oidc.Configuration;

  beforeAll(async () => {
    server = await startTestServer({ db: kind, overrides: { bruteForce: { maxFailuresPerAccount: LIMIT, waitIncrementSeconds: 60, quickLoginCheckMilliseconds: 0 } } });
    const client = await server.cli(['client', 'create', '--realm', 'default', '--name', 'Notes', '--redirect-uri', REDIRECT, '--first-party']);
    expect(client.code, client.stderr).toBe(0);
    config = await discover(server.issuer, client.json.client_id, { client_secret: client.json.client_secret });
  });
  afterAll(async () => server?.close());

  /** A passkey-only user (no password: a recovery code is a first factor) with ten fresh codes. */
  async function passkeyOnlyUser(email: string): Promise<{ id: string; codes: string[] }> {
    const { users, recovery } = server.services;
    await users.create({ realmId: 'default', email });
    const user = (await users.findByEmail('default', email))!;
    return { id: user.id, codes: await recovery.generate('default', user.id) };
  }

  /** The recovery-code page of a new sign-in for `email`. */
  async function recoveryPage(email: string): Promise<{ browser: Browser; page: SignInPage }> {
    const browser = new Browser();
    const auth = await authorizationRequest(config, REDIRECT);
    const first = await readPage(await browser.follow(auth.url, {}, REDIRECT));
    const passkeyPage = await readPage(await submit(browser, first, '/identify', { email }, REDIRECT));
    const page = await readPage(await browser.follow(new URL(`/interaction/${passkeyPage.uid}?method=recovery`, server.issuer), {}, REDIRECT));
    expect(page.html).toContain('name="code"');
    return { browser, page };
  }

  async function post(browser: Browser, page: SignInPage, code: string): Promise<{ status: number; html: string }> {
    const form = parseForm(page.html, '/recovery');
    const res = await browser.request(new URL(form.action, page.url), { form: { ...form.fields, code } });
    return { status: res.status, html: await res.text() };
  }

  it(`${PARALLEL} wrong codes at once: only ${LIMIT} are tried, the rest refused with 429; the lock then holds for a right code`, async () => {
    const user = await passkeyOnlyUser('burst@example.test');
    const { browser, page } = await recoveryPage('burst@example.test');

    const answers = await Promise.all(Array.from({ length: PARALLEL }, (_, i) => post(browser, page, wrongCode(i))));
    const tried = answers.filter((a) => a.status === 401);
    const refused = answers.filter((a) => a.status === 429);
    expect(tried.length + refused.length, `statuses: ${answers.map((a) => a.status).join(' ')}`).toBe(PARALLEL);
    expect(tried.length, `statuses: ${answers.map((a) => a.status).join(' ')}`).toBe(LIMIT);
    for (const a of tried) expect(a.html).toContain('That recovery code is not valid or was already used.');
    for (const a of refused) expect(a.html).toContain('Too many attempts. Try again later.');

    // locked: a right code is refused as well, and is not used up by the refusal
    const right = await post(browser, page, user.codes[0]!);
    expect(right.status).toBe(429);
    expect(await server.services.recovery.remaining('default', user.id)).toBe(10);
  });

  it('wrong codes below the limit, then a right one: signed in, and the count starts again', async () => {
    const addressCount = async () => Number((await server.services.db('login_throttle').where({ realm_id: 'default', key: 'ip:127.0.0.1' }).first())?.failures ?? 0);
    const before = await addressCount();
    const user = await passkeyOnlyUser('careful@example.test');
    const first = await recoveryPage('careful@example.test');
    const wrong = await Promise.all(Array.from({ length: LIMIT - 1 }, (_, i) => post(first.browser, first.page, wrongCode(i))));
    expect(wrong.map((a) => a.status)).toEqual(Array(LIMIT - 1).fill(401));
    const right = await post(first.browser, first.page, user.codes[0]!);
    expect(right.status).toBe(303);
    expect(await server.services.recovery.remaining('default', user.id)).toBe(9);

    // the success forgot the account's failures: a new sign-in has the whole allowance again
    const second = await recoveryPage('careful@example.test');
    const again = await Promise.all(Array.from({ length: LIMIT - 1 }, (_, i) => post(second.browser, second.page, wrongCode(i))));
    expect(again.map((a) => a.status)).toEqual(Array(LIMIT - 1).fill(401));
    expect((await post(second.browser, second.page, user.codes[1]!)).status).toBe(303);

    // the address counts the wrong codes only: each right one was counted before it was tried, then taken back
    expect(await addressCount()).toBe(before + 2 * (LIMIT - 1));
  });
});
