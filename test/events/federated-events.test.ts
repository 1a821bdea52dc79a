import type * as oidc from 'openid-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { LatchkeyEvent } from '../../src/events/bus.js';
import { authorizationRequest, discover } from '../helpers/flows.js';
import { startGitHubStub, type OAuthStub } from '../helpers/github-stub.js';
import { Browser } from '../helpers/http.js';
import { startTestServer, type TestServer } from '../helpers/server.js';

const REDIRECT = 'http://app.example.test/callback';

// Every way a federated sign-in ends is on the bus: also the connection being switched off while the
// person was at the upstream provider, which ended on an error page with no event at all.
describe('federated sign-in events', () => {
  let server: TestServer;
  let stub: OAuthStub;
  let config: oidc.Configuration;
  let clientId: string;
  const events: LatchkeyEvent[] = [];
  let off: () => void;

  beforeAll(async () => {
    server = await startTestServer();
    stub = await startGitHubStub({ user: { login: 'octocat', id: 583231, name: 'The Octocat' }, emails: [{ email: 'octocat@work.test', primary: true, verified: true }] });
    const created = await server.cli(
      ['connection', 'create', '--realm', 'default', '--id', 'github', '--preset', 'github', '--base-url', stub.url, '--client-id', stub.clientId, '--client-secret-stdin'],
      `${stub.clientSecret}\n`,
    );
    expect(created.code, created.stderr).toBe(0);
    const rp = await server.cli(['client', 'create', '--realm', 'default', '--name', 'App', '--redirect-uri', REDIRECT, '--first-party']);
    expect(rp.code, rp.stderr).toBe(0);
    clientId = rp.json.client_id;
    config = await discover(server.issuer, clientId, { client_secret: rp.json.client_secret });
    off = server.services.events.on('*', (e) => void events.push(e));
  });
  afterAll(async () => {
    off?.();
    await server?.close();
    await stub?.close();
  });

  it('a connection switched off while the person was at the provider: a failure naming it, never the upstream code', async () => {
    const browser = new Browser();
    const auth = await authorizationRequest(config, REDIRECT);
    const page = await browser.follow(auth.url, {}, REDIRECT);
    const link = /<a class="[^"]*lk-connection" href="([^"]+)"/.exec(await page.res.text());
    expect(link).not.toBeNull();
    // stop at GitHub's authorize page
    const atUpstream = await browser.follow(new URL(link![1]!.replace(/&amp;/g, '&'), page.url), {}, stub.url);
    expect(atUpstream.url.href.startsWith(stub.url)).toBe(true);

    await server.services.connections.setEnabled('default', 'github', false);
    const before = events.length;
    const back = await browser.follow(atUpstream.url, {}, REDIRECT);
    expect(back.res.status).toBe(404);
    expect(await back.res.text()).toContain('Sign-in option not available');

    const mine = events.slice(before);
    expect(mine.map((e) => [e.type, e.method, e.reason, e.connectionId, e.clientId])).toEqual([['signin.failure', 'federated', 'unknown_connection', 'github', clientId]]);
    const code = back.url.searchParams.get('code');
    expect(code).toBeTruthy();
    expect(JSON.stringify(mine)).not.toContain(code!);
  });
});
