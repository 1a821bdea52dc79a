// A bare node-oidc-provider, configured like a Latchkey realm, used as the benchmark's baseline.
//
// Started by bench/run.js as a child process. Settings come from the BENCH_BARE environment
// variable (JSON): { port, issuer, audience, cookieKey, ccClient: {id, secret},
// webClient: {id, secret, redirectUri}, user: {id, email, password}, argon2: {memoryCost, timeCost, parallelism} }.
// It prints one JSON line `{"ready":true,...}` on stdout once it listens.
//
// What it mirrors from Latchkey (src/oidc/provider-factory.ts): the same key types in the same order
// (Ed25519 first, then RSA 2048 and P-256), signed cookies, client_secret_basic clients, PKCE,
// client_credentials, resource indicators issuing EdDSA-signed JWT access tokens for one audience,
// a first-party grant (no consent page), devInteractions off and a login form with a CSRF token whose
// POST runs one argon2id verification with the same parameters. What it leaves out is what Latchkey
// adds: the database (this uses oidc-provider's in-memory adapter and static clients), realms,
// brute-force throttling, the request log, security headers, templates and the authorization module.
import { createHmac, generateKeyPairSync, randomBytes, timingSafeEqual } from 'node:crypto';
import { createServer } from 'node:http';
import { parse as parseQuery } from 'node:querystring';
import argon2 from 'argon2';
import Provider, { errors } from 'oidc-provider';

const cfg = JSON.parse(process.env.BENCH_BARE ?? 'null');
if (!cfg) {
  process.stderr.write('bare-provider: BENCH_BARE (JSON settings) is required; run it through bench/run.js\n');
  process.exit(2);
}

function keyJwk(kind) {
  const kid = `${kind}-${randomBytes(18).toString('base64url')}`;
  let pair;
  let alg;
  if (kind === 'eddsa') {
    pair = generateKeyPairSync('ed25519');
    alg = 'EdDSA';
  } else if (kind === 'rsa') {
    pair = generateKeyPairSync('rsa', { modulusLength: 2048 });
  } else {
    pair = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    alg = 'ES256';
  }
  return { ...pair.privateKey.export({ format: 'jwk' }), kid, use: 'sig', ...(alg ? { alg } : {}) };
}

const SIGNING = ['EdDSA', 'RS256', 'PS256', 'ES256'];
const TTL = 3600;
const csrfKey = randomBytes(32);
const csrfToken = (uid) => createHmac('sha256', csrfKey).update(`interaction:${uid}`).digest('base64url');
const csrfValid = (uid, candidate) => {
  if (typeof candidate !== 'string') return false;
  const a = Buffer.from(csrfToken(uid));
  const b = Buffer.from(candidate);
  return a.length === b.length && timingSafeEqual(a, b);
};

const user = {
  id: cfg.user.id,
  email: cfg.user.email,
  passwordHash: await argon2.hash(cfg.user.password.normalize('NFKC'), { type: argon2.argon2id, ...cfg.argon2 }),
};

const provider = new Provider(cfg.issuer, {
  clients: [
    {
      client_id: cfg.ccClient.id,
      client_secret: cfg.ccClient.secret,
      client_name: 'bench',
      grant_types: ['client_credentials'],
      response_types: [],
      redirect_uris: [],
      token_endpoint_auth_method: 'client_secret_basic',
    },
    {
      client_id: cfg.webClient.id,
      client_secret: cfg.webClient.secret,
      client_name: 'bench web',
      grant_types: ['authorization_code', 'refresh_token'],
      response_types: ['code'],
      redirect_uris: [cfg.webClient.redirectUri],
      token_endpoint_auth_method: 'client_secret_basic',
    },
  ],
  jwks: { keys: [keyJwk('eddsa'), keyJwk('rsa'), keyJwk('ec')] },
  findAccount: async (_ctx, sub) =>
    sub === user.id ? { accountId: user.id, claims: async () => ({ sub: user.id, email: user.email, email_verified: true }) } : undefined,
  claims: { openid: ['sub'], email: ['email', 'email_verified'], profile: ['name', 'picture', 'updated_at'] },
  scopes: ['openid', 'offline_access', 'email', 'profile'],
  responseTypes: ['code'],
  pkce: { required: (_ctx, client) => client.clientAuthMethod === 'none' },
  rotateRefreshToken: true,
  conformIdTokenClaims: false,
  cookies: {
    keys: [cfg.cookieKey],
    long: { httpOnly: true, sameSite: 'lax', signed: true },
    short: { httpOnly: true, sameSite: 'lax', signed: true },
  },
  clientDefaults: {
    grant_types: ['authorization_code'],
    response_types: ['code'],
    token_endpoint_auth_method: 'client_secret_basic',
    id_token_signed_response_alg: 'EdDSA',
  },
  enabledJWA: {
    idTokenSigningAlgValues: SIGNING,
    userinfoSigningAlgValues: SIGNING,
    introspectionSigningAlgValues: SIGNING,
    authorizationSigningAlgValues: SIGNING,
    requestObjectSigningAlgValues: SIGNING,
    clientAuthSigningAlgValues: SIGNING,
  },
  ttl: {
    AccessToken: TTL,
    AuthorizationCode: 60,
    ClientCredentials: TTL,
    DeviceCode: 600,
    IdToken: TTL,
    Interaction: TTL,
    Session: 14 * 24 * 3600,
    Grant: 14 * 24 * 3600,
    RefreshToken: 14 * 24 * 3600,
  },
  interactions: { url: (_ctx, interaction) => `/interaction/${interaction.uid}` },
  features: {
    devInteractions: { enabled: false },
    clientCredentials: { enabled: true },
    introspection: { enabled: true },
    revocation: { enabled: true },
    userinfo: { enabled: true },
    resourceIndicators: {
      enabled: true,
      defaultResource: async (ctx, _client, oneOf) => {
        if (oneOf) return oneOf;
        if (ctx.oidc.route === 'token' && ctx.oidc.params?.grant_type === 'client_credentials') return cfg.audience;
        return undefined;
      },
      useGrantedResource: async () => true,
      getResourceServerInfo: async (_ctx, indicator) => {
        if (indicator !== cfg.audience) throw new errors.InvalidTarget(`unknown resource ${indicator}`);
        return { audience: cfg.audience, scope: '', accessTokenTTL: TTL, accessTokenFormat: 'jwt', jwt: { sign: { alg: 'EdDSA' } } };
      },
    },
  },
  // First-party semantics, as Latchkey gives first-party clients: whatever is asked for is granted, no consent page.
  loadExistingGrant: async (ctx) => {
    const client = ctx.oidc.client;
    const grantId = ctx.oidc.result?.consent?.grantId || ctx.oidc.session.grantIdFor(client.clientId);
    let grant = grantId ? await ctx.oidc.provider.Grant.find(grantId) : undefined;
    const accountId = ctx.oidc.session.accountId;
    if (!accountId) return grant;
    grant ??= new ctx.oidc.provider.Grant({ clientId: client.clientId, accountId });
    const scope = String(ctx.oidc.params?.scope ?? '');
    if (scope) grant.addOIDCScope(scope);
    await grant.save();
    return grant;
  },
});
provider.on('server_error', (_ctx, err) => process.stderr.write(`bare-provider: server_error ${err?.stack ?? err}\n`));

const escapeHtml = (s) => String(s).replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]);

function loginPage(res, uid, status = 200, error = '') {
  const html = `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Sign in</title></head><body>
<h1>Sign in</h1>${error ? `<p role="alert">${escapeHtml(error)}</p>` : ''}
<form method="post" action="/interaction/${escapeHtml(uid)}/login">
<input type="hidden" name="csrf" value="${csrfToken(uid)}">
<label>Email <input name="email" type="email" required></label>
<label>Password <input name="password" type="password" required></label>
<button type="submit">Sign in</button>
</form></body></html>`;
  res.writeHead(status, { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-store' });
  res.end(html);
}

async function readForm(req) {
  const chunks = [];
  let size = 0;
  for await (const chunk of req) {
    size += chunk.length;
    if (size > 16 * 1024) throw new Error('form too large');
    chunks.push(chunk);
  }
  return parseQuery(Buffer.concat(chunks).toString('utf8'));
}

function plain(res, status, text) {
  res.writeHead(status, { 'content-type': 'text/plain; charset=utf-8' });
  res.end(text);
}

const INTERACTION = /^\/interaction\/([A-Za-z0-9_-]+)(\/login)?$/;
const oidc = provider.callback();

async function interaction(req, res, uid, isLogin) {
  let details;
  try {
    details = await provider.interactionDetails(req, res);
    if (details.uid !== uid) throw new Error('interaction mismatch');
  } catch {
    return plain(res, 400, 'sign-in expired');
  }
  if (!isLogin) {
    if (req.method !== 'GET') return plain(res, 405, 'method not allowed');
    if (details.prompt.name !== 'login') return plain(res, 400, `unsupported prompt ${details.prompt.name}`);
    return loginPage(res, uid);
  }
  if (req.method !== 'POST') return plain(res, 405, 'method not allowed');
  const form = await readForm(req);
  if (!csrfValid(uid, form.csrf)) return plain(res, 403, 'csrf');
  if (details.prompt.name !== 'login') return plain(res, 400, 'wrong step');
  const email = String(form.email ?? '').trim();
  const password = String(form.password ?? '').normalize('NFKC');
  let ok = false;
  try {
    ok = await argon2.verify(user.passwordHash, password);
  } catch {
    ok = false;
  }
  if (!ok || email.toLowerCase() !== user.email.toLowerCase()) return loginPage(res, uid, 401, 'Incorrect email or password.');
  await provider.interactionFinished(req, res, { login: { accountId: user.id, amr: ['pwd'], acr: 'urn:latchkey:loa:1', remember: true } }, { mergeWithLastSubmission: false });
}

const server = createServer((req, res) => {
  const path = req.url.split('?', 1)[0];
  const m = INTERACTION.exec(path);
  if (!m) return oidc(req, res);
  interaction(req, res, m[1], Boolean(m[2])).catch((err) => {
    process.stderr.write(`bare-provider: interaction error ${err?.stack ?? err}\n`);
    if (!res.headersSent) plain(res, 500, 'error');
    else res.destroy();
  });
});
server.keepAliveTimeout = 65_000;

server.listen(cfg.port, '127.0.0.1', () => {
  process.stdout.write(`${JSON.stringify({ ready: true, port: server.address().port, pid: process.pid })}\n`);
});

const stop = () => server.close(() => process.exit(0)) && server.closeAllConnections();
process.once('SIGTERM', stop);
process.once('SIGINT', stop);
