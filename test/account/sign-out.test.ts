import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PASSWORD } from '../helpers/flows.js';
import { csrfOf, signInToAccount, walk } from '../helpers/account-pages.js';
import { Browser, parseForm } from '../helpers/http.js';
import { startTestServer, type TestServer } from '../helpers/server.js';

/**
 * GET /account/sign-out cleared the account session at once: any other site could sign a user out of the
 * account page with a link, a redirect or a top-level navigation (no CSRF token to check on a GET). Signing
 * out is now a POST with the page's CSRF token; a GET only shows a "Sign out" button.
 */
describe('signing out of the account page', () => {
  let server: TestServer;
  const ADA = 'ada@example.test';

  beforeAll(async () => {
    server = await startTestServer();
    const r = await server.cli(['user', 'create', '--realm', 'default', '--email', ADA, '--password-stdin'], `${PASSWORD}\n`);
    expect(r.code, r.stderr).toBe(0);
  });
  afterAll(async () => server?.close());

  const clearsSession = (res: Response) => res.headers.getSetCookie().some((c) => c.startsWith('lk_account=;'));

  async function stillSignedIn(browser: Browser): Promise<void> {
    const res = await browser.request(`${server.issuer}/account`);
    expect(res.status).toBe(200);
    expect(await res.text()).toContain(ADA);
  }

  it('the account page signs out with a form button that posts its CSRF token', async () => {
    const browser = new Browser();
    const account = await signInToAccount(browser, server.issuer, { email: ADA, password: PASSWORD });
    const form = parseForm(account.html, '/account/sign-out');
    expect(form.action).toBe('/account/sign-out');
    expect(account.html).toMatch(/<form class="lk-center" method="post" action="\/account\/sign-out">\s*<input type="hidden" name="csrf" value="[^"]+">\s*<button class="lk-button lk-button--link" type="submit">Sign out<\/button>\s*<\/form>/);
    expect(form.fields.csrf).toBe(csrfOf(account.html));
    expect(account.html).not.toContain('href="/account/sign-out"');
  });

  it('a GET signs nobody out: it shows a Sign out button, and the landing page after a sign-out ends nothing either', async () => {
    const browser = new Browser();
    await signInToAccount(browser, server.issuer, { email: ADA, password: PASSWORD });

    const confirm = await browser.request(`${server.issuer}/account/sign-out`);
    expect(confirm.status).toBe(200);
    expect(clearsSession(confirm)).toBe(false);
    const html = await confirm.text();
    expect(html).toContain('<h1 class="lk-title">Sign out?</h1>');
    const form = parseForm(html, '/account/sign-out');
    expect(form.fields.csrf).toBeTruthy();
    expect(html).toMatch(/<button class="lk-button lk-button--primary lk-button--block" type="submit" autofocus>Sign out<\/button>/);
    expect(html).toContain('<a href="/account">Back to your account</a>');
    await stillSignedIn(browser);

    const landing = await browser.request(`${server.issuer}/account/signed-out`);
    expect(landing.status).toBe(303);
    expect(landing.headers.get('location')).toBe('/account');
    expect(clearsSession(landing)).toBe(false);
    await stillSignedIn(browser);

    // the confirmation page's button signs out
    const out = await browser.request(new URL(form.action, server.issuer), { form: form.fields });
    expect(out.status).toBe(303);
    expect(clearsSession(out)).toBe(true);
    expect(new URL(out.headers.get('location')!, server.issuer).pathname).toBe('/session/end');
  });

  it('a POST without the CSRF token, or with a wrong one, is refused with 403 and says why; the user stays signed in', async () => {
    const browser = new Browser();
    await signInToAccount(browser, server.issuer, { email: ADA, password: PASSWORD });
    for (const form of [{}, { csrf: 'not-the-token' }] as Array<Record<string, string>>) {
      const res = await browser.request(`${server.issuer}/account/sign-out`, { method: 'POST', form });
      expect(res.status).toBe(403);
      expect(clearsSession(res)).toBe(false);
      expect(res.headers.get('location')).toBeNull();
      const html = await res.text();
      expect(html).toContain('Sign-out not verified');
      expect(html).toContain('its security token is missing or has expired), so you are still signed in');
      expect(html).toContain('<code>csrf_failed</code>');
      expect(html).toContain('href="/account"');
      await stillSignedIn(browser);
    }
  });

  it('a POST with the token signs out: the account cookie goes, the realm session ends, the next visit signs in again', async () => {
    const browser = new Browser();
    const account = await signInToAccount(browser, server.issuer, { email: ADA, password: PASSWORD });
    const form = parseForm(account.html, '/account/sign-out');
    const out = await browser.request(new URL(form.action, server.issuer), { form: form.fields });
    expect(out.status).toBe(303);
    expect(out.headers.getSetCookie().some((c) => c.startsWith('lk_account=;') && /Max-Age=0/.test(c))).toBe(true);
    const end = new URL(out.headers.get('location')!, server.issuer);
    expect(end.pathname).toBe('/session/end');
    expect(end.searchParams.get('client_id')).toBe('latchkey-account');
    expect(end.searchParams.get('post_logout_redirect_uri')).toBe(`${server.issuer}/account/signed-out`);
    const confirm = await walk(browser, end);
    const logout = parseForm(confirm.html, 'session/end');
    const done = await walk(browser, new URL(logout.action, server.issuer), { form: { ...logout.fields, logout: 'yes' } });
    expect(done.url.pathname).toBe('/account/signed-out');
    expect(done.html).toContain('You have signed out');
    const again = await walk(browser, `${server.issuer}/account`);
    expect(again.url.pathname).toMatch(/^\/interaction\//);
  });

  it('without an account session, a POST goes on to the realm sign-out page (which asks for itself)', async () => {
    const res = await new Browser().request(`${server.issuer}/account/sign-out`, { method: 'POST', form: {} });
    expect(res.status).toBe(303);
    expect(new URL(res.headers.get('location')!, server.issuer).pathname).toBe('/session/end');
  });
});
