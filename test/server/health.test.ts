import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { testFetch } from '../helpers/http.js';
import { startTestServer, type TestServer } from '../helpers/server.js';

describe('health and host routing', () => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startTestServer();
  });
  afterAll(async () => server?.close());

  it('answers /healthz and /readyz on any host, even one no realm serves', async () => {
    for (const host of [server.issuer, `http://unknown.localhost:${server.port}`]) {
      const health = await testFetch(`${host}/healthz`);
      expect(health.status).toBe(200);
      expect(await health.json()).toEqual({ status: 'ok' });
      const ready = await testFetch(`${host}/readyz`);
      expect(ready.status).toBe(200);
      expect(await ready.json()).toEqual({ status: 'ready' });
    }
  });

  it('gives an unknown host a 404 JSON error instead of the default realm', async () => {
    const res = await testFetch(`http://unknown.localhost:${server.port}/.well-known/openid-configuration`);
    expect(res.status).toBe(404);
    expect(res.headers.get('content-type')).toContain('application/json');
    expect(((await res.json()) as any).error).toBe('unknown_host');
  });

  it('echoes a sane X-Request-Id and replaces an unsafe one', async () => {
    const ok = await testFetch(`${server.issuer}/healthz`, { headers: { 'x-request-id': 'abc-123' } });
    expect(ok.headers.get('x-request-id')).toBe('abc-123');
    const bad = await testFetch(`${server.issuer}/healthz`, { headers: { 'x-request-id': 'a b<script>' } });
    expect(bad.headers.get('x-request-id')).not.toContain('<');
  });

  it('reports the database as unreachable when it is', async () => {
    const other = await startTestServer();
    await other.services.db.destroy();
    const res = await testFetch(`${other.issuer}/readyz`);
    expect(res.status).toBe(503);
    expect(((await res.json()) as any).error).toBe('database_unreachable');
    await other.server.close();
    await other.db.drop();
  });
});
