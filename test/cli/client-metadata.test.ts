import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { testFetch } from '../helpers/http.js';
import { startTestServer, type TestServer } from '../helpers/server.js';

/**
 * `client create` must refuse metadata that node-oidc-provider would reject when the client is used:
 * such a client was stored, printed with exit 0, and then every request of it ended on an error page
 * (invalid_redirect_uri, invalid_client_metadata).
 */
describe('latchkey client create: only clients the provider accepts are stored', () => {
  let server: TestServer;
  const clients = async () => Number(((await server.services.db('clients').count({ n: '*' })) as Array<{ n: number | string }>)[0]!.n);
  const create = (...args: string[]) => server.cli(['client', 'create', '--realm', 'default', '--name', 'App', ...args]);
  const authorize = (clientId: string, redirectUri: string, scope = 'openid') =>
    testFetch(
      `${server.issuer}/auth?${new URLSearchParams({
        client_id: clientId,
        response_type: 'code',
        scope,
        redirect_uri: redirectUri,
        code_challenge: 'E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM',
        code_challenge_method: 'S256',
      })}`,
      { redirect: 'manual' },
    );

  beforeAll(async () => {
    server = await startTestServer({ db: 'sqlite' });
  });
  afterAll(async () => server?.close());

  it('refuses what node-oidc-provider rejects, naming it, and writes nothing', async () => {
    const before = await clients();
    const cases: Array<[string[], RegExp]> = [
      [['--public', '--redirect-uri', 'com.example.app:/callback'], /com\.example\.app:\/callback/],
      [['--redirect-uri', 'https://app.example.test/cb', '--post-logout-redirect-uri', 'myapp:/signed-out'], /myapp:\/signed-out/],
      [['--redirect-uri', 'https://app.example.test/cb', '--scope', 'openid read'], /scope/],
      [['--redirect-uri', 'https://app.example.test/cb', '--auth-method', 'private_key_jwt', '--jwks', '{"keys":[]}', '--jwks-uri', 'https://app.example.test/jwks'], /jwks/],
    ];
    for (const [args, mention] of cases) {
      const res = await create(...args);
      expect(res.code, `${args.join(' ')}: ${res.stdout}`).not.toBe(0);
      expect(res.stdout).toBe('');
      expect(res.stderr).toMatch(mention);
      expect(res.stderr).not.toMatch(/^\s+at /m);
    }
    expect(await clients()).toBe(before);
  });

  it('a client it accepts is usable at the authorization endpoint', async () => {
    const res = await create('--public', '--redirect-uri', 'http://127.0.0.1:8765/callback', '--scope', 'openid email offline_access');
    expect(res.code, res.stderr).toBe(0);
    const answer = await authorize(res.json.client_id, 'http://127.0.0.1:8765/callback', 'openid email');
    expect(answer.status).toBe(303);
    expect(answer.headers.get('location')).toMatch(/\/interaction\//);
  });
});
