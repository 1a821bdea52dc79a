import type * as oidc from 'openid-client';
import { expect } from 'vitest';
import type { SoftAuthenticator } from './authenticator.js';
import { authorizationRequest, PASSWORD } from './flows.js';
import { Browser, parseForm } from './http.js';
import type { TestServer } from './server.js';

/** A sign-in page as the passkey script sees it: where it is, its interaction and its CSRF token. */
export interface SignInPage {
  url: URL;
  html: string;
  status: number;
  uid: string;
  csrf: string;
}

export async function readPage(step: { res: Response; url: URL }): Promise<SignInPage> {
  const html = await step.res.text();
  const uid = /\/interaction\/([^/"?]+)/.exec(html)?.[1] ?? /\/interaction\/([^/?]+)/.exec(step.url.pathname)?.[1] ?? '';
  const csrf = /name="csrf" value="([^"]+)"/.exec(html)?.[1] ?? /data-lk-csrf="([^"]+)"/.exec(html)?.[1] ?? '';
  return { url: step.url, html, status: step.res.status, uid, csrf };
}

/** POSTs JSON the way views/assets/passkeys.js does (CSRF header, same cookies). */
export async function postJson(browser: Browser, page: SignInPage, path: string, body: unknown, csrf = page.csrf): Promise<{ status: number; body: any }> {
  const res = await browser.request(new URL(`/interaction/${page.uid}${path}`, page.url), { method: 'POST', json: body, headers: { 'x-csrf-token': csrf } });
  const text = await res.text();
  let parsed: any = text;
  try {
    parsed = JSON.parse(text);
  } catch {
    /* not JSON */
  }
  return { status: res.status, body: parsed };
}

/** Posts one of the page's forms (found by a fragment of its action) and follows redirects. */
export async function submit(browser: Browser, page: SignInPage, actionContains: string, fields: Record<string, string>, stopAt: string) {
  const form = parseForm(page.html, actionContains);
  // a trailing quote in `actionContains` pins the end of the action ('/totp"' is not '/totp/enrol')
  expect(form.action, `no form posting to ${actionContains} on ${page.url.href}`).toContain(actionContains.replace(/"$/, ''));
  return browser.follow(new URL(form.action, page.url), { form: { ...form.fields, ...fields } }, stopAt);
}

/** Runs a passkey sign-in ceremony on a page: options, the authenticator's assertion, verification. */
export async function passkeyAssertion(
  browser: Browser,
  page: SignInPage,
  authenticator: SoftAuthenticator,
  mode: 'button' | 'conditional' | 'identified' | 'second-factor',
  origin = page.url.origin,
  capabilities: { relatedOrigins?: boolean } = {},
): Promise<{ status: number; body: any; assertion: any }> {
  const options = await postJson(browser, page, '/passkey/options', { mode, ...capabilities });
  expect(options.status, JSON.stringify(options.body)).toBe(200);
  const assertion = await authenticator.getAssertion(options.body, origin);
  const verified = await postJson(browser, page, '/passkey/verify', { response: assertion });
  return { ...verified, assertion };
}

/** Registers a credential on a page offering it (passkey offer, MFA enrolment). */
export async function passkeyRegistration(
  browser: Browser,
  page: SignInPage,
  authenticator: SoftAuthenticator,
  origin = page.url.origin,
  name?: string,
  capabilities: { relatedOrigins?: boolean } = {},
) {
  const options = await postJson(browser, page, '/passkey/register/options', { ...capabilities });
  expect(options.status, JSON.stringify(options.body)).toBe(200);
  const response = await authenticator.createCredential(options.body, origin);
  return postJson(browser, page, '/passkey/register/verify', { response, ...(name ? { name } : {}) });
}

/** A new password user `email`, signed in through the pages (email, then password) up to the passkey offer that follows. */
export async function newUserAtPasskeyOffer(server: TestServer, config: oidc.Configuration, redirect: string, email: string): Promise<{ browser: Browser; page: SignInPage }> {
  expect((await server.cli(['user', 'create', '--realm', 'default', '--email', email, '--password-stdin'], PASSWORD)).code).toBe(0);
  const browser = new Browser();
  const auth = await authorizationRequest(config, redirect);
  const first = await readPage(await browser.follow(auth.url, {}, redirect));
  const pw = await readPage(await submit(browser, first, '/identify', { email }, redirect));
  const page = await readPage(await submit(browser, pw, '/login', { email, password: PASSWORD }, redirect));
  expect(page.html).toContain('/offer/skip');
  return { browser, page };
}

/** The passkeys stored for the user with this email (rows of webauthn_credentials). */
export async function storedPasskeys(server: TestServer, email: string): Promise<Array<Record<string, any>>> {
  const user = await server.services.db('users').where({ email }).first();
  return server.services.db('webauthn_credentials').where({ user_id: user.id });
}
