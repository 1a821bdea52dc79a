import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { jwtVerify } from 'jose';
import type * as oidc from 'openid-client';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { alertText, completeSignIn, csrfOf, flashText, signInToAccount, walk, type Step } from '../helpers/account-pages.js';
import { adminApi, adminToken } from '../helpers/admin-api.js';
import { describeEachDatabase } from '../helpers/databases.js';
import { authorizationRequest, discover, exchangeCode, PASSWORD, remoteJwks, submitLogin, until } from '../helpers/flows.js';
import { Browser, parseForm, testFetch } from '../helpers/http.js';
import { startTestServer, type TestServer } from '../helpers/server.js';

const REDIRECT = 'http://app.example.test/callback';
const PAT = 'pat@a.test';
const QUINN = 'quinn@quick.test';
// the upstream accounts' addresses differ from the accounts here: a link never depends on email matching
const PAT_UPSTREAM = 'pat.elsewhere@up.test';
const SAM_UPSTREAM = 'sam@up.test';
const SAM = 'sam@a.test';

// "Linked accounts" on the account page, against a real OpenID Connect provider: the `upstream` realm of
// the same server on up.localhost, reached over HTTP by `default` (a.localhost) through connection upcorp.
describeEachDatabase('linked accounts on the account page', (kind) => {
  let server: TestServer;
  let a: string;
  let up: string;
  let quick: string;
  let config: oidc.Configuration;
  let rpClientId: string;
  let patId: string;
  let samId: string;
  /** The browser pat uses for the account page (and the upstream realm, where it stays signed in as PAT_UPSTREAM). */
  const pat = new Browser();

  const links = async (realm: string, userId: string) => (await server.services.linking.identitiesOf(realm, userId)).map((l) => [l.connectionId, l.subject]);
  const upstreamId = async (email: string) => (await server.services.users.findByEmail('upstream', email))!.id;
  const securityEvents = async (userId: string, type: string) => Number(((await server.services.db('security_events').where({ user_id: userId, type }).count({ n: '*' })) as Array<{ n: number | string }>)[0]!.n);

  beforeAll(async () => {
    server = await startTestServer({ db: kind });
    a = `http://a.localhost:${server.port}`;
    up = `http://up.localhost:${server.port}`;
    quick = `http://quick.localhost:${server.port}`;
    const ok = async (args: string[], stdin?: string) => {
      const r = await server.cli(args, stdin);
      expect(r.code, r.stderr).toBe(0);
      return r.json;
    };
    const dir = mkdtempSync(join(tmpdir(), 'latchkey-linked-'));
    writeFileSync(join(dir, 'quick.json'), JSON.stringify({ reauthWindowSeconds: 1 }));
    await ok(['realm', 'add-issuer', '--realm', 'default', '--issuer', a]);
    await ok(['realm', 'create', '--id', 'upstream', '--name', 'Upstream Corp', '--issuer', up]);
    await ok(['realm', 'create', '--id', 'quick', '--name', 'Quick', '--issuer', quick, '--settings', join(dir, 'quick.json')]);
    const upstreamClient = await ok(['client', 'create', '--realm', 'upstream', '--name', 'Downstream', '--redirect-uri', `${a}/connections/callback`, '--redirect-uri', `${quick}/connections/callback`, '--first-party']);
    for (const email of [PAT_UPSTREAM, SAM_UPSTREAM]) await ok(['user', 'create', '--realm', 'upstream', '--email', email, '--name', email.split('@')[0]!, '--password-stdin'], `${PASSWORD}\n`);
    for (const realm of ['default', 'quick']) {
      await ok(['connection', 'create', '--realm', realm, '--id', 'upcorp', '--type', 'oidc', '--issuer', up, '--name', 'Upstream Corp', '--client-id', upstreamClient.client_id, '--client-secret-stdin'], upstreamClient.client_secret);
    }
    patId = (await ok(['user', 'create', '--realm', 'default', '--email', PAT, '--password-stdin'], `${PASSWORD}\n`)).id;
    samId = (await ok(['user', 'create', '--realm', 'default', '--email', SAM, '--password-stdin'], `${PASSWORD}\n`)).id;
    await ok(['user', 'create', '--realm', 'quick', '--email', QUINN, '--password-stdin'], `${PASSWORD}\n`);
    const rp = await ok(['client', 'create', '--realm', 'default', '--name', 'App', '--redirect-uri', REDIRECT, '--first-party']);
    rpClientId = rp.client_id;
    config = await discover(a, rp.client_id, { client_secret: rp.client_secret });
    await until(async () => ((await testFetch(`${quick}/.well-known/openid-configuration`)).status === 200 ? true : undefined), 'the new realms');
  });
  afterAll(async () => server?.close());

  /** The form on the account page whose action ends with `/<connection>/<action>`. */
  const formOf = (page: Step, connection: string, action: 'link' | 'unlink') => {
    const path = `/account/linked-accounts/${connection}/${action}`;
    expect(page.html, `a form posting to ${path}`).toContain(`action="${path}"`);
    return parseForm(page.html, `${path}"`);
  };

  /** Posts a Link form and follows the upstream sign-in (as `upstreamEmail`, unless already signed in there) back to the account page. */
  async function link(browser: Browser, page: Step, upstreamEmail: string): Promise<Step> {
    const form = formOf(page, 'upcorp', 'link');
    const started = await walk(browser, new URL(form.action, page.url), { form: form.fields });
    return completeSignIn(browser, started, { email: upstreamEmail, password: PASSWORD });
  }

  /** An application's sign-in through "Continue with Upstream Corp" in a new browser (signed out everywhere): the verified ID token's claims. */
  async function signInThroughUpstream(upstreamEmail: string) {
    const browser = new Browser();
    const auth = await authorizationRequest(config, REDIRECT);
    const login = await browser.follow(auth.url, {}, REDIRECT);
    const href = /href="([^"]+\/connection\/upcorp)"[^>]*>(?:<img[^>]*>)?Continue with Upstream Corp</.exec(await login.res.text())?.[1];
    expect(href, 'a "Continue with Upstream Corp" link').toBeTruthy();
    const upstreamPage = await browser.follow(new URL(href!, login.url), {}, REDIRECT);
    expect(upstreamPage.url.host).toBe(new URL(up).host);
    const done = await submitLogin(browser, upstreamPage, upstreamEmail, PASSWORD, REDIRECT);
    expect(done.url.href.startsWith(REDIRECT), `ended at ${done.url.href}`).toBe(true);
    const tokens = await exchangeCode(config, auth, done.url);
    return (await jwtVerify(tokens.id_token!, remoteJwks(a), { issuer: a, audience: rpClientId })).payload;
  }

  it('a password user links the upstream account from /account, then signs in with it as the same user', async () => {
    const page = await signInToAccount(pat, a, { email: PAT, password: PASSWORD });
    expect(page.html).toContain('id="lk-linked-heading"');
    expect(page.html).toContain('aria-label="Link Upstream Corp"');
    expect(page.html).not.toContain('aria-label="Unlink Upstream Corp"');

    const back = await link(pat, page, PAT_UPSTREAM);
    expect(back.url.pathname).toBe('/account');
    expect(back.url.searchParams.get('notice')).toBe('linked');
    expect(back.res.status).toBe(200);
    expect(flashText(back.html)).toBe('Account linked. You can now sign in with it.');
    // the hops: the upstream's own pages, the one callback per issuer, then the link's return
    const paths = back.trail.map((h) => `${h.url.host === new URL(up).host ? 'up' : 'a'}${h.url.pathname}`);
    expect(paths).toContain('a/connections/callback');
    expect(paths).toContain('a/account/linked-accounts/return');
    expect(await links('default', patId)).toEqual([['upcorp', await upstreamId(PAT_UPSTREAM)]]);
    expect(await securityEvents(patId, 'account.identity_linked')).toBe(1);
    // the section shows the upstream account
    expect(back.html).toContain('aria-label="Unlink Upstream Corp"');
    expect(back.html).toContain(`<dd>${PAT_UPSTREAM}</dd>`);
    expect(back.html).toMatch(/<dt>Last used<\/dt><dd>Never<\/dd>/);

    const claims = await signInThroughUpstream(PAT_UPSTREAM);
    expect(claims.sub).toBe(patId);
    expect(claims.email).toBe(PAT);
    const after = await walk(pat, `${a}/account`);
    expect(after.html).not.toMatch(/<dt>Last used<\/dt><dd>Never<\/dd>/);
  });

  it('refuses a replayed answer and a wrong state: back on /account with a message, nothing written', async () => {
    // a second link of the same connection (the page offers none; another tab, say): still signed in upstream, so straight back
    const page = await walk(pat, `${a}/account`);
    expect(page.html).not.toContain('action="/account/linked-accounts/upcorp/link"');
    const form = { action: '/account/linked-accounts/upcorp/link', fields: { csrf: csrfOf(page.html) } };
    const again = await walk(pat, new URL(form.action, page.url), { form: form.fields });
    expect(again.url.searchParams.get('notice')).toBe('link-already-yours');
    expect(alertText(again.html)).toBe('That account at the sign-in provider is already linked to your account.');
    const callback = again.trail.find((h) => h.url.pathname === '/connections/callback')!.url;

    // the same answer again: its state was used up
    expect(callback.searchParams.get('state')).toMatch(/^link-/);
    const returned = await walk(pat, callback);
    expect(returned.url.pathname).toBe('/account');
    expect(returned.res.status).toBe(200);
    expect(alertText(returned.html)).toMatch(/^Nothing was linked: the answer from the sign-in provider does not belong to a link started from this page/);
    expect(await links('default', patId)).toEqual([['upcorp', await upstreamId(PAT_UPSTREAM)]]);
    // a state no link ever had: at the return, or a link-like one at the callback
    for (const url of [`${a}/account/linked-accounts/return?state=${'x'.repeat(43)}&code=abc`, `${a}/connections/callback?state=link-${'x'.repeat(43)}&code=abc`]) {
      const wrong = await walk(pat, url);
      expect(wrong.url.searchParams.get('notice')).toBe('link-expired');
      expect(wrong.res.status).toBe(200);
    }
    // an unknown sign-in state at the callback is still the sign-in's own error page
    const signInState = await walk(pat, `${a}/connections/callback?state=${'x'.repeat(43)}&code=abc`);
    expect(signInState.res.status).toBe(400);
    expect(signInState.html).toContain('connection_state_invalid');

    // an upstream error (the person said no there): a message, nothing linked
    const start = await pat.request(new URL(form.action, page.url), { form: form.fields });
    expect(start.status).toBe(303);
    const state = new URL(start.headers.get('location')!).searchParams.get('state')!;
    const denied = await walk(pat, `${a}/connections/callback?error=access_denied&state=${state}`);
    expect(denied.url.searchParams.get('notice')).toBe('link-cancelled');
    expect(alertText(denied.html)).toBe('Nothing was linked: you did not allow it at the sign-in provider.');

    // a link's answer is bound to the account session that started it: another browser's is refused
    const start2 = await pat.request(new URL(form.action, page.url), { form: form.fields });
    const state2 = new URL(start2.headers.get('location')!).searchParams.get('state')!;
    const sam = new Browser();
    await signInToAccount(sam, a, { email: SAM, password: PASSWORD });
    const foreign = await walk(sam, `${a}/connections/callback?code=abc&state=${state2}`);
    expect(foreign.url.searchParams.get('notice')).toBe('link-expired');
    expect(await links('default', samId)).toEqual([]);
    // and it was used up: pat's own browser cannot use it any more either
    const late = await walk(pat, `${a}/account/linked-accounts/return?code=abc&state=${state2}`);
    expect(late.url.searchParams.get('notice')).toBe('link-expired');
    expect(await links('default', patId)).toEqual([['upcorp', await upstreamId(PAT_UPSTREAM)]]);
  });

  it('unlink: the link is gone, and that upstream sign-in then makes a new account (an address no account uses)', async () => {
    const page = await walk(pat, `${a}/account`);
    const form = formOf(page, 'upcorp', 'unlink');
    const done = await walk(pat, new URL(form.action, page.url), { form: form.fields });
    expect(done.url.searchParams.get('notice')).toBe('unlinked');
    expect(flashText(done.html)).toBe('Account unlinked. You can no longer sign in with it.');
    expect(await links('default', patId)).toEqual([]);
    expect(await securityEvents(patId, 'account.identity_unlinked')).toBe(1);
    expect(done.html).toContain('aria-label="Link Upstream Corp"');

    // the existing linking rules: an unknown upstream identity whose address no account here uses signs up
    const claims = await signInThroughUpstream(PAT_UPSTREAM);
    expect(claims.sub).not.toBe(patId);
    expect(claims.email).toBe(PAT_UPSTREAM);
    expect(await links('default', String(claims.sub))).toEqual([['upcorp', await upstreamId(PAT_UPSTREAM)]]);
  });

  it('refuses to link an upstream identity another user of the realm has: a message, nothing written', async () => {
    // pat is still signed in upstream as PAT_UPSTREAM, now linked to the account the last sign-in made
    const page = await walk(pat, `${a}/account`);
    const form = formOf(page, 'upcorp', 'link');
    const refused = await walk(pat, new URL(form.action, page.url), { form: form.fields });
    expect(refused.url.pathname).toBe('/account');
    expect(refused.url.searchParams.get('notice')).toBe('link-taken');
    expect(alertText(refused.html)).toMatch(/^Nothing was linked: that account at the sign-in provider is already linked to another account here/);
    expect(await links('default', patId)).toEqual([]);
    expect(await securityEvents(patId, 'account.identity_linked')).toBe(1);
  });

  it('never unlinks the last way in of a connection-only user; adding a password first makes it possible', async () => {
    const lin = new Browser();
    const start = await walk(lin, `${a}/account`);
    const href = /href="([^"]+\/connection\/upcorp)"/.exec(start.html)![1]!;
    const page = await completeSignIn(lin, await walk(lin, new URL(href, start.url)), { email: PAT_UPSTREAM, password: PASSWORD });
    expect(page.url.pathname).toBe('/account');
    const user = (await server.services.users.findByEmail('default', PAT_UPSTREAM))!;
    expect(page.html).toContain('This is your only way to sign in. Add a password or a passkey before you unlink it.');

    const form = formOf(page, 'upcorp', 'unlink');
    const refused = await walk(lin, new URL(form.action, page.url), { form: form.fields });
    expect(refused.res.status).toBe(400);
    expect(alertText(refused.html)).toBe(
      'This linked account is your only way to sign in: your account has no password, passkey, recovery codes or other linked account. Add a password or a passkey first, then unlink it.',
    );
    expect(await links('default', user.id)).toHaveLength(1);

    // a stale CSRF token (another session's) changes nothing either
    const stale = await lin.request(new URL(form.action, page.url), { form: { csrf: csrfOf((await walk(pat, `${a}/account`)).html) } });
    expect(stale.status).toBe(403);
    expect(await stale.text()).toContain('csrf_failed');
    const noToken = await lin.request(new URL(formOf(page, 'upcorp', 'unlink').action, page.url), { method: 'POST', form: {} });
    expect(noToken.status).toBe(403);
    expect(await links('default', user.id)).toHaveLength(1);

    const pw = parseForm(refused.html, '/account/password');
    const added = await walk(lin, new URL(pw.action, page.url), { form: { ...pw.fields, new_password: PASSWORD, new_password_again: PASSWORD } });
    expect(added.url.searchParams.get('notice')).toMatch(/^password-added/);
    expect(added.html).not.toContain('This is your only way to sign in.');
    const unlinked = await walk(lin, new URL(form.action, page.url), { form: formOf(added, 'upcorp', 'unlink').fields });
    expect(unlinked.url.searchParams.get('notice')).toBe('unlinked');
    expect(await links('default', user.id)).toEqual([]);
  });

  it('lists the connections the user could sign in with: a tenant-limited one only for members; a linked one switched off stays, to be unlinked', async () => {
    const ok = async (args: string[], stdin?: string) => expect((await server.cli(args, stdin)).code).toBe(0);
    await ok(['tenant', 'create', '--realm', 'default', '--id', 'acme', '--name', 'Acme']);
    await ok(['connection', 'create', '--realm', 'default', '--id', 'acmesso', '--type', 'oidc', '--issuer', up, '--name', 'Acme SSO', '--client-id', 'unused', '--tenant', 'acme']);
    let page = await walk(pat, `${a}/account`);
    expect(page.html).not.toContain('Acme SSO');
    const refused = await pat.request(`${a}/account/linked-accounts/acmesso/link`, { form: { csrf: csrfOf(page.html) } });
    expect(refused.status).toBe(404);
    expect(alertText(await refused.text())).toBe('That way of signing in is not available to link. Reload the page and choose another one.');
    await ok(['tenant', 'add-member', '--realm', 'default', '--tenant', 'acme', '--email', PAT]);
    page = await walk(pat, `${a}/account`);
    expect(page.html).toContain('aria-label="Link Acme SSO"');

    // a link through a connection switched off since: shown, and can be removed
    await server.services.db('federated_identities').insert({ realm_id: 'default', connection_id: 'acmesso', subject: 'acme-pat', user_id: patId, email: null, profile: '{}', created_at: Date.now(), last_login_at: null });
    await ok(['connection', 'disable', '--realm', 'default', '--id', 'acmesso']);
    page = await walk(pat, `${a}/account`);
    expect(page.html).toContain('aria-label="Unlink Acme SSO"');
    expect(page.html).toContain('This way of signing in is not offered here any more.');
    const unlinked = await walk(pat, `${a}/account/linked-accounts/acmesso/unlink`, { form: { csrf: csrfOf(page.html) } });
    expect(unlinked.url.searchParams.get('notice')).toBe('unlinked');
    expect(unlinked.html).not.toContain('Acme SSO');
    expect(await links('default', patId)).toEqual([]);
  });

  it('a stale CSRF token on Link starts nothing', async () => {
    const page = await walk(pat, `${a}/account`);
    const form = formOf(page, 'upcorp', 'link');
    const res = await pat.request(new URL(form.action, page.url), { form: { csrf: `${form.fields.csrf}x` } });
    expect(res.status).toBe(403);
    expect(res.headers.get('location')).toBeNull();
  });

  it('asks for a new sign-in (max_age=0) before Link or Unlink once the sign-in is older than reauthWindowSeconds', async () => {
    const quinn = new Browser();
    const quinnId = (await server.services.users.findByEmail('quick', QUINN))!.id;
    // a link made earlier (by a sign-in proof, say)
    await server.services.db('federated_identities').insert({ realm_id: 'quick', connection_id: 'upcorp', subject: 'someone-upstream', user_id: quinnId, email: 'q@up.test', profile: '{}', created_at: Date.now(), last_login_at: null });
    await signInToAccount(quinn, quick, { email: QUINN, password: PASSWORD });
    await new Promise((r) => setTimeout(r, 2200));
    const page = await walk(quinn, `${quick}/account`);
    expect(page.res.status).toBe(200);
    const unlink = formOf(page, 'upcorp', 'unlink');
    for (const res of [await quinn.request(new URL(unlink.action, page.url), { form: unlink.fields })]) {
      expect(res.status).toBe(303);
      const auth = new URL(res.headers.get('location')!, quick);
      expect(auth.pathname).toBe('/auth');
      expect(auth.searchParams.get('max_age')).toBe('0');
    }
    expect(await links('quick', quinnId)).toEqual([['upcorp', 'someone-upstream']]);
    await server.services.db('federated_identities').where({ realm_id: 'quick', user_id: quinnId }).delete();
    const linkPage = await walk(quinn, `${quick}/account`);
    const linkForm = formOf(linkPage, 'upcorp', 'link');
    const res = await quinn.request(new URL(linkForm.action, linkPage.url), { form: linkForm.fields });
    expect(res.status).toBe(303);
    const auth = new URL(res.headers.get('location')!, quick);
    expect(auth.host).toBe(new URL(quick).host);
    expect(auth.searchParams.get('max_age')).toBe('0');
  });
});
