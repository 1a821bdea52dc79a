import { expect } from 'vitest';
import type { SoftAuthenticator } from './authenticator.js';
import { Browser, parseForm, testFetch } from './http.js';

/*
 * The account page (/account) and the sign-in pages in front of it, walked over HTTP the way a browser
 * would: redirects followed hop by hop, forms read from the HTML, the passkey script's JSON calls made
 * with the software authenticator.
 */

export interface Step {
  res: Response;
  url: URL;
  html: string;
  trail: Array<{ url: URL; res: Response }>;
}

/** Requests a URL and follows redirects (recording every hop) until a page answers. */
export async function walk(browser: Browser, url: string | URL, init: { method?: string; form?: Record<string, string> } = {}): Promise<Step> {
  let current = new URL(url);
  let res = await browser.request(current, init);
  const trail = [{ url: current, res }];
  for (let i = 0; i < 20 && res.status >= 300 && res.status < 400; i++) {
    current = new URL(res.headers.get('location')!, current);
    res = await browser.request(current);
    trail.push({ url: current, res });
  }
  return { res, url: current, html: await res.text(), trail };
}

export async function postJson(browser: Browser, url: string | URL, body: unknown, csrf?: string): Promise<{ status: number; body: any }> {
  const target = new URL(url);
  const headers: Record<string, string> = { 'content-type': 'application/json', accept: 'application/json' };
  const cookie = browser.cookieHeader(target);
  if (cookie) headers.cookie = cookie;
  if (csrf !== undefined) headers['x-csrf-token'] = csrf;
  const res = await testFetch(target, { method: 'POST', headers, body: JSON.stringify(body), redirect: 'manual' });
  browser.store(target, res);
  const text = await res.text();
  let parsed: unknown = text;
  try {
    parsed = JSON.parse(text);
  } catch {
    /* not JSON */
  }
  return { status: res.status, body: parsed };
}

export interface Who {
  email: string;
  password?: string;
  authenticator?: SoftAuthenticator;
}

/** Goes through the sign-in pages (identifier first, password or passkey, the passkey offer) until they hand back. */
export async function completeSignIn(browser: Browser, start: Step, who: Who): Promise<Step> {
  let page = start;
  for (let i = 0; i < 8; i++) {
    if (!page.url.pathname.startsWith('/interaction/')) return page;
    expect(page.res.status, page.html.slice(0, 600)).toBe(200);
    const origin = page.url.origin;
    const uid = page.url.pathname.split('/')[2]!;
    if (who.authenticator && page.html.includes('data-lk-passkey-options')) {
      const csrf = parseForm(page.html).fields.csrf!;
      const options = await postJson(browser, `${origin}/interaction/${uid}/passkey/options`, { mode: 'button' }, csrf);
      expect(options.status, JSON.stringify(options.body)).toBe(200);
      const response = await who.authenticator.getAssertion(options.body, origin);
      const verified = await postJson(browser, `${origin}/interaction/${uid}/passkey/verify`, { response }, csrf);
      expect(verified.status, JSON.stringify(verified.body)).toBe(200);
      page = await walk(browser, new URL(verified.body.redirect, origin));
    } else if (page.html.includes('/offer/skip')) {
      const form = parseForm(page.html, '/offer/skip');
      page = await walk(browser, new URL(form.action, page.url), { form: form.fields });
    } else if (page.html.includes('name="password"')) {
      expect(who.password, 'a password is needed here').toBeTruthy();
      const form = parseForm(page.html, '/login');
      page = await walk(browser, new URL(form.action, page.url), { form: { ...form.fields, email: who.email, password: who.password! } });
    } else if (page.html.includes('/identify')) {
      const form = parseForm(page.html, '/identify');
      page = await walk(browser, new URL(form.action, page.url), { form: { ...form.fields, email: who.email } });
    } else {
      throw new Error(`unexpected sign-in page ${page.url.href} (${page.res.status}):\n${page.html.slice(0, 800)}`);
    }
  }
  throw new Error('the sign-in did not end');
}

export async function signInToAccount(browser: Browser, issuer: string, who: Who): Promise<Step> {
  const start = await walk(browser, `${issuer}/account`);
  expect(start.url.pathname, 'an account session should not exist yet').toMatch(/^\/interaction\//);
  const done = await completeSignIn(browser, start, who);
  expect(done.url.pathname).toBe('/account');
  expect(done.res.status, done.html.slice(0, 600)).toBe(200);
  return done;
}

export const csrfOf = (html: string): string => {
  const m = /data-lk-csrf="([^"]+)"/.exec(html) ?? /name="csrf" value="([^"]+)"/.exec(html);
  if (!m) throw new Error(`no CSRF token in:\n${html.slice(0, 500)}`);
  return m[1]!;
};

export const alertText = (html: string) => (/<div id="lk-error"[^>]*>([\s\S]*?)<\/div>/.exec(html)?.[1] ?? '').replace(/<[^>]+>/g, '').trim();
export const flashText = (html: string) => (/<div class="lk-flash"[^>]*>([\s\S]*?)<\/div>/.exec(html)?.[1] ?? '').replace(/<[^>]+>/g, '').trim();
export const secretOf = (html: string) => /<p class="lk-secret"><code>([^<]+)<\/code>/.exec(html)?.[1]?.replace(/\s+/g, '') ?? '';
export const codesOf = (html: string) => [...html.matchAll(/<li><code>([^<]+)<\/code><\/li>/g)].map((m) => m[1]!);
