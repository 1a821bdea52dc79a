/**
 * Passkeys and second factors in headless Chromium against the real server: Chromium's own WebAuthn
 * client with CDP virtual authenticators (no browser UI), the real pages and /assets/passkeys.js, and
 * the real CLI for realms, clients and users. The same scenarios over plain HTTP with a Node
 * authenticator are in test/passkeys/passkey-sign-in.test.ts, test/passkeys/domains.test.ts and
 * test/mfa/mfa-sign-in.test.ts; here the browser does the WebAuthn part (origin, RP ID checks, Related
 * Origin Requests, conditional mediation) itself.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer as createHttpsServer, type Server as HttpsServer } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createRemoteJWKSet, customFetch, jwtVerify, type JWTPayload } from 'jose';
import * as oidc from 'openid-client';
import type { Browser, BrowserContext, Page, Request as PlaywrightRequest } from 'playwright-core';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import {
  describeWithBrowser,
  launchChromium,
  PLATFORM_PASSKEY,
  startTestApp,
  USB_SECURITY_KEY,
  virtualAuthenticators,
  watchConsole,
  type VirtualAuthenticators,
} from '../helpers/browser.js';
import { PASSWORD } from '../helpers/flows.js';
import { testFetch } from '../helpers/http.js';
import { startTestServer, type TestServer } from '../helpers/server.js';
import { codeForStep, stepOf } from '../helpers/totp.js';

const LOA2 = 'urn:latchkey:loa:2';

/** The test app's client on one issuer of a realm. */
interface Rp {
  issuer: string;
  clientId: string;
  config: oidc.Configuration;
}

/** One authorization request, as the app made it. */
interface Flow {
  rp: Rp;
  verifier: string;
  state: string;
  nonce: string;
}

/** A POST of the page to a passkey endpoint (path without /interaction/:uid), seen on the network. */
interface PasskeyCall {
  path: string;
  body: any;
  /** The HTTP status of its answer, recorded by Playwright as the headers arrive (undefined until then). */
  status?: number;
}

/** The answer to such a POST, as the page's fetch() received it (reported by {@link recordWebAuthnCalls}). */
interface PasskeyAnswer {
  path: string;
  status: number;
  answer: any;
  /** Not a POST: the options the sign-in page was rendered with. */
  prepared?: boolean;
}

/** A WebAuthn get() call the page made, as recorded by {@link recordWebAuthnCalls}. */
interface GetCall {
  mediation: string;
  aborted: boolean;
  outcome: string;
}

/** A browser profile (its own cookies) with one page, its virtual authenticators and what it was seen doing. */
interface Tab {
  context: BrowserContext;
  page: Page;
  seen: ReturnType<typeof watchConsole>;
  webauthn: VirtualAuthenticators;
  /** Requests to the passkey endpoints since the current sign-in started. */
  passkeyCalls: PasskeyCall[];
  /**
   * Their JSON answers as the page's fetch() read them. A page that navigates right after may not get to
   * report one: check statuses with {@link statusesOf}, which reads the browser's network events.
   */
  passkeyAnswers: PasskeyAnswer[];
}

/**
 * Runs in every page before its own scripts: records each navigator.credentials.get() (mediation,
 * whether its signal was aborted, how it ended), and on every form submission, after the page's own
 * listeners, stores that list in sessionStorage so it survives the navigation. Hands the JSON answers
 * of the passkey endpoints to the test through the `lkPasskeyAnswer` binding.
 */
function recordWebAuthnCalls(): void {
  const w = window as any;
  const fetch = window.fetch.bind(window);
  window.fetch = (input: RequestInfo | URL, init?: RequestInit) => {
    const pending = fetch(input, init);
    const path = new URL(input instanceof Request ? input.url : String(input), location.href).pathname.replace(/^\/interaction\/[^/]+/, '');
    if (path.startsWith('/passkey/') && typeof w.lkPasskeyAnswer === 'function') {
      pending.then(
        (res) => res.clone().json().catch(() => undefined).then((answer: unknown) => w.lkPasskeyAnswer({ path, status: res.status, answer })),
        () => undefined,
      );
    }
    return pending;
  };
  // the first-factor options a sign-in page comes with (data-lk-passkey-request) count as an answer of
  // /passkey/options too, marked `prepared`: the page's script uses them instead of asking
  document.addEventListener('DOMContentLoaded', () => {
    const raw = document.querySelector('main')?.getAttribute('data-lk-passkey-request');
    if (raw && typeof w.lkPasskeyAnswer === 'function') w.lkPasskeyAnswer({ path: '/passkey/options', status: 200, answer: JSON.parse(raw), prepared: true });
  });
  const calls: { mediation: string; signal?: AbortSignal; outcome: string }[] = [];
  const snapshot = () => calls.map((c) => ({ mediation: c.mediation, aborted: Boolean(c.signal?.aborted), outcome: c.outcome }));
  w.lkSnapshot = snapshot;
  if (!navigator.credentials) return;
  const get = navigator.credentials.get.bind(navigator.credentials);
  navigator.credentials.get = (options?: CredentialRequestOptions) => {
    const call = { mediation: String(options?.mediation ?? 'optional'), signal: options?.signal, outcome: 'pending' };
    calls.push(call);
    const pending = get(options);
    pending.then(
      () => (call.outcome = 'resolved'),
      (err: Error) => (call.outcome = err?.name ?? 'rejected'),
    );
    return pending;
  };
  window.addEventListener('submit', () => sessionStorage.setItem('lk-gets-at-submit', JSON.stringify(snapshot())));
}

const getCalls = (tab: Tab): Promise<GetCall[]> => tab.page.evaluate(() => (window as any).lkSnapshot());
const modes = (tab: Tab) => tab.passkeyCalls.filter((c) => c.path === '/passkey/options').map((c) => c.body.mode);
const callsTo = (tab: Tab, path: string) => tab.passkeyCalls.filter((c) => c.path === path);
const statusesOf = (tab: Tab, path: string) => callsTo(tab, path).map((c) => c.status);
const answersTo = (tab: Tab, path: string) => tab.passkeyAnswers.filter((a) => a.path === path);
const base64url = (standardBase64: string) => Buffer.from(standardBase64, 'base64').toString('base64url');

/** A level-1 heading of the page the browser is on (waits for it). */
async function heading(page: Page, name: string | RegExp): Promise<void> {
  await page.getByRole('heading', { level: 1, name }).waitFor();
}

/**
 * No CSP violation, console error or uncaught exception on any page the tab has shown, and no error
 * status other than the browser's own /favicon.ico probe (the pages declare no icon).
 */
function expectCleanPages(tab: Tab): void {
  expect(tab.seen.cspViolations).toEqual([]);
  expect(tab.seen.errors).toEqual([]);
  expect(tab.seen.httpErrors.filter((e) => !e.endsWith(' /favicon.ico'))).toEqual([]);
}

function settingsFile(settings: Record<string, unknown>): string {
  const dir = mkdtempSync(join(tmpdir(), 'latchkey-browser-passkeys-'));
  writeFileSync(join(dir, 'settings.json'), JSON.stringify(settings));
  return join(dir, 'settings.json');
}

describeWithBrowser('passkeys and second factors in Chromium', () => {
  let server: TestServer;
  let app: Awaited<ReturnType<typeof startTestApp>>;
  let browser: Browser;
  const contexts: BrowserContext[] = [];
  /** The app's client per issuer, for every realm of the suite. */
  const rps = new Map<string, Rp>();
  const issuerOf = (host: string) => `http://${host}.localhost:${server.port}`;
  const rp = (issuer: string) => rps.get(issuer)!;

  /** A realm (unless it is "default"), the app's client in it, and an openid-client configuration per issuer. */
  async function realmWithApp(id: string, issuers: string[], settings?: Record<string, unknown>): Promise<void> {
    if (id !== 'default') {
      const created = await server.cli(['realm', 'create', '--id', id, '--name', `Realm ${id}`, ...issuers.flatMap((i) => ['--issuer', i]), ...(settings ? ['--settings', settingsFile(settings)] : [])]);
      expect(created.code, created.stderr).toBe(0);
    }
    const client = await server.cli(['client', 'create', '--realm', id, '--name', `Test App (${id})`, '--redirect-uri', app.redirectUri, '--first-party']);
    expect(client.code, client.stderr).toBe(0);
    for (const issuer of issuers) {
      const config = await oidc.discovery(
        new URL(issuer),
        client.json.client_id,
        { client_secret: client.json.client_secret, id_token_signed_response_alg: 'EdDSA' },
        undefined,
        { execute: [oidc.allowInsecureRequests], [oidc.customFetch]: testFetch } as any,
      );
      rps.set(issuer, { issuer, clientId: client.json.client_id, config });
    }
  }

  async function newUser(realm: string, email: string): Promise<void> {
    const created = await server.cli(['user', 'create', '--realm', realm, '--email', email, '--password-stdin'], `${PASSWORD}\n`);
    expect(created.code, created.stderr).toBe(0);
  }

  async function storedCredentials(realm: string, email: string) {
    const user = await server.services.users.findByEmail(realm, email);
    return server.services.passkeys.credentials(realm, user!.id);
  }

  beforeAll(async () => {
    app = await startTestApp();
    server = await startTestServer();
    await realmWithApp('default', [server.issuer]);
    await realmWithApp('strict', [issuerOf('strict')], { mfa: 'required' });
    await realmWithApp('split', [issuerOf('a'), issuerOf('b')]);
    await realmWithApp('shared', [issuerOf('c'), issuerOf('d')], { passkeys: { relatedOrigins: true } });
    browser = await launchChromium();
  });

  afterEach(async () => {
    while (contexts.length) await contexts.pop()!.close();
  });

  afterAll(async () => {
    await browser?.close();
    await server?.close();
    await app?.close();
  });

  // ---- Browser tabs -------------------------------------------------------------------------------

  /** A fresh profile (no cookies) with one page, console watching and WebAuthn recording; no authenticator yet. */
  async function openTab(on: Browser = browser): Promise<Tab> {
    const context = await on.newContext({ locale: 'en-US', viewport: { width: 1000, height: 800 } });
    contexts.push(context);
    await context.addInitScript(recordWebAuthnCalls);
    const page = await context.newPage();
    page.setDefaultTimeout(15_000);
    const tab: Tab = { context, page, seen: watchConsole(page), webauthn: await virtualAuthenticators(page), passkeyCalls: [], passkeyAnswers: [] };
    await context.exposeBinding('lkPasskeyAnswer', (_source, answer: PasskeyAnswer) => void tab.passkeyAnswers.push(answer));
    const pending = new Map<PlaywrightRequest, PasskeyCall>();
    page.on('request', (req) => {
      const path = new URL(req.url()).pathname.replace(/^\/interaction\/[^/]+/, '');
      if (req.method() !== 'POST' || !path.startsWith('/passkey/')) return;
      const call: PasskeyCall = { path, body: req.postDataJSON() };
      tab.passkeyCalls.push(call);
      pending.set(req, call);
    });
    // the status comes from the browser's network events, not from the page: a page that navigates
    // right after its fetch() resolves (register/verify, verify) may never get to report the answer
    page.on('response', (res) => {
      const call = pending.get(res.request());
      if (call) call.status = res.status();
      pending.delete(res.request());
    });
    return tab;
  }

  // ---- Sign-in steps ------------------------------------------------------------------------------

  /** The app sends the browser to the authorization endpoint (whatever the browser then does on its own). */
  async function authorize(tab: Tab, target: Rp): Promise<Flow> {
    const flow: Flow = { rp: target, verifier: oidc.randomPKCECodeVerifier(), state: oidc.randomState(), nonce: oidc.randomNonce() };
    const url = oidc.buildAuthorizationUrl(target.config, {
      redirect_uri: app.redirectUri,
      scope: 'openid email profile',
      code_challenge: await oidc.calculatePKCECodeChallenge(flow.verifier),
      code_challenge_method: 'S256',
      state: flow.state,
      nonce: flow.nonce,
    });
    tab.passkeyCalls.length = 0;
    tab.passkeyAnswers.length = 0;
    const res = await tab.page.goto(url.href);
    expect(res?.status()).toBe(200);
    return flow;
  }

  /** {@link authorize}, and the sign-in page (the email step) shows on the issuer's domain. */
  async function startSignIn(tab: Tab, target: Rp): Promise<Flow> {
    const flow = await authorize(tab, target);
    await tab.page.getByLabel('Email').waitFor();
    expect(new URL(tab.page.url()).origin).toBe(target.issuer);
    return flow;
  }

  /**
   * {@link startSignIn} with simulated presence off while the page loads, so a passkey in the
   * authenticator is not taken from the autofill at once (a person who has not touched the field yet):
   * waits until the autofill (conditional) request is pending, then turns presence back on (which, in
   * Chromium, does not complete a request already pending: only new requests, e.g. a button's, see it).
   */
  async function startSignInWithoutAutofill(tab: Tab, target: Rp, authenticatorId: string, reachedAuthenticator?: () => boolean): Promise<Flow> {
    await tab.webauthn.setPresence(authenticatorId, false);
    const flow = await startSignIn(tab, target);
    await expect.poll(() => getCalls(tab)).toEqual([{ mediation: 'conditional', aborted: false, outcome: 'pending' }]);
    // a pending promise is not yet a request the authenticator has seen: with related origins Chromium
    // first fetches the primary domain's list, and presence turned back on before that let the autofill
    // request complete on its own (seen once on a loaded machine, where the click then found no button)
    if (reachedAuthenticator) await expect.poll(reachedAuthenticator).toBe(true);
    await tab.webauthn.setPresence(authenticatorId, true);
    return flow;
  }

  async function continueWithEmail(tab: Tab, email: string): Promise<void> {
    await tab.page.getByLabel('Email').fill(email);
    await tab.page.getByRole('button', { name: 'Continue', exact: true }).click();
  }

  /** The email step, then the password step; what follows depends on the realm and the account. */
  async function signInWithPassword(tab: Tab, email: string): Promise<void> {
    await continueWithEmail(tab, email);
    await tab.page.getByLabel('Password').fill(PASSWORD);
    await tab.page.getByRole('button', { name: 'Sign in', exact: true }).click();
  }

  /** "Not now" on the passkey offer. */
  async function declinePasskeyOffer(tab: Tab): Promise<void> {
    await heading(tab.page, 'Create a passkey for faster sign-in');
    await tab.page.getByRole('button', { name: 'Not now', exact: true }).click();
  }

  /**
   * On the app's redirect URI: `code`, `state` and `iss` are right, the code is redeemed (PKCE, nonce)
   * and the ID token's signature is checked against the issuer's JWKS. Returns its claims.
   */
  async function landAtApp(tab: Tab, flow: Flow, email: string): Promise<{ claims: JWTPayload; idToken: string }> {
    await tab.page.waitForURL((u) => u.href.startsWith(app.redirectUri));
    await heading(tab.page, 'Callback received');
    const landed = new URL(tab.page.url());
    expect(landed.searchParams.get('error'), landed.href).toBeNull();
    expect(landed.searchParams.get('code')).toBeTruthy();
    expect(landed.searchParams.get('state')).toBe(flow.state);
    expect(landed.searchParams.get('iss')).toBe(flow.rp.issuer);
    const tokens = await oidc.authorizationCodeGrant(flow.rp.config, landed, {
      pkceCodeVerifier: flow.verifier,
      expectedState: flow.state,
      expectedNonce: flow.nonce,
      idTokenExpected: true,
    });
    const jwks = createRemoteJWKSet(new URL(`${flow.rp.issuer}/jwks`), { [customFetch]: testFetch } as any);
    const { payload } = await jwtVerify(tokens.id_token!, jwks, { issuer: flow.rp.issuer, audience: flow.rp.clientId });
    expect(payload.email).toBe(email);
    expect(payload.nonce).toBe(flow.nonce);
    expectCleanPages(tab);
    return { claims: payload, idToken: tokens.id_token! };
  }

  /** A password sign-in ending with "Create a passkey" on the offer: returns the ID token of that sign-in. */
  async function enrolPasskey(tab: Tab, target: Rp, email: string): Promise<{ claims: JWTPayload; idToken: string }> {
    const flow = await startSignIn(tab, target);
    await signInWithPassword(tab, email);
    await heading(tab.page, 'Create a passkey for faster sign-in');
    await tab.page.getByRole('button', { name: 'Create a passkey', exact: true }).click();
    // the passkey is the account's first second factor: its recovery codes are shown once before the app
    await heading(tab.page, 'Save your recovery codes');
    expect(await tab.page.locator('ol.lk-codes code').count()).toBe(10);
    await tab.page.getByRole('button', { name: 'I have saved my codes', exact: true }).click();
    const landed = await landAtApp(tab, flow, email);
    expect(landed.claims.amr).toEqual(['pwd']);
    expect(statusesOf(tab, '/passkey/register/verify')).toEqual([200]);
    return landed;
  }

  /** RP-initiated logout: the end_session URL with the ID token as hint, then "Yes, sign me out". */
  async function signOut(tab: Tab, target: Rp, idToken: string): Promise<void> {
    const url = oidc.buildEndSessionUrl(target.config, { id_token_hint: idToken });
    expect((await tab.page.goto(url.href))?.status()).toBe(200);
    await heading(tab.page, /^Sign out of /);
    await tab.page.getByRole('button', { name: 'Yes, sign me out' }).click();
    await heading(tab.page, /^You have signed out/);
    expectCleanPages(tab);
  }

  // ---- Passkeys on one domain ---------------------------------------------------------------------

  describe('passkeys (default realm, RP ID localhost)', () => {
    it('enrols a passkey on the offer after a password sign-in, signs out, then signs in usernameless with "Sign in with a passkey" (amr user+mfa, acr loa:2)', async () => {
      const email = 'ada@example.test';
      await newUser('default', email);
      const tab = await openTab();
      const laptop = await tab.webauthn.add(PLATFORM_PASSKEY);
      const target = rp(server.issuer);

      const enrolled = await enrolPasskey(tab, target, email);
      // Chromium made a discoverable credential for RP ID "localhost"; it is the one the server stored
      const held = await tab.webauthn.credentials(laptop);
      expect(held).toHaveLength(1);
      expect(held[0]).toMatchObject({ isResidentCredential: true, rpId: 'localhost' });
      const stored = await storedCredentials('default', email);
      expect(stored.map((c) => ({ id: c.id, rpId: c.rpId, discoverable: c.discoverable }))).toEqual([{ id: base64url(held[0]!.credentialId), rpId: 'localhost', discoverable: true }]);

      await signOut(tab, target, enrolled.idToken);
      // (the session is gone: the next authorization request shows the sign-in page, not the app)

      const flow = await startSignInWithoutAutofill(tab, target, laptop);
      await tab.page.getByRole('button', { name: 'Sign in with a passkey', exact: true }).click();
      const { claims } = await landAtApp(tab, flow, email);
      expect(claims.sub).toBe(enrolled.claims.sub);
      expect(claims.amr).toEqual(expect.arrayContaining(['user', 'mfa']));
      expect(claims.amr).not.toContain('pwd');
      expect(claims.acr).toBe(LOA2);
      // the button replaced the pending autofill request; both used the (usernameless) options the page
      // came with, without an allow-list: no options request at all
      expect(modes(tab)).toEqual([]);
      expect(answersTo(tab, '/passkey/options')).toMatchObject([{ prepared: true, answer: { rpId: 'localhost', allowCredentials: [], userVerification: 'required' } }]);
      expect(statusesOf(tab, '/passkey/verify')).toEqual([200]);
      expect((await tab.webauthn.credentials(laptop))[0]!.signCount).toBeGreaterThan(held[0]!.signCount);
    });

    it('signs in from the email field\'s autofill: Chromium answers the conditional request with the passkey on its own, no button pressed', async () => {
      const email = 'grace@example.test';
      await newUser('default', email);
      const tab = await openTab();
      const laptop = await tab.webauthn.add(PLATFORM_PASSKEY);
      const target = rp(server.issuer);
      const enrolled = await enrolPasskey(tab, target, email);
      await tab.context.clearCookies(); // a later visit: no session

      // Chromium's virtual authenticator environment has no autofill list to click: with simulated presence
      // it answers a conditional request as soon as it is made, with the one discoverable credential for
      // the RP ID (turning presence on later does not complete a request already pending). So the sign-in
      // page completes by itself, through the autofill path of passkeys.js.
      expect((await tab.webauthn.credentials(laptop)).map((c) => c.rpId)).toEqual(['localhost']);
      const flow = await authorize(tab, target);
      const { claims } = await landAtApp(tab, flow, email);
      expect(claims.sub).toBe(enrolled.claims.sub);
      expect(claims.amr).toEqual(expect.arrayContaining(['user', 'mfa']));
      expect(claims.acr).toBe(LOA2);
      // nothing but the autofill request, with the options the page came with: no button ceremony, one verification
      expect(modes(tab)).toEqual([]);
      expect(answersTo(tab, '/passkey/options')).toMatchObject([{ prepared: true, answer: { rpId: 'localhost', allowCredentials: [] } }]);
      expect(statusesOf(tab, '/passkey/verify')).toEqual([200]);
    });

    it('identifier-first: a pending autofill request is cancelled cleanly by "Continue", then the passkey page (no password field) signs in with "Sign in with your passkey"', async () => {
      const email = 'katherine@example.test';
      await newUser('default', email);
      const tab = await openTab();
      const laptop = await tab.webauthn.add(PLATFORM_PASSKEY);
      const target = rp(server.issuer);
      const enrolled = await enrolPasskey(tab, target, email);
      await tab.context.clearCookies();

      // the autofill request is pending (the person types instead of picking the passkey)
      await tab.webauthn.setPresence(laptop, false);
      const flow = await startSignIn(tab, target);
      await expect.poll(() => getCalls(tab)).toEqual([{ mediation: 'conditional', aborted: false, outcome: 'pending' }]);
      // (with the options the page came with)
      expect(callsTo(tab, '/passkey/options')).toEqual([]);
      expect(answersTo(tab, '/passkey/options').map((a) => a.prepared)).toEqual([true]);

      await continueWithEmail(tab, email);
      await heading(tab.page, /^Sign in with your passkey/);
      // the email form's submission aborted the autofill request first, without any error on the way
      expect(JSON.parse((await tab.page.evaluate(() => sessionStorage.getItem('lk-gets-at-submit')))!)).toEqual([{ mediation: 'conditional', aborted: true, outcome: 'pending' }]);
      expect(callsTo(tab, '/passkey/verify')).toEqual([]);
      expectCleanPages(tab);
      expect((await tab.page.locator('.lk-identity-email').textContent())?.trim()).toBe(email);
      await expect(tab.page.getByLabel('Password').count()).resolves.toBe(0);
      await expect(tab.page.getByRole('link', { name: 'Use your password instead' }).isVisible()).resolves.toBe(true);

      await tab.webauthn.setPresence(laptop, true);
      await tab.page.getByRole('button', { name: 'Sign in with your passkey', exact: true }).click();
      const { claims } = await landAtApp(tab, flow, email);
      expect(claims.sub).toBe(enrolled.claims.sub);
      expect(claims.amr).toEqual(expect.arrayContaining(['user', 'mfa']));
      // identified: the options named this account's passkey
      expect(modes(tab)).toEqual(['identified']);
      const identified = answersTo(tab, '/passkey/options')[1]!.answer;
      expect(identified.allowCredentials.map((c: { id: string }) => c.id)).toEqual([base64url((await tab.webauthn.credentials(laptop))[0]!.credentialId)]);
    });
  });

  // ---- Second factors (realm with MFA required) ---------------------------------------------------

  describe('second factors (realm "strict", MFA required)', () => {
    const totpUser = { email: 'totp@strict.test', secret: '', enrolledStep: 0, recoveryCodes: [] as string[] };

    it('a USB security key: enrolled as the required second factor after the password, recovery codes, "Not now"; next time password + "Use your security key or passkey"', async () => {
      const email = 'key@strict.test';
      await newUser('strict', email);
      const tab = await openTab();
      await tab.webauthn.add(PLATFORM_PASSKEY); // the laptop's own authenticator is there too, but is not cross-platform
      const usbKey = await tab.webauthn.add(USB_SECURITY_KEY);
      const target = rp(issuerOf('strict'));

      const flow = await startSignIn(tab, target);
      await signInWithPassword(tab, email);
      await heading(tab.page, 'Add a second step to sign-in');
      await tab.page.getByRole('button', { name: 'Add a security key', exact: true }).click();
      await heading(tab.page, 'Save your recovery codes');
      await expect(tab.page.locator('ol.lk-codes li code').count()).resolves.toBe(10);
      const registration = answersTo(tab, '/passkey/register/options')[0]!.answer;
      expect(registration.authenticatorSelection).toMatchObject({ residentKey: 'discouraged', authenticatorAttachment: 'cross-platform' });
      await tab.page.getByRole('button', { name: 'I have saved my codes', exact: true }).click();
      await declinePasskeyOffer(tab);
      const first = await landAtApp(tab, flow, email);
      expect(first.claims.amr).toEqual(expect.arrayContaining(['pwd', 'hwk', 'mfa']));
      expect(first.claims.acr).toBe(LOA2);

      // the key holds a non-discoverable credential for RP ID strict.localhost, stored as a second factor
      const held = await tab.webauthn.credentials(usbKey);
      expect(held).toHaveLength(1);
      expect(held[0]).toMatchObject({ isResidentCredential: false, rpId: 'strict.localhost' });
      expect((await storedCredentials('strict', email)).map((c) => ({ id: c.id, discoverable: c.discoverable }))).toEqual([{ id: base64url(held[0]!.credentialId), discoverable: false }]);

      // the next sign-in (no session): password, then the key
      await tab.context.clearCookies();
      const next = await startSignIn(tab, target);
      await signInWithPassword(tab, email);
      await heading(tab.page, "Verify it's you");
      await tab.page.getByRole('button', { name: 'Use your security key or passkey', exact: true }).click();
      const second = await landAtApp(tab, next, email);
      expect(second.claims.sub).toBe(first.claims.sub);
      expect(second.claims.amr).toEqual(expect.arrayContaining(['pwd', 'hwk', 'mfa']));
      expect(second.claims.acr).toBe(LOA2);
      expect(modes(tab)).toEqual(['second-factor']);
      expect(answersTo(tab, '/passkey/options')[1]!.answer.allowCredentials.map((c: { id: string }) => c.id)).toEqual([base64url(held[0]!.credentialId)]);
      expect((await tab.webauthn.credentials(usbKey))[0]!.signCount).toBeGreaterThan(held[0]!.signCount);
    });

    it('TOTP: enrolled with the secret shown on the page, recovery codes shown once; a later sign-in with a fresh code', async () => {
      await newUser('strict', totpUser.email);
      const target = rp(issuerOf('strict'));
      const tab = await openTab();

      const flow = await startSignIn(tab, target);
      await signInWithPassword(tab, totpUser.email);
      await heading(tab.page, 'Add a second step to sign-in');
      await expect(tab.page.locator('figure.lk-qr svg').isVisible()).resolves.toBe(true);
      totpUser.secret = ((await tab.page.locator('.lk-secret code').textContent()) ?? '').replace(/\s+/g, '');
      expect(totpUser.secret).toMatch(/^[A-Z2-7]{16,}$/);
      totpUser.enrolledStep = stepOf(Date.now());
      await tab.page.getByLabel('Authentication code').fill(codeForStep(totpUser.secret, totpUser.enrolledStep));
      await tab.page.getByRole('button', { name: 'Verify and turn on', exact: true }).click();

      await heading(tab.page, 'Save your recovery codes');
      totpUser.recoveryCodes = await tab.page.locator('ol.lk-codes li code').allTextContents();
      expect(totpUser.recoveryCodes).toHaveLength(10);
      expect(new Set(totpUser.recoveryCodes).size).toBe(10);
      await tab.page.getByRole('button', { name: 'I have saved my codes', exact: true }).click();
      await declinePasskeyOffer(tab);
      const first = await landAtApp(tab, flow, totpUser.email);
      expect(first.claims.amr).toEqual(expect.arrayContaining(['pwd', 'otp', 'mfa']));
      expect(first.claims.acr).toBe(LOA2);

      // later, without a session: password, then a code the enrolment did not use
      await tab.context.clearCookies();
      const next = await startSignIn(tab, target);
      await signInWithPassword(tab, totpUser.email);
      await heading(tab.page, "Verify it's you");
      await expect(tab.page.getByRole('button', { name: 'Use your security key or passkey' }).count()).resolves.toBe(0); // no key enrolled
      await tab.page.getByLabel('Authentication code').fill(codeForStep(totpUser.secret, Math.max(totpUser.enrolledStep + 1, stepOf(Date.now()))));
      await tab.page.getByRole('button', { name: 'Verify', exact: true }).click();
      const second = await landAtApp(tab, next, totpUser.email);
      expect(second.claims.sub).toBe(first.claims.sub);
      expect(second.claims.amr).toEqual(expect.arrayContaining(['pwd', 'otp', 'mfa']));
      expect(second.claims.acr).toBe(LOA2);
    });

    it('a recovery code from the list shown at enrolment: "Use a recovery code" on the second-factor page', async () => {
      expect(totpUser.recoveryCodes, 'the TOTP test above enrols this user').toHaveLength(10);
      const target = rp(issuerOf('strict'));
      const tab = await openTab();
      const flow = await startSignIn(tab, target);
      await signInWithPassword(tab, totpUser.email);
      await heading(tab.page, "Verify it's you");
      await tab.page.getByText('Use a recovery code', { exact: true }).click(); // the <summary> unfolds the form
      await tab.page.getByLabel('Recovery code').fill(totpUser.recoveryCodes[3]!);
      await tab.page.getByRole('button', { name: 'Use recovery code', exact: true }).click();
      const { claims } = await landAtApp(tab, flow, totpUser.email);
      expect(claims.amr).toEqual(expect.arrayContaining(['pwd', 'otp', 'mfa']));
      expect(claims.acr).toBe(LOA2);
    });
  });

  // ---- One realm, two domains ---------------------------------------------------------------------

  describe('a realm on two domains', () => {
    it('without related origins: a passkey made on a.localhost is not offered on b.localhost, and the button there finds none', async () => {
      const email = 'ada@split.test';
      await newUser('split', email);
      const tab = await openTab();
      const laptop = await tab.webauthn.add(PLATFORM_PASSKEY);
      await enrolPasskey(tab, rp(issuerOf('a')), email);
      expect(await tab.webauthn.credentials(laptop)).toMatchObject([{ rpId: 'a.localhost', isResidentCredential: true }]);
      await tab.context.clearCookies();

      // on b, with presence on: a passkey for b.localhost would be taken from the autofill at once; the
      // browser has none for that RP ID and declines the conditional request, which the page takes quietly
      const onB = rp(issuerOf('b'));
      await startSignIn(tab, onB);
      await expect.poll(() => answersTo(tab, '/passkey/options')[0]?.answer).toMatchObject({ rpId: 'b.localhost', allowCredentials: [] });
      await expect.poll(() => getCalls(tab)).toEqual([{ mediation: 'conditional', aborted: false, outcome: 'NotAllowedError' }]);
      expect(new URL(tab.page.url()).origin).toBe(onB.issuer);
      expect(callsTo(tab, '/passkey/verify')).toEqual([]);
      expect(await tab.page.locator('#lk-error').textContent()).toBe('');

      // the button: Chromium has no credential for RP ID b.localhost, so the request fails in the browser
      await tab.page.getByRole('button', { name: 'Sign in with a passkey', exact: true }).click();
      const alert = tab.page.locator('#lk-error');
      await expect.poll(() => alert.textContent()).toBe('The passkey request was cancelled or timed out. Try again.');
      await expect(alert.isVisible()).resolves.toBe(true);
      // the button's request had the same (usernameless) options the page came with, unspent since nothing
      // was posted; afterwards the page arms the autofill again, with them still
      await expect.poll(async () => (await getCalls(tab)).map((c) => c.mediation)).toEqual(['conditional', 'optional', 'conditional']);
      expect(modes(tab)).toEqual([]);
      expect(answersTo(tab, '/passkey/options')).toMatchObject([{ prepared: true, answer: { rpId: 'b.localhost', allowCredentials: [] } }]);
      expect(callsTo(tab, '/passkey/verify')).toEqual([]); // nothing reached the server
      expect(new URL(tab.page.url()).origin).toBe(onB.issuer);
      await expect(tab.page.getByRole('button', { name: 'Sign in with a passkey', exact: true }).isEnabled()).resolves.toBe(true);
      expect(tab.seen.cspViolations).toEqual([]);

      // the same passkey still signs in on a.localhost
      const onA = rp(issuerOf('a'));
      const flow = await startSignInWithoutAutofill(tab, onA, laptop);
      await tab.page.getByRole('button', { name: 'Sign in with a passkey', exact: true }).click();
      const { claims } = await landAtApp(tab, flow, email);
      expect(claims.amr).toEqual(expect.arrayContaining(['user', 'mfa']));
    });

    describe('with related origins (Chromium fetches https://c.localhost/.well-known/webauthn)', () => {
      let rorBrowser: Browser | undefined;
      let wellKnown: HttpsServer | undefined;
      const wellKnownRequests: string[] = [];
      /** Off: the HTTPS server answers 404 for the list too. */
      let serveWellKnown = true;
      let unavailable: string | undefined;

      /**
       * Related Origin Requests fetch `https://<RP ID>/.well-known/webauthn` on port 443: a small HTTPS
       * server there (self-signed certificate made with openssl; Chromium started with
       * --ignore-certificate-errors) forwards that path to the realm's issuer on the test server.
       */
      beforeAll(async () => {
        let cert: { key: Buffer; cert: Buffer };
        try {
          const dir = mkdtempSync(join(tmpdir(), 'latchkey-ror-tls-'));
          execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-days', '1', '-subj', '/CN=c.localhost', '-addext', 'subjectAltName=DNS:c.localhost,DNS:d.localhost', '-keyout', join(dir, 'key.pem'), '-out', join(dir, 'cert.pem')], { stdio: 'pipe' });
          cert = { key: readFileSync(join(dir, 'key.pem')), cert: readFileSync(join(dir, 'cert.pem')) };
        } catch (err) {
          unavailable = `openssl could not make a certificate: ${(err as Error).message}`;
          return;
        }
        const httpsServer = createHttpsServer(cert, (req, res) => {
          const host = (req.headers.host ?? '').replace(/:\d+$/, '');
          wellKnownRequests.push(`${req.method} ${host}${req.url}`);
          if (!serveWellKnown || req.url !== '/.well-known/webauthn' || !host.endsWith('.localhost')) {
            res.writeHead(404).end();
            return;
          }
          testFetch(`http://${host}:${server.port}/.well-known/webauthn`).then(
            async (upstream) => {
              res.writeHead(upstream.status, { 'content-type': upstream.headers.get('content-type') ?? 'application/json' });
              res.end(Buffer.from(await upstream.arrayBuffer()));
            },
            () => res.writeHead(502).end(),
          );
        });
        try {
          await new Promise<void>((resolve, reject) => {
            httpsServer.once('error', reject);
            httpsServer.listen(443, '127.0.0.1', () => resolve());
          });
        } catch (err) {
          unavailable = `cannot listen on 127.0.0.1:443 (${(err as NodeJS.ErrnoException).code}): Related Origin Requests always use https on port 443`;
          return;
        }
        wellKnown = httpsServer;
        rorBrowser = await launchChromium(['--ignore-certificate-errors']);
      });

      afterAll(async () => {
        await rorBrowser?.close();
        await new Promise<void>((resolve) => (wellKnown ? wellKnown.close(() => resolve()) : resolve()));
      });

      afterEach(() => {
        serveWellKnown = true;
      });

      it('a passkey enrolled on d.localhost gets RP ID c.localhost and signs in on both c and d; without the list on c, d refuses it', async (ctx) => {
        if (unavailable) ctx.skip(unavailable);
        const email = 'ada@shared.test';
        await newUser('shared', email);
        const tab = await openTab(rorBrowser);
        const laptop = await tab.webauthn.add(PLATFORM_PASSKEY);
        const primary = rp(issuerOf('c'));
        const secondary = rp(issuerOf('d'));

        // enrolment on the secondary domain: the browser says it supports related origins, the server answers RP ID c.localhost
        await enrolPasskey(tab, secondary, email);
        expect(callsTo(tab, '/passkey/register/options').map((c) => c.body)).toEqual([{ relatedOrigins: true }]);
        expect(answersTo(tab, '/passkey/register/options')).toMatchObject([{ status: 200, answer: { rp: { id: 'c.localhost' } } }]);
        expect(wellKnownRequests).toContain('GET c.localhost/.well-known/webauthn');
        expect(await tab.webauthn.credentials(laptop)).toMatchObject([{ rpId: 'c.localhost', isResidentCredential: true }]);
        expect((await storedCredentials('shared', email)).map((c) => c.rpId)).toEqual(['c.localhost']);

        // on c the RP ID is the page's own domain; on d Chromium checks c.localhost's list first, every time
        for (const target of [primary, secondary]) {
          await tab.context.clearCookies();
          const fetchedBefore = wellKnownRequests.length;
          const flow = await startSignInWithoutAutofill(tab, target, laptop, target === secondary ? () => wellKnownRequests.length > fetchedBefore : undefined);
          await tab.page.getByRole('button', { name: 'Sign in with a passkey', exact: true }).click();
          const { claims } = await landAtApp(tab, flow, email);
          expect(claims.iss).toBe(target.issuer);
          expect(claims.amr).toEqual(expect.arrayContaining(['user', 'mfa']));
          // on c the page comes with its options; on d the RP ID depends on the browser, so the script asks
          // (for the autofill request, then for the button)
          const answers = answersTo(tab, '/passkey/options');
          if (target === primary) expect(answers.map((a) => [a.answer.rpId, Boolean(a.prepared)])).toEqual([['c.localhost', true]]);
          else expect(answers.map((a) => [a.answer.rpId, Boolean(a.prepared)])).toEqual([['c.localhost', false], ['c.localhost', false]]);
          if (target === primary) expect(wellKnownRequests.length).toBe(fetchedBefore);
          else expect(wellKnownRequests.length).toBeGreaterThan(fetchedBefore);
        }
        expect([...new Set(wellKnownRequests)]).toEqual(['GET c.localhost/.well-known/webauthn']);

        // control: without the list on c.localhost Chromium refuses RP ID c.localhost on d (SecurityError,
        // for the autofill request and for the button alike), so the sign-ins above really went through it
        serveWellKnown = false;
        await tab.context.clearCookies();
        await startSignIn(tab, secondary);
        await expect.poll(() => getCalls(tab)).toEqual([{ mediation: 'conditional', aborted: false, outcome: 'SecurityError' }]);
        await tab.page.getByRole('button', { name: 'Sign in with a passkey', exact: true }).click();
        await expect.poll(async () => (await getCalls(tab)).map((c) => `${c.mediation} ${c.outcome}`).slice(0, 2)).toEqual(['conditional SecurityError', 'optional SecurityError']);
        await expect.poll(() => tab.page.locator('#lk-error').textContent()).toBe('Something went wrong with the passkey. Try again.');
        expect(callsTo(tab, '/passkey/verify')).toEqual([]);
        expectCleanPages(tab);
      });
    });
  });
});
