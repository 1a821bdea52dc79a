import { existsSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { chromium, type Browser, type CDPSession, type ConsoleMessage, type Locator, type Page } from 'playwright-core';
import { describe, it } from 'vitest';

/** Debian's Chromium (`apt-get install chromium`); `npx playwright install` is not used. */
export const CHROMIUM_PATH = process.env.LATCHKEY_TEST_CHROMIUM ?? '/usr/bin/chromium';

/**
 * No sandbox (tests run as root in containers), no GPU, no background traffic to Google, and every
 * `*.localhost` name (the realms' custom domains in the tests) resolved to the loopback address the
 * test server listens on.
 */
export const CHROMIUM_ARGS = [
  '--no-sandbox',
  '--disable-gpu',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--no-first-run',
  '--disable-quic',
  '--host-resolver-rules=MAP *.localhost 127.0.0.1',
];

/** CI is "set" unless empty, "0" or "false". */
export function inCi(): boolean {
  const ci = (process.env.CI ?? '').trim().toLowerCase();
  return ci !== '' && ci !== '0' && ci !== 'false';
}

export const chromiumAvailable = existsSync(CHROMIUM_PATH);

const MISSING = `Chromium is not installed at ${CHROMIUM_PATH} (install it with: apt-get update && apt-get install -y chromium)`;

if (!chromiumAvailable) {
  if (inCi()) console.error(`[latchkey tests] ${MISSING}: CI is set, so the browser suites FAIL instead of being skipped`);
  else console.warn(`[latchkey tests] ${MISSING}: skipping the browser (page) tests`);
}

/**
 * `describe` for suites that drive Chromium. Without Chromium: skipped with a console message on a
 * developer machine; on CI (env `CI` set) the suite is replaced by one failing test naming the problem,
 * so a CI image that lost its browser cannot pass silently.
 */
export function describeWithBrowser(name: string, body: () => void): void {
  if (chromiumAvailable) {
    describe(name, body);
  } else if (inCi()) {
    describe(name, () => {
      it('needs Chromium', () => {
        throw new Error(`${MISSING}. CI is set, so this is an error, not a skip.`);
      });
    });
  } else {
    describe.skip(name, body);
  }
}

/** Launches headless Chromium with {@link CHROMIUM_ARGS} (and `extraArgs`, e.g. `--ignore-certificate-errors`). */
export async function launchChromium(extraArgs: readonly string[] = []): Promise<Browser> {
  if (!chromiumAvailable) throw new Error(MISSING);
  return chromium.launch({
    executablePath: CHROMIUM_PATH,
    headless: true,
    args: [...CHROMIUM_ARGS, ...extraArgs],
    timeout: 60_000,
  });
}

/**
 * Watches a page: Content-Security-Policy violations reported on the console, other console errors
 * and uncaught page errors, and HTTP responses with an error status (with their URL, which the
 * console's "Failed to load resource" line does not give).
 */
export function watchConsole(page: Page): { cspViolations: string[]; errors: string[]; httpErrors: string[] } {
  const seen = { cspViolations: [] as string[], errors: [] as string[], httpErrors: [] as string[] };
  page.on('console', (msg: ConsoleMessage) => {
    const text = msg.text();
    if (/Content[- ]Security[- ]Policy/i.test(text)) seen.cspViolations.push(`${page.url()}: ${text}`);
    else if (msg.type() === 'error' && !/^Failed to load resource: the server responded with a status of/.test(text)) seen.errors.push(`${page.url()}: ${text}`);
  });
  page.on('pageerror', (err) => seen.errors.push(`${page.url()}: ${err.message}`));
  page.on('response', (res) => {
    if (res.status() >= 400) seen.httpErrors.push(`${res.status()} ${res.request().method()} ${new URL(res.url()).pathname}`);
  });
  return seen;
}

/** After a sign-in: "Not now" on the passkey offer when it comes before `next` shows. */
export async function declinePasskeyOffer(page: Page, next: Locator): Promise<void> {
  const offer = page.getByRole('button', { name: 'Not now', exact: true });
  await offer.or(next).first().waitFor();
  if (await offer.isVisible()) await offer.click();
}

/** Options of a CDP virtual authenticator (the subset the tests use; see the WebAuthn domain of the DevTools protocol). */
export interface VirtualAuthenticatorOptions {
  protocol: 'ctap2' | 'u2f';
  transport: 'usb' | 'nfc' | 'ble' | 'cable' | 'internal';
  hasResidentKey?: boolean;
  hasUserVerification?: boolean;
  isUserVerified?: boolean;
  /** Answers requests as if the user touched the authenticator (and, for conditional requests, picked the credential). */
  automaticPresenceSimulation?: boolean;
}

/** A platform authenticator (a laptop's built-in one): discoverable credentials and user verification, i.e. passkeys. */
export const PLATFORM_PASSKEY: VirtualAuthenticatorOptions = {
  protocol: 'ctap2',
  transport: 'internal',
  hasResidentKey: true,
  hasUserVerification: true,
  isUserVerified: true,
  automaticPresenceSimulation: true,
};

/** A roaming USB security key without resident keys or user verification (a plain second factor). */
export const USB_SECURITY_KEY: VirtualAuthenticatorOptions = {
  protocol: 'ctap2',
  transport: 'usb',
  hasResidentKey: false,
  hasUserVerification: false,
  automaticPresenceSimulation: true,
};

/** A credential as the virtual authenticator holds it (`credentialId` and `userHandle` are standard base64). */
export interface VirtualCredential {
  credentialId: string;
  isResidentCredential: boolean;
  rpId?: string;
  userHandle?: string;
  signCount: number;
}

export interface VirtualAuthenticators {
  cdp: CDPSession;
  /** Adds an authenticator to the page (its tab); returns its id. */
  add(options: VirtualAuthenticatorOptions): Promise<string>;
  /** Turns simulated user presence on or off (off: requests wait, as for a user who does nothing). */
  setPresence(authenticatorId: string, enabled: boolean): Promise<void>;
  credentials(authenticatorId: string): Promise<VirtualCredential[]>;
}

/** Chromium's WebAuthn virtual authenticator environment for one page (CDP `WebAuthn` domain, no browser UI). */
export async function virtualAuthenticators(page: Page): Promise<VirtualAuthenticators> {
  const cdp = await page.context().newCDPSession(page);
  await cdp.send('WebAuthn.enable', { enableUI: false });
  return {
    cdp,
    add: async (options) => (await cdp.send('WebAuthn.addVirtualAuthenticator', { options })).authenticatorId,
    setPresence: async (authenticatorId, enabled) => {
      await cdp.send('WebAuthn.setAutomaticPresenceSimulation', { authenticatorId, enabled });
    },
    credentials: async (authenticatorId) => (await cdp.send('WebAuthn.getCredentials', { authenticatorId })).credentials,
  };
}

/**
 * The relying party's side of a browser test: a real page on its own origin at `/callback` that shows
 * the query it received, so a flow ends on a rendered document (not a connection error).
 */
export async function startTestApp(): Promise<{ redirectUri: string; close(): Promise<void> }> {
  const escape = (s: string) => s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
  const server = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://127.0.0.1');
    if (url.pathname !== '/callback') {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('not found');
      return;
    }
    const rows = [...url.searchParams].map(([k, v]) => `<dt>${escape(k)}</dt><dd data-param="${escape(k)}">${escape(v)}</dd>`).join('');
    res.writeHead(200, { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-store' });
    res.end(`<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>Test app callback</title></head><body><h1>Callback received</h1><dl>${rows}</dl></body></html>`);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    redirectUri: `http://127.0.0.1:${(server.address() as AddressInfo).port}/callback`,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}
