/**
 * Temporary passwords (Keycloak's "Temporary" toggle): an operator sets a password with `--temporary`
 * (or `temporary_password` in the admin API); the user's next sign-in with it asks for a new password
 * after every factor and before the application gets its code. Driven over HTTP through the real pages,
 * with an openid-client relying party and the ID token verified against the JWKS.
 */
import { jwtVerify } from 'jose';
import type * as oidc from 'openid-client';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { adminApi, adminToken } from '../helpers/admin-api.js';
import { describeEachDatabase } from '../helpers/databases.js';
import { authorizationRequest, discover, exchangeCode, PASSWORD, remoteJwks, skipPasskeyOffer, submitLogin } from '../helpers/flows.js';
import { Browser, parseForm } from '../helpers/http.js';
import { startTestServer, type TestServer } from '../helpers/server.js';

const REDIRECT = 'http://app.example.test/cb';
const TEMPORARY = 'handed-over-by-the-helpdesk-42';
const CHOSEN = 'my own password, chosen at last';

describeEachDatabase('temporary passwords', (kind) => {
  let server: TestServer;
  let config: oidc.Configuration;
  let n = 0;

  beforeAll(async () => {
    server = await startTestServer({ db: kind });
    const client = await server.cli(['client', 'create', '--realm', 'default', '--name', 'App', '--redirect-uri', REDIRECT, '--first-party']);
    expect(client.code, client.stderr).toBe(0);
    config = await discover(server.issuer, client.json.client_id, { client_secret: client.json.client_secret });
  });
  afterAll(async () => server?.close());

  const flagOf = async (email: string) => Boolean((await server.services.db('users').where({ realm_id: 'default', email }).first()).password_change_required);

  /** Signs in with email and password through the pages; returns the authorization and where the browser ended. */
  async function signInWith(email: string, password: string) {
    const browser = new Browser();
    const auth = await authorizationRequest(config, REDIRECT);
    const done = await submitLogin(browser, await browser.follow(auth.url, {}, REDIRECT), email, password, REDIRECT);
    return { browser, auth, done, html: done.url.href.startsWith(REDIRECT) ? '' : await done.res.text() };
  }

  /** Posts the "Choose a new password" form of `html`. */
  async function choose(browser: Browser, page: string, at: URL, password: string, again = password) {
    const form = parseForm(page, '/password-change');
    const next = await browser.follow(new URL(form.action, at), { form: { ...form.fields, new_password: password, new_password_again: again } }, REDIRECT);
    if (next.url.href.startsWith(REDIRECT)) return { step: next, html: '' };
    const html = await next.res.text();
    // the body read here is handed on unread (skipPasskeyOffer reads it again)
    return { step: { res: new Response(html, { status: next.res.status, headers: next.res.headers }), url: next.url }, html };
  }

  it('user create --temporary: the first sign-in asks for a new password before the application gets its code', async () => {
    const email = `temp${++n}@example.test`;
    const made = await server.cli(['user', 'create', '--realm', 'default', '--email', email, '--password-stdin', '--temporary'], `${TEMPORARY}\n`);
    expect(made.code, made.stderr).toBe(0);
    expect(made.json).toMatchObject({ email, password_change_required: true });

    const first = await signInWith(email, TEMPORARY);
    expect(first.done.url.href.startsWith(REDIRECT), 'no code before the new password').toBe(false);
    expect(first.html).toContain('Choose a new password');
    expect(first.html).toContain('Your password is a temporary one');

    // refusals: each says what was wrong, and the page stays (nothing written)
    for (const [password, again, message] of [
      ['', '', 'Enter the new password.'],
      [CHOSEN, `${CHOSEN}!`, 'The two passwords do not match.'],
      ['too short', 'too short', 'at least 15 characters'],
      [TEMPORARY, TEMPORARY, 'Choose a password different from the temporary one.'],
    ] as const) {
      const refused = await choose(first.browser, first.html, first.done.url, password, again);
      expect(refused.step.res.status, message).toBe(400);
      expect(refused.html, message).toContain(message);
      expect(await flagOf(email)).toBe(true);
    }

    const chosen = await choose(first.browser, first.html, first.done.url, CHOSEN);
    const done = await skipPasskeyOffer(first.browser, chosen.step, REDIRECT);
    expect(done.url.href.startsWith(REDIRECT), `ended at ${done.url.href}`).toBe(true);
    const tokens = await exchangeCode(config, first.auth, done.url);
    const { payload } = await jwtVerify(tokens.id_token!, remoteJwks(server.issuer), { issuer: server.issuer, audience: config.clientMetadata().client_id });
    expect(payload.sub).toBe(made.json.id);
    expect(payload.amr).toEqual(['pwd']);

    expect(await flagOf(email)).toBe(false);
    expect((await server.services.users.verifyPassword('default', email, TEMPORARY)).ok).toBe(false);
    // the next sign-in with the chosen password goes straight through
    const again = await signInWith(email, CHOSEN);
    expect(again.done.url.href.startsWith(REDIRECT), `ended at ${again.done.url.href}`).toBe(true);
    const events = await server.services.db('security_events').where({ realm_id: 'default', user_id: made.json.id, type: 'signin.temporary_password_replaced' });
    expect(events).toHaveLength(1);
  });

  it('set-password --temporary marks an existing password temporary; set-password without it and the admin API set and clear it', async () => {
    const email = `reset${++n}@example.test`;
    expect((await server.cli(['user', 'create', '--realm', 'default', '--email', email, '--password-stdin'], PASSWORD)).json).toMatchObject({ password_change_required: false });
    const set = await server.cli(['user', 'set-password', '--realm', 'default', '--email', email, '--password-stdin', '--temporary'], TEMPORARY);
    expect(set.code, set.stderr).toBe(0);
    expect(set.json).toMatchObject({ password_change_required: true });
    expect((await signInWith(email, TEMPORARY)).html).toContain('Choose a new password');
    // a password set without --temporary is the user's own again
    expect((await server.cli(['user', 'set-password', '--realm', 'default', '--email', email, '--password-stdin'], PASSWORD)).json).toMatchObject({ password_change_required: false });
    expect((await signInWith(email, PASSWORD)).done.url.href.startsWith(REDIRECT)).toBe(true);

    const { token } = await adminToken(server);
    const id = set.json.id;
    const alone = await adminApi(server, token, `/users/${id}`, { method: 'PATCH', body: { temporary_password: true } });
    expect(alone.status).toBe(400);
    expect(JSON.stringify(alone.body)).toContain('temporary_password');
    expect(await flagOf(email)).toBe(false);
    const patched = await adminApi(server, token, `/users/${id}`, { method: 'PATCH', body: { password: TEMPORARY, temporary_password: true } });
    expect(patched.status, JSON.stringify(patched.body)).toBe(200);
    expect(patched.body).toMatchObject({ password_change_required: true });
    const created = await adminApi(server, token, '/users', { method: 'POST', body: { email: `api${++n}@example.test`, password: TEMPORARY, temporary_password: true } });
    expect(created.status, JSON.stringify(created.body)).toBe(201);
    expect(created.body).toMatchObject({ password_change_required: true });
    const noPassword = await adminApi(server, token, '/users', { method: 'POST', body: { email: `api${++n}@example.test`, temporary_password: true } });
    expect(noPassword.status).toBe(400);
    expect(JSON.stringify(noPassword.body)).toContain('temporary_password');

    // the CLI refuses --temporary without a password to make temporary
    const bare = await server.cli(['user', 'create', '--realm', 'default', '--email', `cli${++n}@example.test`, '--temporary']);
    expect(bare.code).not.toBe(0);
    expect(bare.stderr).toContain('--temporary goes with --password-stdin');
  });

  it('the page is not a way around the sign-in: without the password step it is refused', async () => {
    const email = `skip${++n}@example.test`;
    expect((await server.cli(['user', 'create', '--realm', 'default', '--email', email, '--password-stdin', '--temporary'], TEMPORARY)).code).toBe(0);
    const first = await signInWith(email, TEMPORARY);
    expect(first.html).toContain('Choose a new password');
    // another browser's sign-in, still at the email step, posts the form with its own valid CSRF token
    const other = new Browser();
    const auth = await authorizationRequest(config, REDIRECT);
    const otherPage = await other.follow(auth.url, {}, REDIRECT);
    const identify = parseForm(await otherPage.res.text(), '/identify');
    const action = new URL(identify.action.replace(/\/identify$/, '/password-change'), otherPage.url);
    const res = await other.request(action, { method: 'POST', form: { csrf: identify.fields.csrf!, new_password: CHOSEN, new_password_again: CHOSEN } });
    expect(res.status).toBe(400);
    expect(await res.text()).toContain('Start by entering your email.');
    expect(await flagOf(email)).toBe(true);
  });
});
