import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as oidc from 'openid-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { authorizationRequest, discover, PASSWORD, postForm, submitLogin } from '../helpers/flows.js';
import { Browser } from '../helpers/http.js';
import { testFetch } from '../helpers/http.js';
import { startTestServer, type TestServer } from '../helpers/server.js';

const REDIRECT = 'http://app.example.test/callback';
const dir = mkdtempSync(join(tmpdir(), 'latchkey-authz-faulty-'));
const modulePath = join(dir, 'module.mjs');
// the module's behaviour for the next decision, read from this file on every call
const modeFile = join(dir, 'mode.json');
writeFileSync(
  modulePath,
  `import { readFileSync } from 'node:fs';
  export function createAuthorizationModule(options) {
    const mode = (token) => { try { const m = JSON.parse(readFileSync(options.modeFile, 'utf8')); return m.token === undefined || m.token === token ? m.mode : 'ok'; } catch { return 'ok'; } };
    return {
      name: 'faulty',
      async onIssue(identity) {
        switch (mode(identity.token)) {
          case 'throw': throw new Error('database of the module is down (internal detail)');
          case 'undefined': return undefined;
          case 'string-allow': return { allow: 'false' };
          case 'claims-not-object': return { allow: true, claims: 'admin' };
          case 'reason-object': return { allow: false, reason: { nested: true } };
          default: return { allow: true };
        }
      },
      async check() {
        switch (mode('check')) {
          case 'throw': throw new Error('policy store unreachable (internal detail)');
          case 'string-false': return 'false';
          case 'object': return { allowed: false };
          default: return true;
        }
      },
    };
  }`,
);
const setMode = (mode: string, token?: string) => writeFileSync(modeFile, JSON.stringify({ mode, token }));

describe('an authorization module that throws or answers garbage gives an OAuth error, never a 500 and never a token', () => {
  let server: TestServer;
  let service: { id: string; secret: string };
  let web: { id: string; secret: string };
  let config: oidc.Configuration;

  beforeAll(async () => {
    server = await startTestServer({ overrides: { authorization: { module: modulePath, options: { modeFile } } } });
    const s = await server.cli(['client', 'create', '--realm', 'default', '--name', 'svc', '--grant', 'client_credentials']);
    expect(s.code, s.stderr).toBe(0);
    service = { id: s.json.client_id, secret: s.json.client_secret };
    const w = await server.cli(['client', 'create', '--realm', 'default', '--name', 'App', '--redirect-uri', REDIRECT, '--first-party']);
    expect(w.code, w.stderr).toBe(0);
    web = { id: w.json.client_id, secret: w.json.client_secret };
    const user = await server.cli(['user', 'create', '--realm', 'default', '--email', 'ada@example.test', '--password-stdin'], `${PASSWORD}\n`);
    expect(user.code, user.stderr).toBe(0);
    config = await discover(server.issuer, web.id, { client_secret: web.secret });
  });
  afterAll(async () => {
    await server?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  // each faulty answer, and what the client is told it was
  const FAULTS: Array<[string, RegExp]> = [
    ['throw', /authorization module "faulty" failed/],
    ['undefined', /authorization module "faulty" gave an invalid answer \(onIssue\(\) must resolve to an object/],
    ['string-allow', /"allow" must be true or false/],
    ['claims-not-object', /"claims" must be an object/],
    ['reason-object', /"reason" must be a string/],
  ];
  for (const [mode, said] of FAULTS) {
    it(`client_credentials: onIssue() answer "${mode}" gives access_denied naming the module, and no token`, async () => {
      setMode(mode);
      const res = await postForm(`${server.issuer}/token`, { grant_type: 'client_credentials' }, service);
      expect(res.status, JSON.stringify(res.body)).toBe(400);
      expect(res.body.error).toBe('access_denied');
      expect(res.body.error_description).toMatch(said);
      expect(res.body.error_description).not.toContain('internal detail');
      expect(res.body.access_token).toBeUndefined();
    });
  }

  for (const [mode, said] of FAULTS.slice(0, 3)) {
    it(`authorization_code: onIssue() answer "${mode}" for the ID token gives access_denied, and no tokens`, async () => {
      setMode('ok');
      const browser = new Browser();
      const auth = await authorizationRequest(config, REDIRECT, { scope: 'openid' });
      const login = await browser.follow(auth.url, {}, REDIRECT);
      const done = await submitLogin(browser, login, 'ada@example.test', PASSWORD, REDIRECT);
      setMode(mode, 'id_token');
      const res = await postForm(`${server.issuer}/token`, { grant_type: 'authorization_code', code: done.url.searchParams.get('code')!, redirect_uri: REDIRECT, code_verifier: auth.verifier }, web);
      expect(res.status, JSON.stringify(res.body)).toBe(400);
      expect(res.body.error).toBe('access_denied');
      expect(res.body.error_description).toMatch(said);
      expect(res.body.id_token).toBeUndefined();
      expect(res.body.access_token).toBeUndefined();
    });
  }

  it('admin API: a check() that throws or answers anything but true refuses with a 403, never a 500', async () => {
    setMode('ok');
    const admin = await server.services.clients.create({ realmId: 'default', name: 'ops', grants: ['client_credentials'], adminApi: true });
    const t = await postForm(`${server.issuer}/token`, { grant_type: 'client_credentials', resource: 'urn:latchkey:admin-api', scope: 'admin' }, { id: admin.client_id, secret: admin.client_secret! });
    expect(t.status, JSON.stringify(t.body)).toBe(200);
    const list = () => testFetch(`${server.issuer}/api/v1/users`, { headers: { authorization: `Bearer ${t.body.access_token}` } });
    expect((await list()).status).toBe(200);
    for (const mode of ['throw', 'string-false', 'object']) {
      setMode(mode, 'check');
      const res = await list();
      const body = (await res.json()) as any;
      expect(res.status, `${mode}: ${JSON.stringify(body)}`).toBe(403);
      expect(body.code).toBe('forbidden');
      expect(body.items).toBeUndefined();
    }
  });
});
