import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { decodeJwt } from 'jose';
import * as oidc from 'openid-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sessionsOfUser } from '../../src/accounts/device-activity.js';
import { listSecurityEvents } from '../../src/mfa/security-events.js';
import { alertText, csrfOf, flashText, signInToAccount, walk } from '../helpers/account-pages.js';
import { describeEachDatabase } from '../helpers/databases.js';
import { authorizationRequest, discover, exchangeCode, PASSWORD, postForm, submitLogin, until } from '../helpers/flows.js';
import { Browser, parseForm } from '../helpers/http.js';
import { startTestServer, type TestServer } from '../helpers/server.js';
import { BrowserWithAgent, USER_AGENTS } from '../helpers/user-agents.js';

const REDIRECT = 'http://app.example.test/callback';
const ADA = 'ada@example.test';
const BOB = 'bob@example.test';

/** An application's back-channel logout endpoint: keeps the logout tokens posted to it. */
async function logoutReceiver(): Promise<{ url: string; tokens: string[]; close(): Promise<void> }> {
  const tokens: string[] = [];
  const server: Server = createServer((req, res) => {
    let text = '';
    req.setEncoding('utf8');
    req.on('data', (chunk) => (text += chunk));
    req.on('end', () => {
      tokens.push(new URLSearchParams(text).get('logout_token') ?? '');
      res.writeHead(200).end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/logout`, tokens, close: () => new Promise((resolve) => server.close(() => resolve())) };
}

/** The account page's list items of one section (by its heading id), as text. */
function items(html: string, headingId: string): string[] {
  const section = new RegExp(`<section[^>]*aria-labelledby="${headingId}"[^>]*>([\\s\\S]*?)</section>`).exec(html)?.[1] ?? '';
  return [...section.matchAll(/<li class="lk-item lk-(?:device|app)">([\s\S]*?)<\/li>/g)].map((m) => m[1]!.replace(/<[^>]+>/g, ' ').replace(/\s+/g, ' ').trim());
}

/**
 * The account page's "Signed-in devices" and "Apps with access" (Keycloak's "Device activity" and
 * "Applications"): every live session of the user with the browser and system it signed in from, a sign-out
 * of one session (its grants revoked, its applications told by back-channel logout), and the applications
 * granted access, each of which can lose it.
 */
describeEachDatabase('signed-in devices and apps with access on the account page', (kind) => {
  let server: TestServer;
  let receiver: Awaited<ReturnType<typeof logoutReceiver>>;
  let notes: { id: string; secret: string };
  let partner: { id: string; secret: string };

  beforeAll(async () => {
    receiver = await logoutReceiver();
    // the back-channel logout receiver listens on 127.0.0.1
    server = await startTestServer({ db: kind, overrides: { outbound: { allowPrivateNetworks: true } } });
    const n = await server.services.clients.create({
      realmId: 'default',
      name: 'Notes',
      redirectUris: [REDIRECT],
      firstParty: true,
      grants: ['authorization_code', 'refresh_token'],
      backchannelLogoutUri: receiver.url,
    });
    notes = { id: n.client_id, secret: n.client_secret! };
    const p = await server.services.clients.create({ realmId: 'default', name: 'Partner App', redirectUris: [REDIRECT], grants: ['authorization_code', 'refresh_token'] });
    partner = { id: p.client_id, secret: p.client_secret! };
    for (const email of [ADA, BOB]) await server.services.users.create({ realmId: 'default', email, password: PASSWORD });
  });
  afterAll(async () => {
    await server?.close();
    await receiver?.close();
  });

  const configOf = (c: { id: string; secret: string }) => discover(server.issuer, c.id, {}, oidc.ClientSecretBasic(c.secret));
  const refresh = (c: { id: string; secret: string }, token: string) => postForm(`${server.issuer}/token`, { grant_type: 'refresh_token', refresh_token: token }, c);
  const ada = async () => (await server.services.users.findByEmail('default', ADA))!;

  /** An authorization by the browser's session (no sign-in page), exchanged for tokens. */
  async function singleSignOn(browser: Browser, c: { id: string; secret: string }, params: Record<string, string> = {}) {
    const config = await configOf(c);
    const auth = await authorizationRequest(config, REDIRECT, { scope: 'openid offline_access', ...params });
    const back = await browser.follow(auth.url, {}, REDIRECT);
    expect(back.url.href.startsWith(REDIRECT), back.url.href).toBe(true);
    return exchangeCode(config, auth, back.url);
  }

  it('lists both sessions of the user with their browser and system, marks this one, and signs the other out', async () => {
    const laptop = new BrowserWithAgent(USER_AGENTS.firefoxLinux);
    const phone = new BrowserWithAgent(USER_AGENTS.safariIphone);
    await signInToAccount(phone, server.issuer, { email: ADA, password: PASSWORD });
    // an application signed in with the phone's session, holding a refresh token
    const notesTokens = await singleSignOn(phone, notes);
    expect(notesTokens.refresh_token).toBeTruthy();
    const phoneSid = decodeJwt(notesTokens.id_token!).sid;
    const account = await signInToAccount(laptop, server.issuer, { email: ADA, password: PASSWORD });

    const devices = items(account.html, 'lk-devices-heading');
    expect(devices).toHaveLength(2);
    const host = new URL(server.issuer).host;
    // this device first, marked; its applications: the account page only
    expect(devices[0]).toMatch(/^Firefox 133 on Linux This device Domain \S+ Signed in .+ UTC Last used .+ UTC Apps Your account$/);
    expect(devices[0]).toContain(`Domain ${host}`);
    expect(devices[1]).toMatch(/^Safari 17 on iOS 17 Domain \S+ Signed in .+ UTC Last used .+ UTC Apps (Your account, Notes|Notes, Your account) Sign out$/);
    // one "Sign out" button: the other device's
    const forms = [...account.html.matchAll(/action="(\/account\/sessions\/[^"]+\/sign-out)"/g)].map((m) => m[1]!);
    expect(forms).toHaveLength(1);
    expect(account.html).toContain('aria-label="Sign out Safari 17 on iOS 17, last used');
    const csrf = csrfOf(account.html);

    // another user's session, an unknown one, this very session, a stale form: refused, nothing ends
    const bobBrowser = new Browser();
    await signInToAccount(bobBrowser, server.issuer, { email: BOB, password: PASSWORD });
    const bob = (await server.services.users.findByEmail('default', BOB))!;
    const [bobSession] = await sessionsOfUser(server.services, 'default', bob.id);
    const own = await sessionsOfUser(server.services, 'default', (await ada()).id);
    const laptopSession = own.find((s) => s.browser === 'Firefox 133')!;
    for (const [id, status, text] of [
      [bobSession!.id, 404, 'That device is not signed in to your account'],
      ['no-such-session', 404, 'That device is not signed in to your account'],
      [laptopSession.id, 400, 'This is the device you are using now'],
    ] as const) {
      const res = await laptop.request(`${server.issuer}/account/sessions/${encodeURIComponent(id)}/sign-out`, { form: { csrf } });
      expect(res.status).toBe(status);
      expect(alertText(await res.text())).toContain(text);
    }
    const stale = await laptop.request(`${server.issuer}${forms[0]}`, { form: { csrf: 'an-old-token' } });
    expect(stale.status).toBe(403);
    expect(await stale.text()).toContain('This form has expired');
    expect(await sessionsOfUser(server.services, 'default', bob.id)).toHaveLength(1);
    expect((await walk(bobBrowser, `${server.issuer}/account`)).url.pathname).toBe('/account');
    expect(await sessionsOfUser(server.services, 'default', (await ada()).id)).toHaveLength(2);
    // the application's refresh token still works (rotated: the new one is the live one)
    const rotated = await refresh(notes, notesTokens.refresh_token!);
    expect(rotated.status).toBe(200);

    // the phone's "Sign out"
    const before = receiver.tokens.length;
    const out = await laptop.request(`${server.issuer}${forms[0]}`, { form: { csrf } });
    expect(out.status).toBe(303);
    const after = await walk(laptop, new URL(out.headers.get('location')!, server.issuer));
    expect(flashText(after.html)).toContain('That device is signed out');
    expect(items(after.html, 'lk-devices-heading')).toEqual([expect.stringMatching(/^Firefox 133 on Linux This device /)]);

    // the phone's account page asks it to sign in; the refresh token its application held is refused
    expect((await walk(phone, `${server.issuer}/account`)).url.pathname).toMatch(/^\/interaction\//);
    const refused = await refresh(notes, rotated.body.refresh_token);
    expect(refused.status).toBe(400);
    expect(refused.body.error).toBe('invalid_grant');
    // the application was told, with the phone session's sid
    const told = await until(async () => (receiver.tokens.length > before ? receiver.tokens.slice(before) : undefined), 'a logout token');
    expect(told.map((t) => decodeJwt(t))).toEqual([expect.objectContaining({ aud: notes.id, sid: phoneSid, sub: (await ada()).id })]);
    // the laptop is still signed in; Bob too
    expect((await walk(laptop, `${server.issuer}/account`)).url.pathname).toBe('/account');
    expect((await walk(bobBrowser, `${server.issuer}/account`)).url.pathname).toBe('/account');

    const events = await listSecurityEvents(server.services.db, 'default', (await ada()).id);
    const ended = events.filter((e) => e.type === 'account.session_ended');
    expect(ended).toHaveLength(1);
  });

  it('lists a third-party app granted offline access; "Remove access" ends its refresh token and the next sign-in asks for consent again', async () => {
    const browser = new BrowserWithAgent(USER_AGENTS.edgeWindows);
    const config = await configOf(partner);
    // the consent page, allowed (offline access needs prompt=consent for a third-party client)
    const auth = await authorizationRequest(config, REDIRECT, { scope: 'openid email offline_access', prompt: 'consent' });
    const login = await browser.follow(auth.url, {}, REDIRECT);
    const consent = await submitLogin(browser, login, ADA, PASSWORD, REDIRECT);
    const consentHtml = await consent.res.text();
    expect(consentHtml).toContain('Partner App');
    const allow = parseForm(consentHtml, '/confirm');
    const done = await browser.follow(new URL(allow.action, consent.url), { form: allow.fields }, REDIRECT);
    const tokens = await exchangeCode(config, auth, done.url);
    expect(tokens.refresh_token).toBeTruthy();

    const account = await walk(browser, `${server.issuer}/account`);
    expect(account.url.pathname).toBe('/account');
    const apps = items(account.html, 'lk-apps-heading');
    const row = apps.find((a) => a.startsWith('Partner App'));
    expect(row).toMatch(/^Partner App Access openid, email, offline_access Offline access Yes: it can use your account while you are away First granted .+ UTC Remove access$/);
    // the account page itself is not an app to remove
    expect(apps.some((a) => a.startsWith('Your account'))).toBe(false);
    const remove = parseForm(account.html, `/account/apps/${partner.id}/remove`);
    expect(remove.fields.csrf).toBe(csrfOf(account.html));

    // an app without access, a stale form: refused, nothing changes
    const unknown = await browser.request(`${server.issuer}/account/apps/not-a-client/remove`, { form: remove.fields });
    expect(unknown.status).toBe(404);
    expect(alertText(await unknown.text())).toContain('That app has no access to your account');
    const stale = await browser.request(new URL(remove.action, server.issuer), { form: { csrf: 'stale' } });
    expect(stale.status).toBe(403);
    expect(items((await walk(browser, `${server.issuer}/account`)).html, 'lk-apps-heading').some((a) => a.startsWith('Partner App'))).toBe(true);

    const out = await browser.request(new URL(remove.action, server.issuer), { form: remove.fields });
    expect(out.status).toBe(303);
    const after = await walk(browser, new URL(out.headers.get('location')!, server.issuer));
    expect(flashText(after.html)).toContain('Access removed');
    expect(items(after.html, 'lk-apps-heading').some((a) => a.startsWith('Partner App'))).toBe(false);
    // this browser stays signed in
    expect(after.url.pathname).toBe('/account');

    const refused = await refresh(partner, tokens.refresh_token!);
    expect(refused.status).toBe(400);
    expect(refused.body.error).toBe('invalid_grant');
    // the next authorization (no prompt=consent, which used to go straight back) shows the consent page
    const again = await authorizationRequest(config, REDIRECT, { scope: 'openid email' });
    const page = await browser.follow(again.url, {}, REDIRECT);
    expect(page.url.pathname).toMatch(/^\/interaction\//);
    const html = await page.res.text();
    expect(html).toContain('Partner App');
    expect(html).toContain('/confirm');

    const events = await listSecurityEvents(server.services.db, 'default', (await ada()).id);
    expect(events.filter((e) => e.type === 'account.app_access_removed').map((e) => e.detail)).toEqual([expect.objectContaining({ clientId: partner.id, grantsRevoked: 1 })]);
  });
});
