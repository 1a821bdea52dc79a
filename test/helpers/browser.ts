import { existsSync } from 'node:fs';
import { chromium, type Browser, type ConsoleMessage, type Page } from 'playwright-core';
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

/** Launches headless Chromium with {@link CHROMIUM_ARGS}. */
export async function launchChromium(): Promise<Browser> {
  if (!chromiumAvailable) throw new Error(MISSING);
  return chromium.launch({
    executablePath: CHROMIUM_PATH,
    headless: true,
    args: CHROMIUM_ARGS,
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
