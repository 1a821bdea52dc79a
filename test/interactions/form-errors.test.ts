import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { authorizationRequest, discover } from '../helpers/flows.js';
import { Browser, parseForm, testFetch } from '../helpers/http.js';
import { startTestServer, type TestServer } from '../helpers/server.js';
import type * as oidc from 'openid-client';

const REDIRECT = 'http://app.example.test/cb';
/** What Chromium sends with a form submission (a top-level navigation). */
const BROWSER_ACCEPT = 'text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,*/*;q=0.8';

/**
 * A sign-in form posted in a way the server cannot read (a form with another enctype, a browser
 * extension rewriting it, an oversized or repeated field): the browser gets an error page saying what
 * went wrong, in the realm's page shell, not a raw JSON document. The passkey script's JSON endpoints
 * keep answering JSON.
 */
describe('sign-in form posts the server cannot read', () => {
  let server: TestServer;
  let config: oidc.Configuration;

  beforeAll(async () => {
    server = await startTestServer();
    const client = await server.cli(['client', 'create', '--realm', 'default', '--name', 'App', '--redirect-uri', REDIRECT, '--first-party']);
    expect(client.code, client.stderr).toBe(0);
    config = await discover(server.issuer, client.json.client_id, { client_secret: client.json.client_secret });
  });
  afterAll(async () => server?.close());

  async function emailStep() {
    const browser = new Browser();
    const auth = await authorizationRequest(config, REDIRECT);
    const start = await browser.follow(auth.url, {}, REDIRECT);
    const html = await start.res.text();
    const form = parseForm(html, '/identify"');
    return { browser, action: new URL(form.action, start.url), csrf: form.fields.csrf!, html };
  }

  const multipart = (csrf: string) => {
    const boundary = '----lkboundary';
    const part = (name: string, value: string) => `--${boundary}\r\nContent-Disposition: form-data; name="${name}"\r\n\r\n${value}\r\n`;
    return { type: `multipart/form-data; boundary=${boundary}`, body: `${part('csrf', csrf)}${part('email', 'grace@example.test')}--${boundary}--\r\n` };
  };

  it('answers a browser with an error page naming the problem: wrong content type, oversized form, repeated field', async () => {
    const step = await emailStep();
    const post = (contentType: string, body: string) =>
      testFetch(step.action, { method: 'POST', headers: { 'content-type': contentType, accept: BROWSER_ACCEPT, cookie: step.browser.cookieHeader(step.action) }, body, redirect: 'manual' });
    const csrf = encodeURIComponent(step.csrf);
    const m = multipart(step.csrf);
    for (const [label, res, status, text] of [
      ['multipart', await post(m.type, m.body), 415, /application\/x-www-form-urlencoded/],
      ['text/plain', await post('text/plain', `csrf=${csrf}&email=grace@example.test`), 415, /application\/x-www-form-urlencoded/],
      ['oversized', await post('application/x-www-form-urlencoded', `csrf=${csrf}&email=${'a'.repeat(20 * 1024)}%40example.test`), 413, /larger than/],
      ['over the server-wide limit', await post('application/x-www-form-urlencoded', `csrf=${csrf}&email=${'a'.repeat(70 * 1024)}`), 413, /limited to/],
      ['repeated', await post('application/x-www-form-urlencoded', `csrf=${csrf}&email=a%40example.test&email=b%40example.test`), 400, /more than once/],
    ] as const) {
      expect(res.status, label).toBe(status);
      expect(res.headers.get('content-type'), label).toContain('text/html');
      expect(res.headers.get('location'), label).toBeNull();
      const html = await res.text();
      expect(html, label).toMatch(/<h1[^>]*>[^<]+<\/h1>/);
      expect(html, label).toMatch(text);
      expect(html, label).toContain('<html');
    }
  });

  it('keeps JSON for the passkey script and for clients that ask for JSON', async () => {
    const step = await emailStep();
    const uid = /\/interaction\/([^/"?]+)/.exec(step.html)![1];
    const res = await testFetch(new URL(`/interaction/${uid}/passkey/options`, step.action), {
      method: 'POST',
      headers: { 'content-type': 'text/plain', accept: 'application/json', 'x-csrf-token': step.csrf, cookie: step.browser.cookieHeader(step.action) },
      body: '{}',
    });
    expect(res.status).toBe(415);
    expect(((await res.json()) as any).error).toBe('unsupported_media_type');
    const api = await testFetch(step.action, { method: 'POST', headers: { 'content-type': 'text/plain', accept: 'application/json', cookie: step.browser.cookieHeader(step.action) }, body: 'x' });
    expect(api.status).toBe(415);
    expect(((await api.json()) as any).error).toBe('unsupported_media_type');
  });
});
