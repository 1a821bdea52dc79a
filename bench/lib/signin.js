// The password sign-in driver: complete authorization-code + PKCE flows, each like a new browser,
// run by a few concurrent workers for a fixed time. autocannon cannot follow redirects, keep cookies
// or read a CSRF token out of a page, so this walks the flow with undici directly:
//
//   GET  /auth?... (code, PKCE S256)  -> the sign-in page (Latchkey answers a browser navigation with
//        it directly; the bare provider redirects to it), setting the _interaction cookies
//   then, page after page, like a browser: GET the page, pick its sign-in form (the one with a
//   password field, else the one with an email field), fill email / password, keep the hidden fields
//   (csrf), POST it, follow the redirects. This covers a single email+password page as well as an
//   identifier-first flow (email page -> password page). It ends when a redirect leaves for the
//   client's redirect_uri with ?code=... (resume at /auth/<uid> sets _session on the way).
//   POST /token (code + code_verifier)  -> 200 with id_token and access_token
import { createHash, randomBytes } from 'node:crypto';
import { Pool } from 'undici';

/** The target of the driver: where to connect, which Host to send, the client and the user. */
export function createTarget({ origin, issuer, clientId, clientSecret, redirectUri, email, password, connections = 16 }) {
  return {
    origin,
    issuer,
    host: new URL(issuer).host,
    clientId,
    redirectUri,
    email,
    password,
    basic: `Basic ${Buffer.from(`${encodeURIComponent(clientId)}:${encodeURIComponent(clientSecret)}`).toString('base64')}`,
    pool: new Pool(origin, { connections, keepAliveTimeout: 60_000, pipelining: 1 }),
    /** HTTP requests sent so far (to report requests per flow). */
    requests: 0,
  };
}

export class FlowError extends Error {
  constructor(step, message) {
    super(`${step}: ${message}`);
    this.step = step;
  }
}

/** A minimal cookie jar for one flow (one "browser"); paths are ignored, which is harmless here. */
export class Jar {
  #cookies = new Map();

  header() {
    return [...this.#cookies].map(([k, v]) => `${k}=${v}`).join('; ');
  }

  store(setCookie) {
    if (!setCookie) return;
    for (const line of Array.isArray(setCookie) ? setCookie : [setCookie]) {
      const [pair, ...attrs] = line.split(';');
      const eq = pair.indexOf('=');
      const name = pair.slice(0, eq).trim();
      const value = pair.slice(eq + 1).trim();
      const expired = value === '' || attrs.some((a) => /^\s*expires=Thu, 01 Jan 1970/i.test(a) || /^\s*max-age=0\b/i.test(a));
      if (expired) this.#cookies.delete(name);
      else this.#cookies.set(name, value);
    }
  }
}

/**
 * What a browser adds to a navigation (following a link or redirect, submitting a form): Fetch Metadata.
 * Latchkey answers a navigation to /auth with the first sign-in page itself (no redirect to it); the bare
 * provider ignores these headers.
 */
export const NAVIGATION_HEADERS = { 'sec-fetch-dest': 'document', 'sec-fetch-mode': 'navigate', 'sec-fetch-site': 'same-origin', accept: 'text/html,application/xhtml+xml' };

/**
 * One HTTP request of a flow: Host, cookies in and out, a form or a JSON body; counts the request.
 * `navigation: true` sends it as a browser navigation would (NAVIGATION_HEADERS).
 */
export async function send(target, jar, step, path, { method = 'GET', form, json, headers = {}, navigation = false } = {}) {
  const h = { host: target.host, 'user-agent': 'latchkey-bench', ...(navigation ? NAVIGATION_HEADERS : {}), ...headers };
  const cookie = jar?.header();
  if (cookie) h.cookie = cookie;
  let body;
  if (form) {
    h['content-type'] = 'application/x-www-form-urlencoded';
    body = new URLSearchParams(form).toString();
  } else if (json !== undefined) {
    h['content-type'] = 'application/json';
    h.accept = 'application/json';
    body = JSON.stringify(json);
  }
  let res;
  target.requests++;
  target.onSend?.(step);
  try {
    res = await target.pool.request({ path, method, headers: h, body });
  } catch (err) {
    throw new FlowError(step, `request failed: ${err.code ?? err.message}`);
  }
  jar?.store(res.headers['set-cookie']);
  return res;
}

/** Turns a Location header into a path on the issuer, or returns the absolute URL when it leaves it. */
export function resolveLocation(target, location, step) {
  if (!location) throw new FlowError(step, 'redirect without Location');
  const url = new URL(location, target.issuer);
  if (url.origin === new URL(target.issuer).origin) return { path: `${url.pathname}${url.search}`, url };
  return { path: null, url };
}

export async function expectRedirect(res, step) {
  if (res.statusCode < 300 || res.statusCode >= 400) {
    const text = (await res.body.text()).slice(0, 300);
    throw new FlowError(step, `expected a redirect, got ${res.statusCode}: ${text.replace(/\s+/g, ' ')}`);
  }
  await res.body.dump();
  return res.headers.location;
}

/** The route of a path with the interaction uid blanked, for error messages: /interaction/<uid>/login. */
export const pathName = (path) => path.split('?', 1)[0].replace(/^\/(interaction|auth)\/[^/]+/, '/$1/<uid>');

const decode = (v) => v.replace(/&quot;/g, '"').replace(/&#39;/g, "'").replace(/&lt;/g, '<').replace(/&gt;/g, '>').replace(/&amp;/g, '&');
const attr = (tag, name) => {
  const m = new RegExp(`\\s${name}\\s*=\\s*"([^"]*)"`, 'i').exec(tag);
  return m ? decode(m[1]) : undefined;
};

/**
 * The form a person signing in with a password would fill on this page: POST forms only, cancel /
 * restart / passkey forms excluded; the one with a password field first, then one with an email field.
 */
function pickForm(html) {
  const forms = [];
  for (const m of html.matchAll(/<form\b([^>]*)>([\s\S]*?)<\/form>/gi)) {
    const action = attr(m[1], 'action');
    if (!action || (attr(m[1], 'method') ?? 'get').toLowerCase() !== 'post') continue;
    if (/\/(abort|restart|cancel)$|passkey/.test(action)) continue;
    const hidden = {};
    const inputs = new Set();
    for (const input of m[2].matchAll(/<input\b([^>]*)>/gi)) {
      const name = attr(input[1], 'name');
      if (!name) continue;
      inputs.add(name);
      if ((attr(input[1], 'type') ?? 'text').toLowerCase() === 'hidden') hidden[name] = attr(input[1], 'value') ?? '';
    }
    forms.push({ action, hidden, inputs });
  }
  return forms.find((f) => f.inputs.has('password')) ?? forms.find((f) => f.inputs.has('email')) ?? forms[0];
}

/** A new authorization request (code + PKCE S256): the /auth URL, its state and the code_verifier. */
export function authorization(target) {
  const verifier = randomBytes(32).toString('base64url');
  const challenge = createHash('sha256').update(verifier).digest('base64url');
  const state = randomBytes(12).toString('base64url');
  const query = new URLSearchParams({
    client_id: target.clientId,
    response_type: 'code',
    redirect_uri: target.redirectUri,
    scope: 'openid',
    state,
    code_challenge: challenge,
    code_challenge_method: 'S256',
  });
  return { url: new URL(`/auth?${query}`, target.issuer), state, verifier };
}

/** Checks the redirect back to the client (redirect URI, code, state) and exchanges the code at /token. */
export async function exchangeCode(target, auth, done, step) {
  if (!done.href.startsWith(target.redirectUri)) throw new FlowError(step, `redirected to ${done.href}`);
  const code = done.searchParams.get('code');
  if (!code) throw new FlowError(step, `no code: ${done.search}`);
  if (done.searchParams.get('state') !== auth.state) throw new FlowError(step, 'state mismatch');
  const res = await send(target, null, 'token', '/token', {
    method: 'POST',
    headers: { authorization: target.basic },
    form: { grant_type: 'authorization_code', code, redirect_uri: target.redirectUri, code_verifier: auth.verifier },
  });
  const text = await res.body.text();
  if (res.statusCode !== 200) throw new FlowError('token', `status ${res.statusCode}: ${text.slice(0, 200)}`);
  const tokens = JSON.parse(text);
  if (!tokens.id_token || !tokens.access_token) throw new FlowError('token', 'no id_token or access_token');
  return tokens;
}

/** One complete password sign-in: returns the token response; throws a FlowError naming the failing step. */
export async function signInOnce(target) {
  const jar = new Jar();
  const auth = authorization(target);

  // 1. authorize, then pages, form posts and redirects until a redirect to the redirect URI
  let step = 'authorize';
  let here = auth.url;
  let res = await send(target, jar, step, `${here.pathname}${here.search}`, { navigation: true });
  let done;
  for (let hops = 0; !done; hops++) {
    if (hops > 16) throw new FlowError(step, 'too many steps');
    if (res.statusCode >= 300 && res.statusCode < 400) {
      const next = resolveLocation(target, await expectRedirect(res, step), step);
      if (next.path === null) {
        done = next.url;
        break;
      }
      here = next.url;
      step = next.path.startsWith('/auth/') ? 'resume' : `GET ${pathName(next.path)}`;
      res = await send(target, jar, step, next.path, { navigation: true });
      continue;
    }
    const html = await res.body.text();
    if (res.statusCode !== 200) throw new FlowError(step, `status ${res.statusCode}: ${html.slice(0, 200).replace(/\s+/g, ' ')}`);
    const form = pickForm(html);
    if (!form) throw new FlowError(step, `no sign-in form on the page: ${html.slice(0, 200).replace(/\s+/g, ' ')}`);
    const fields = { ...form.hidden };
    if (form.inputs.has('email')) fields.email = target.email;
    if (form.inputs.has('password')) fields.password = target.password;
    here = new URL(form.action, here);
    step = `POST ${pathName(here.pathname)}`;
    res = await send(target, jar, step, `${here.pathname}${here.search}`, { method: 'POST', form: fields, navigation: true });
  }
  // 2. code exchange
  return exchangeCode(target, auth, done, step);
}

/**
 * Runs `concurrency` workers, each doing sign-ins back to back, until `durationMs` has passed
 * (flows under way then are finished and counted). Returns counts, the elapsed time and flow latencies.
 * `flow(target, worker)` is one whole flow (default: the password sign-in).
 */
export async function runSignIns(target, { concurrency, durationMs, onFlow, flow = signInOnce }) {
  const started = performance.now();
  const requests0 = target.requests;
  const deadline = started + durationMs;
  const latencies = [];
  const errorsByStep = {};
  const errorSamples = [];
  let completed = 0;
  let failed = 0;
  const worker = async (_, index) => {
    while (performance.now() < deadline) {
      const t0 = performance.now();
      try {
        await flow(target, index);
        latencies.push(performance.now() - t0);
        completed++;
        onFlow?.();
      } catch (err) {
        failed++;
        const step = err.step ?? 'unknown';
        errorsByStep[step] = (errorsByStep[step] ?? 0) + 1;
        if (errorSamples.length < 5) errorSamples.push(err.message);
        // do not spin on a broken server
        await new Promise((r) => setTimeout(r, 20));
      }
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  const requestsPerFlow = completed ? (target.requests - requests0) / (completed + failed) : null;
  return { completed, failed, errorsByStep, errorSamples, elapsedSeconds: (performance.now() - started) / 1000, latencies, requestsPerFlow };
}
