import { createHash, randomBytes } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface StubEmail {
  email: string;
  primary: boolean;
  verified: boolean;
  visibility?: string | null;
}

/** Who is "signed in" at the stub: the /user document and the /user/emails list. */
export interface StubAccount {
  user: Record<string, unknown>;
  emails: StubEmail[];
}

export interface OAuthStub {
  /** http://127.0.0.1:PORT (web endpoints at /login/oauth/*, API at /api/v3/*, like GitHub Enterprise). */
  url: string;
  clientId: string;
  clientSecret: string;
  /** The account the next authorization approves; `deny` answers access_denied instead. */
  account: StubAccount;
  deny: boolean;
  /** Every request the stub saw (method, path, headers), for assertions. */
  requests: Array<{ method: string; path: string; headers: IncomingMessage['headers']; body?: URLSearchParams }>;
  close(): Promise<void>;
}

async function readBody(req: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of req) chunks.push(c as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

function send(res: ServerResponse, status: number, body: unknown, type = 'application/json; charset=utf-8'): void {
  res.writeHead(status, { 'content-type': type });
  res.end(typeof body === 'string' ? body : JSON.stringify(body));
}

/**
 * A local stand-in for GitHub's documented OAuth web flow and REST endpoints:
 * - GET  /login/oauth/authorize   redirects back to redirect_uri with code and state (or error=access_denied)
 * - POST /login/oauth/access_token  form body; answers JSON when `Accept: application/json`, form-encoded
 *   otherwise; a bad code is HTTP 200 with `error=bad_verification_code` (as GitHub does)
 * - GET  /api/v3/user and /api/v3/user/emails  need `Authorization: Bearer|token <token>` and a User-Agent
 */
export async function startGitHubStub(account: StubAccount): Promise<OAuthStub> {
  const codes = new Map<string, { redirectUri: string; challenge?: string; account: StubAccount }>();
  const tokens = new Map<string, StubAccount>();
  const stub: OAuthStub = {
    url: '',
    clientId: `Iv1.${randomBytes(8).toString('hex')}`,
    clientSecret: randomBytes(20).toString('hex'),
    account,
    deny: false,
    requests: [],
    close: async () => new Promise<void>((resolve) => server.close(() => resolve())),
  };

  const server: Server = createServer(async (req, res) => {
    const url = new URL(req.url ?? '/', 'http://stub');
    const raw = req.method === 'POST' ? await readBody(req) : undefined;
    const body = raw === undefined ? undefined : new URLSearchParams(raw);
    stub.requests.push({ method: req.method ?? 'GET', path: url.pathname, headers: req.headers, body });

    if (req.method === 'GET' && url.pathname === '/login/oauth/authorize') {
      const redirectUri = url.searchParams.get('redirect_uri');
      if (url.searchParams.get('client_id') !== stub.clientId || !redirectUri) return send(res, 400, 'unknown client', 'text/plain');
      const back = new URL(redirectUri);
      const state = url.searchParams.get('state');
      if (stub.deny) {
        back.searchParams.set('error', 'access_denied');
        back.searchParams.set('error_description', 'The user has denied your application access.');
      } else {
        const code = randomBytes(10).toString('hex');
        codes.set(code, { redirectUri, challenge: url.searchParams.get('code_challenge') ?? undefined, account: stub.account });
        back.searchParams.set('code', code);
      }
      if (state) back.searchParams.set('state', state);
      res.writeHead(302, { location: back.href });
      return res.end();
    }

    if (req.method === 'POST' && url.pathname === '/login/oauth/access_token') {
      const json = (req.headers.accept ?? '').includes('application/json');
      const answer = (payload: Record<string, string>) => (json ? send(res, 200, payload) : send(res, 200, new URLSearchParams(payload).toString(), 'application/x-www-form-urlencoded'));
      if (body?.get('client_id') !== stub.clientId || body?.get('client_secret') !== stub.clientSecret) {
        return answer({ error: 'incorrect_client_credentials', error_description: 'The client_id and/or client_secret passed are incorrect.' });
      }
      const code = body.get('code') ?? '';
      const grant = codes.get(code);
      codes.delete(code);
      const verifier = body.get('code_verifier');
      const pkceOk = !grant?.challenge || (verifier && createHash('sha256').update(verifier).digest('base64url') === grant.challenge);
      if (!grant || grant.redirectUri !== body.get('redirect_uri') || !pkceOk) {
        return answer({ error: 'bad_verification_code', error_description: 'The code passed is incorrect or expired.' });
      }
      const token = `gho_${randomBytes(16).toString('hex')}`;
      tokens.set(token, grant.account);
      return answer({ access_token: token, token_type: 'bearer', scope: 'read:user,user:email' });
    }

    if (req.method === 'GET' && (url.pathname === '/api/v3/user' || url.pathname === '/api/v3/user/emails')) {
      if (!req.headers['user-agent']) return send(res, 403, { message: 'Request forbidden by administrative rules. Please make sure your request has a User-Agent header.' });
      const m = /^(?:Bearer|token) (\S+)$/i.exec(req.headers.authorization ?? '');
      const who = m ? tokens.get(m[1]!) : undefined;
      if (!who) return send(res, 401, { message: 'Requires authentication', documentation_url: 'https://docs.github.com/rest' });
      return send(res, 200, url.pathname.endsWith('/emails') ? who.emails : who.user);
    }

    send(res, 404, { message: 'Not Found' });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  stub.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return stub;
}
