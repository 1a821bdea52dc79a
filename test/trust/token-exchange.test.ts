import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { decodeJwt, jwtVerify } from 'jose';
import * as oidc from 'openid-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { describeEachDatabase } from '../helpers/databases.js';
import { discover, postForm, remoteJwks } from '../helpers/flows.js';
import { testFetch } from '../helpers/http.js';
import { startTestServer, type TestServer } from '../helpers/server.js';
import { startTestIssuer, type TestIssuer } from '../helpers/trusted-issuer.js';

const GRANT = 'urn:ietf:params:oauth:grant-type:token-exchange';
const JWT_TYPE = 'urn:ietf:params:oauth:token-type:jwt';
const ACCESS_TOKEN_TYPE = 'urn:ietf:params:oauth:token-type:access_token';
const API = 'https://api.ci.test';
const OTHER_API = 'https://reports.ci.test';
const AUD = 'https://gitlab.com/my-org';
// what GitLab CI puts in an ID token (id_tokens: with aud set by the job)
const GITLAB_CLAIMS = {
  sub: 'project_path:my-org/repo:ref_type:branch:ref:main',
  aud: AUD,
  namespace_path: 'my-org',
  project_path: 'my-org/repo',
  ref: 'main',
  ref_type: 'branch',
  pipeline_source: 'push',
};

interface Client {
  id: string;
  secret: string;
}

describeEachDatabase('RFC 8693 token exchange with a trusted JWT', (kind) => {
  let server: TestServer;
  let idp: TestIssuer;
  let issuer: string;
  let settingsDir: string;
  let exchanger: Client;
  let otherClient: Client;

  const cli = async (args: string[], stdin?: string) => {
    const r = await server.cli(args, stdin);
    expect(r.code, `${args.join(' ')}: ${r.stderr}`).toBe(0);
    return r.json;
  };
  const exchange = (form: Record<string, string>, auth: Client | null = exchanger) => postForm(`${issuer}/token`, { grant_type: GRANT, ...form }, auth ?? undefined);

  beforeAll(async () => {
    server = await startTestServer({ db: kind });
    idp = await startTestIssuer();
    issuer = `http://ci.localhost:${server.port}`;
    settingsDir = mkdtempSync(join(tmpdir(), 'latchkey-settings-'));
    const settingsFile = join(settingsDir, 'ci.json');
    writeFileSync(settingsFile, JSON.stringify({ defaultAudience: API, resources: [{ uri: API, scopes: ['deploy', 'read'] }, { uri: OTHER_API, scopes: ['report'] }] }));
    await cli(['realm', 'create', '--id', 'ci', '--name', 'CI', '--issuer', issuer, '--settings', settingsFile]);
    const added = await cli(['trust', 'add', '--realm', 'ci', '--sample-token-stdin', '--prefix', 'gitlab|'], await idp.mint(GITLAB_CLAIMS));
    expect(added).toMatchObject({ issuer: idp.issuer, audience: AUD, sample_user_id: `gitlab|${GITLAB_CLAIMS.sub}` });
    const c = await cli(['client', 'create', '--realm', 'ci', '--name', 'Deployer', '--grant', GRANT]);
    expect(c.grant_types).toEqual([GRANT]);
    exchanger = { id: c.client_id, secret: c.client_secret };
    const o = await cli(['client', 'create', '--realm', 'ci', '--name', 'Reports', '--grant', 'client_credentials']);
    otherClient = { id: o.client_id, secret: o.client_secret };
  });
  afterAll(async () => {
    await server?.close();
    await idp?.close();
    if (settingsDir) rmSync(settingsDir, { recursive: true, force: true });
  });

  it('lists the grant type in discovery', async () => {
    const res = await testFetch(`${issuer}/.well-known/openid-configuration`);
    expect((await res.json()).grant_types_supported).toContain(GRANT);
  });

  it('exchanges a trusted JWT for a realm access token for the computed user id (openid-client)', async () => {
    const config = await discover(issuer, exchanger.id, {}, oidc.ClientSecretBasic(exchanger.secret));
    const subjectToken = await idp.mint(GITLAB_CLAIMS);
    const res = await oidc.genericGrantRequest(config, GRANT, { subject_token: subjectToken, subject_token_type: JWT_TYPE, resource: API, scope: 'deploy' });
    expect(res.token_type.toLowerCase()).toBe('bearer');
    expect(res.issued_token_type).toBe(ACCESS_TOKEN_TYPE);
    expect(res.expires_in).toBeGreaterThan(0);
    expect(res.scope).toBe('deploy');
    const { payload, protectedHeader } = await jwtVerify(res.access_token, remoteJwks(issuer), { issuer, audience: API, typ: 'at+jwt' });
    expect(protectedHeader.alg).toBe('EdDSA');
    expect(payload.sub).toBe(`gitlab|${GITLAB_CLAIMS.sub}`);
    expect(payload.client_id).toBe(exchanger.id);
    expect(payload.scope).toBe('deploy');
    expect(payload.exp! - payload.iat!).toBe(res.expires_in);
  });

  it('uses the realm\'s default audience when no resource is given, and accepts audience= and the id_token type', async () => {
    const plain = await exchange({ subject_token: await idp.mint(GITLAB_CLAIMS), subject_token_type: JWT_TYPE });
    expect(plain.status, JSON.stringify(plain.body)).toBe(200);
    expect(decodeJwt(plain.body.access_token).aud).toBe(API);
    expect(plain.body.scope).toBeUndefined();

    const byAudience = await exchange({ subject_token: await idp.mint(GITLAB_CLAIMS), subject_token_type: 'urn:ietf:params:oauth:token-type:id_token', audience: OTHER_API, scope: 'report' });
    expect(byAudience.status, JSON.stringify(byAudience.body)).toBe(200);
    const { payload } = await jwtVerify(byAudience.body.access_token, remoteJwks(issuer), { issuer, audience: OTHER_API });
    expect(payload.scope).toBe('report');
  });

  describe('refuses bad requests with the right OAuth error, never a 500', () => {
    it('names a missing or unsupported parameter (invalid_request)', async () => {
      const subject = await idp.mint(GITLAB_CLAIMS);
      const cases: Array<[Record<string, string>, RegExp]> = [
        [{ subject_token_type: JWT_TYPE }, /subject_token"/],
        [{ subject_token: subject }, /subject_token_type/],
        [{ subject_token: subject, subject_token_type: 'urn:example:saml' }, /unsupported subject_token_type "urn:example:saml"/],
        [{ subject_token: subject, subject_token_type: JWT_TYPE, requested_token_type: 'urn:ietf:params:oauth:token-type:refresh_token' }, /requested_token_type/],
        [{ subject_token: subject, subject_token_type: JWT_TYPE, actor_token: subject, actor_token_type: JWT_TYPE }, /actor_token/],
      ];
      for (const [form, description] of cases) {
        const res = await exchange(form);
        expect(res.status, JSON.stringify(form)).toBe(400);
        expect(res.body.error).toBe('invalid_request');
        expect(res.body.error_description).toMatch(description);
      }
    });

    it('answers invalid_grant naming why the subject token was refused', async () => {
      const now = Math.floor(Date.now() / 1000);
      const stranger = await startTestIssuer();
      try {
        const cases: Array<[string, RegExp]> = [
          [await idp.mint({ ...GITLAB_CLAIMS, iat: now - 900, exp: now - 600 }), /expired/],
          [await idp.mint({ ...GITLAB_CLAIMS, aud: 'https://gitlab.com/someone-else' }), /audience/],
          [await stranger.mint(GITLAB_CLAIMS), /not trusted/],
          [await idp.mint({ ...GITLAB_CLAIMS, sub: undefined }), /\{sub\} is missing/],
          ['not-a-jwt', /not a JWT/],
        ];
        const [h, p, s] = (await idp.mint(GITLAB_CLAIMS)).split('.');
        const tamperedPayload = Buffer.from(JSON.stringify({ ...decodeJwt(`${h}.${p}.${s}`), sub: 'project_path:evil/repo:ref_type:branch:ref:main' })).toString('base64url');
        cases.push([`${h}.${tamperedPayload}.${s}`, /signature/]);
        for (const [subject, description] of cases) {
          const res = await exchange({ subject_token: subject, subject_token_type: JWT_TYPE });
          expect(res.status, subject).toBe(400);
          expect(res.body.error).toBe('invalid_grant');
          expect(res.body.error_description).toMatch(/^subject_token: /);
          expect(res.body.error_description).toMatch(description);
        }
      } finally {
        await stranger.close();
      }
    });

    it('answers invalid_target for an unknown resource and invalid_scope for a scope the resource does not offer', async () => {
      const subject = await idp.mint(GITLAB_CLAIMS);
      const target = await exchange({ subject_token: subject, subject_token_type: JWT_TYPE, resource: 'https://unknown.ci.test' });
      expect([target.status, target.body.error]).toEqual([400, 'invalid_target']);
      const both = await exchange({ subject_token: subject, subject_token_type: JWT_TYPE, resource: API, audience: OTHER_API });
      expect([both.status, both.body.error]).toEqual([400, 'invalid_target']);
      const scope = await exchange({ subject_token: subject, subject_token_type: JWT_TYPE, resource: API, scope: 'report' });
      expect([scope.status, scope.body.error]).toEqual([400, 'invalid_scope']);
      expect(scope.body.error_description).toMatch(/scope "report" is not offered by https:\/\/api.ci.test/);
    });

    it('answers unauthorized_client to a client without the grant and invalid_client without client authentication', async () => {
      const subject = await idp.mint(GITLAB_CLAIMS);
      const notAllowed = await exchange({ subject_token: subject, subject_token_type: JWT_TYPE }, otherClient);
      expect([notAllowed.status, notAllowed.body.error]).toEqual([400, 'unauthorized_client']);
      const anonymous = await exchange({ subject_token: subject, subject_token_type: JWT_TYPE, client_id: exchanger.id }, null);
      expect([anonymous.status, anonymous.body.error]).toEqual([401, 'invalid_client']);
      const wrongSecret = await exchange({ subject_token: subject, subject_token_type: JWT_TYPE }, { id: exchanger.id, secret: 'wrong' });
      expect([wrongSecret.status, wrongSecret.body.error]).toEqual([401, 'invalid_client']);
    });
  });

  it('refuses to create a public client with the token-exchange grant', async () => {
    const r = await server.cli(['client', 'create', '--realm', 'ci', '--name', 'Public', '--public', '--grant', GRANT]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/public client cannot use the token-exchange grant/);
  });
});
