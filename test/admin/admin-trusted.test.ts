import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { postForm } from '../helpers/flows.js';
import { testFetch } from '../helpers/http.js';
import { startTestServer, type TestServer } from '../helpers/server.js';
import { startTestIssuer, type TestIssuer } from '../helpers/trusted-issuer.js';

// A CI job (GitLab's id_tokens shape) manages the realm with its own identity token: no stored secret.
const AUDIENCE = 'https://latchkey.corp.test';
const MAIN = 'project_path:my-org/infra:ref_type:branch:ref:main';
const FORK = 'project_path:someone/infra-fork:ref_type:branch:ref:main';

describe('admin API called with a trusted identity token', () => {
  let server: TestServer;
  let ci: TestIssuer;
  let adminToken: string;

  const api = async (path: string, token: string, init: { method?: string; body?: unknown } = {}) => {
    const headers: Record<string, string> = { authorization: `Bearer ${token}` };
    if (init.body !== undefined) headers['content-type'] = 'application/json';
    const res = await testFetch(`${server.issuer}/api/v1${path}`, { method: init.method ?? 'GET', headers, body: init.body === undefined ? undefined : JSON.stringify(init.body) });
    const text = await res.text();
    return { status: res.status, body: text ? JSON.parse(text) : undefined };
  };
  const ciToken = (sub: string, extra: Record<string, unknown> = {}) =>
    ci.mint({ sub, aud: AUDIENCE, project_path: sub.split(':')[1], ref: 'main', ref_type: 'branch', ...extra });

  beforeAll(async () => {
    server = await startTestServer();
    ci = await startTestIssuer();
    const c = await server.services.clients.create({ realmId: 'default', name: 'bootstrap', grants: ['client_credentials'], adminApi: true });
    const r = await postForm(`${server.issuer}/token`, { grant_type: 'client_credentials', resource: 'urn:latchkey:admin-api', scope: 'admin' }, { id: c.client_id, secret: c.client_secret! });
    expect(r.status, JSON.stringify(r.body)).toBe(200);
    adminToken = r.body.access_token;
  });
  afterAll(async () => {
    await server?.close();
    await ci?.close();
  });

  it('registers the CI issuer from a sample token through the admin API, checking the expression on it', async () => {
    const broken = await api('/trusted-identities', adminToken, { method: 'POST', body: { sample_token: await ciToken(MAIN), user_id_expression: '{pipeline_id}' } });
    expect(broken.status, JSON.stringify(broken.body)).toBe(400);
    expect(broken.body.detail).toMatch(/pipeline_id/);
    expect((await api('/trusted-identities', adminToken)).body.items).toEqual([]);

    const created = await api('/trusted-identities', adminToken, {
      method: 'POST',
      body: { id: 'gitlab-ci', sample_token: await ciToken(MAIN), prefix: 'gitlab|', admin_user_ids: [`gitlab|${MAIN}`] },
    });
    expect(created.status, JSON.stringify(created.body)).toBe(201);
    expect(created.body).toMatchObject({ id: 'gitlab-ci', issuer: ci.issuer, audience: AUDIENCE, user_id_expression: '{sub}', sample_user_id: `gitlab|${MAIN}` });
  });

  it('lets the admin CI identity call the API with its own JWT, and nobody else', async () => {
    const asCi = await ciToken(MAIN);
    const list = await api('/users', asCi);
    expect(list.status, JSON.stringify(list.body)).toBe(200);
    const created = await api('/users', asCi, { method: 'POST', body: { email: 'deploy-bot@corp.test', name: 'Deploy bot' } });
    expect(created.status).toBe(201);

    const fork = await api('/users', await ciToken(FORK));
    expect(fork.status).toBe(403);
    expect(fork.body.detail).toContain(`gitlab|${FORK}`);

    const expired = await api('/users', await ciToken(MAIN, { iat: Math.floor(Date.now() / 1000) - 7200, exp: Math.floor(Date.now() / 1000) - 3600 }));
    expect(expired.status).toBe(401);
    const wrongAudience = await api('/users', await ciToken(MAIN, { aud: 'https://elsewhere.test' }));
    expect(wrongAudience.status).toBe(401);
    const [h, p, s] = asCi.split('.');
    const tampered = `${h}.${Buffer.from(JSON.stringify({ ...JSON.parse(Buffer.from(p!, 'base64url').toString()), sub: FORK })).toString('base64url')}.${s}`;
    expect((await api('/users', tampered)).status).toBe(401);
    const stranger = await startTestIssuer();
    try {
      expect((await api('/users', await stranger.mint({ sub: MAIN, aud: AUDIENCE }))).status).toBe(401);
    } finally {
      await stranger.close();
    }
  });

  it('refuses the CI identity once its issuer is no longer trusted', async () => {
    expect((await api('/trusted-identities/gitlab-ci', adminToken, { method: 'DELETE' })).status).toBe(204);
    const after = await api('/users', await ciToken(MAIN));
    expect(after.status).toBe(401);
  });
});
