import { createRemoteJWKSet, customFetch } from 'jose';
import * as oidc from 'openid-client';
import { expect } from 'vitest';
import { Browser, parseForm, testFetch } from './http.js';

/** Passes the password policy (15+ characters, not on the blocklist). */
export const PASSWORD = 'plum-orbit-cactus-velvet-91';

/** Polls `probe` until it returns something other than undefined. */
export async function until<T>(probe: () => Promise<T | undefined>, what: string, timeoutMs = 5000): Promise<T> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** A JWKS fetched over HTTP (through testFetch, so `*.localhost` issuers work) by jose. */
export function remoteJwks(issuer: string) {
  return createRemoteJWKSet(new URL(`${issuer}/jwks`), { [customFetch]: testFetch as any });
}

/** openid-client configuration from the issuer's discovery document, over plain HTTP. */
export function discover(issuer: string, clientId: string, metadata: Partial<oidc.ClientMetadata> = {}, auth?: oidc.ClientAuth): Promise<oidc.Configuration> {
  return oidc.discovery(new URL(issuer), clientId, { id_token_signed_response_alg: 'EdDSA', ...metadata }, auth, {
    execute: [oidc.allowInsecureRequests],
    [oidc.customFetch]: testFetch,
  } as any);
}

export interface Authorization {
  url: URL;
  verifier: string;
  state: string;
  redirectUri: string;
}

export async function authorizationRequest(config: oidc.Configuration, redirectUri: string, params: Record<string, string> = {}): Promise<Authorization> {
  const verifier = oidc.randomPKCECodeVerifier();
  const state = oidc.randomState();
  const url = oidc.buildAuthorizationUrl(config, {
    redirect_uri: redirectUri,
    scope: 'openid email profile',
    code_challenge: await oidc.calculatePKCECodeChallenge(verifier),
    code_challenge_method: 'S256',
    state,
    ...params,
  });
  return { url, verifier, state, redirectUri };
}

/** Fills in the login page the browser is on; returns where the redirects lead (a page, or the redirect URI). */
/**
 * Signs in with a password through the pages, as a person would: the email step (identifier first),
 * the password step, and "Not now" on the "Create a passkey" offer when it appears.
 * `page` is the first sign-in page; returns the response that leaves for `stopAt` (or the last page).
 */
export async function submitLogin(browser: Browser, page: { res: Response; url: URL }, email: string, password: string, stopAt: string) {
  expect(page.res.status).toBe(200);
  let html = await page.res.text();
  let at = page.url;
  if (html.includes('/identify"')) {
    const identify = parseForm(html, '/identify');
    const next = await browser.follow(new URL(identify.action, at), { form: { ...identify.fields, email } }, stopAt);
    html = await next.res.text();
    at = next.url;
  }
  expect(html).toContain('name="password"');
  const form = parseForm(html, '/login');
  const done = await browser.follow(new URL(form.action, at), { form: { ...form.fields, email, password } }, stopAt);
  return skipPasskeyOffer(browser, done, stopAt);
}

/** Answers "Not now" when the page is the passkey offer; otherwise hands the page back unread. */
export async function skipPasskeyOffer(browser: Browser, step: { res: Response; url: URL }, stopAt: string): Promise<{ res: Response; url: URL }> {
  if (step.res.status !== 200 || step.url.href.startsWith(stopAt)) return step;
  const html = await step.res.text();
  if (!html.includes('/offer/skip"')) return { res: new Response(html, { status: step.res.status, headers: step.res.headers }), url: step.url };
  const skip = parseForm(html, '/offer/skip');
  return browser.follow(new URL(skip.action, step.url), { form: skip.fields }, stopAt);
}

/** Authorization request, login form, code exchange: the whole code flow for one user. */
export async function signIn(
  browser: Browser,
  config: oidc.Configuration,
  redirectUri: string,
  email: string,
  params: Record<string, string> = {},
): Promise<oidc.TokenEndpointResponse & oidc.TokenEndpointResponseHelpers> {
  const auth = await authorizationRequest(config, redirectUri, params);
  const login = await browser.follow(auth.url, {}, redirectUri);
  const done = await submitLogin(browser, login, email, PASSWORD, redirectUri);
  expect(done.url.href.startsWith(redirectUri), `ended at ${done.url.href}`).toBe(true);
  return exchangeCode(config, auth, done.url, params.resource ? { resource: params.resource } : undefined);
}

export function exchangeCode(config: oidc.Configuration, auth: Authorization, callback: URL, tokenParams?: Record<string, string>) {
  return oidc.authorizationCodeGrant(config, callback, { pkceCodeVerifier: auth.verifier, expectedState: auth.state }, tokenParams);
}

/** POST to an endpoint with a form body and (optionally) HTTP Basic client authentication. */
export async function postForm(url: string, form: Record<string, string>, basic?: { id: string; secret: string }): Promise<{ status: number; body: any; headers: Headers }> {
  const headers: Record<string, string> = { 'content-type': 'application/x-www-form-urlencoded' };
  if (basic) headers.authorization = `Basic ${Buffer.from(`${encodeURIComponent(basic.id)}:${encodeURIComponent(basic.secret)}`).toString('base64')}`;
  const res = await testFetch(url, { method: 'POST', headers, body: new URLSearchParams(form).toString() });
  const text = await res.text();
  let body: any = text;
  try {
    body = JSON.parse(text);
  } catch {
    /* not JSON */
  }
  return { status: res.status, body, headers: res.headers };
}
