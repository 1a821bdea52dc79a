// The passkey sign-in driver (Latchkey only: the bare provider has no passkeys). The authenticator is
// the Node software authenticator the tests use (src/testing/soft-authenticator.ts, compiled by
// `npm run build` to dist/testing/soft-authenticator.js): real key pairs, real signatures, real CBOR,
// and the JSON shapes @simplewebauthn/browser's startRegistration() / startAuthentication() produce.
//
// Set-up, once, through the real pages (identifier-first sign-in of a user with a password, then the
// passkey offer that follows a password sign-in):
//   GET /auth -> login page -> POST /interaction/<uid>/identify (csrf, email) -> password page
//   -> POST /interaction/<uid>/login (csrf, email, password) -> passkey offer page
//   -> POST /interaction/<uid>/passkey/register/options (JSON, x-csrf-token) -> createCredential()
//   -> POST /interaction/<uid>/passkey/register/verify {response} -> {redirect} -> the recovery codes page
//   -> POST /interaction/<uid>/continue ("I have saved my codes") -> code -> /token
//
// Each measured flow, as a new browser (own cookie jar), the "Sign in with a passkey" button:
//   GET /auth (code + PKCE S256, as a browser navigation) -> the login page in that response (uid, csrf,
//   and the passkey options prepared with it, as the page's script uses them; POST /interaction/<uid>/passkey/options
//   {mode: 'button'} only where the page has none) -> getAssertion()
//   -> POST /interaction/<uid>/passkey/verify {response} -> {redirect: the client's URI with ?code=} (the
//   server resumes the sign-in within the verify request; a {redirect: /auth/<uid>} is followed as before)
//   -> POST /token (code exchange, ID token)
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { authorization, exchangeCode, expectRedirect, FlowError, Jar, pathName, resolveLocation, send } from './signin.js';
import { ROOT } from './servers.js';

/** The compiled software authenticator of this checkout (client side only, so BENCH_LATCHKEY_BIN does not matter). */
export async function loadSoftAuthenticator() {
  const file = join(ROOT, 'dist', 'testing', 'soft-authenticator.js');
  try {
    return await import(pathToFileURL(file).href);
  } catch (err) {
    throw new Error(`cannot load the software authenticator from ${file} (run \`npm run build\`): ${err.message}`);
  }
}

const decode = (v) => v.replace(/&quot;/g, '"').replace(/&#39;/g, "'").replace(/&lt;/g, '<').replace(/&gt;/g, '>').replace(/&amp;/g, '&');

/** The page's CSRF token: the hidden "csrf" field (every form has it; the passkey script sends it as x-csrf-token). */
function csrfOf(html, step) {
  const m = /<input\b[^>]*\bname="csrf"[^>]*\bvalue="([^"]*)"/i.exec(html) ?? /<input\b[^>]*\bvalue="([^"]*)"[^>]*\bname="csrf"/i.exec(html);
  if (!m) throw new FlowError(step, 'no csrf field on the page');
  return decode(m[1]);
}

/** The first-factor options prepared with the sign-in page (data-lk-passkey-request), or undefined. */
function preparedOptions(html) {
  const m = /\bdata-lk-passkey-request="([^"]*)"/.exec(html);
  return m ? JSON.parse(decode(m[1])) : undefined;
}

/** The interaction of a sign-in page: from its URL, or (the first page, served at /auth) from its forms. */
const uidOf = (at, step) => {
  const m = /^\/interaction\/([^/?]+)/.exec(at.url.pathname) ?? /\saction="\/interaction\/([^/"]+)\//.exec(at.html);
  if (!m) throw new FlowError(step, `not an interaction page: ${at.url.pathname}`);
  return m[1];
};

/**
 * Sends `path` and follows redirects: returns { page, html, url } at the first 200 page on the issuer,
 * or { done: URL } when a redirect leaves the issuer (the client's redirect URI).
 */
async function walk(target, jar, step, path) {
  let here = new URL(path, target.issuer);
  let res = await send(target, jar, step, `${here.pathname}${here.search}`, { navigation: true });
  for (let hops = 0; ; hops++) {
    if (hops > 8) throw new FlowError(step, 'too many redirects');
    if (res.statusCode >= 300 && res.statusCode < 400) {
      const next = resolveLocation(target, await expectRedirect(res, step), step);
      if (next.path === null) return { done: next.url };
      here = next.url;
      step = next.path.startsWith('/auth/') ? 'resume' : `GET ${pathName(next.path)}`;
      res = await send(target, jar, step, next.path, { navigation: true });
      continue;
    }
    const html = await res.body.text();
    if (res.statusCode !== 200) throw new FlowError(step, `status ${res.statusCode}: ${html.slice(0, 200).replace(/\s+/g, ' ')}`);
    return { html, url: here, step };
  }
}

/** POST a form and follow its redirects (see walk). */
async function postForm(target, jar, step, path, form) {
  const res = await send(target, jar, step, path, { method: 'POST', form, navigation: true });
  const location = await expectRedirect(res, step);
  const next = resolveLocation(target, location, step);
  if (next.path === null) return { done: next.url };
  return walk(target, jar, `GET ${pathName(next.path)}`, next.path);
}

/** POST JSON to a passkey endpoint with the CSRF header; returns the parsed answer. */
async function postJson(target, jar, step, path, csrf, body) {
  const res = await send(target, jar, step, path, { method: 'POST', json: body, headers: { 'x-csrf-token': csrf } });
  const text = await res.body.text();
  if (res.statusCode !== 200) throw new FlowError(step, `status ${res.statusCode}: ${text.slice(0, 300)}`);
  try {
    return JSON.parse(text);
  } catch {
    throw new FlowError(step, `not JSON: ${text.slice(0, 200)}`);
  }
}

/** After a verify answer {redirect}: follow it to the client and exchange the code. */
async function finish(target, jar, auth, answer, step) {
  if (typeof answer?.redirect !== 'string' || !answer.redirect) throw new FlowError(step, `no redirect in ${JSON.stringify(answer).slice(0, 200)}`);
  // the answer points at the client itself when the server resumed the sign-in within the verify request
  const next = resolveLocation(target, answer.redirect, step);
  if (next.path === null) return exchangeCode(target, auth, next.url, step);
  const end = await walk(target, jar, 'resume', next.path);
  if (!end.done) throw new FlowError(end.step, `expected the redirect to the client, got a page at ${end.url.pathname}`);
  return exchangeCode(target, auth, end.done, 'resume');
}

/**
 * Enrols a passkey for `user` (email + password, no passkey yet) through the real pages, ending with a
 * completed sign-in (the code is exchanged). Returns the credential id and the ID token's amr.
 */
export async function enrolPasskey(target, authenticator, user) {
  const jar = new Jar();
  const auth = authorization(target);
  const origin = new URL(target.issuer).origin;

  let at = await walk(target, jar, 'authorize', `${auth.url.pathname}${auth.url.search}`);
  if (at.done) throw new FlowError('authorize', 'signed in without a page');
  let uid = uidOf(at, 'login page');
  at = await postForm(target, jar, 'POST /interaction/<uid>/identify', `/interaction/${uid}/identify`, { csrf: csrfOf(at.html, 'login page'), email: user.email });
  if (at.done || !/name="password"/.test(at.html)) throw new FlowError('identify', 'expected the password page');
  at = await postForm(target, jar, 'POST /interaction/<uid>/login', `/interaction/${uid}/login`, { csrf: csrfOf(at.html, 'password page'), email: user.email, password: user.password });
  if (at.done || !/data-lk-register-options=/.test(at.html)) {
    throw new FlowError('login', `expected the passkey offer page, got ${at.done ? `a redirect to ${at.done.href}` : at.url.pathname}`);
  }
  uid = uidOf(at, 'offer page');
  const csrf = csrfOf(at.html, 'offer page');
  const options = await postJson(target, jar, 'POST /interaction/<uid>/passkey/register/options', `/interaction/${uid}/passkey/register/options`, csrf, {});
  let response;
  try {
    response = await authenticator.createCredential(options, origin);
  } catch (err) {
    throw new FlowError('authenticator.createCredential', err.message);
  }
  const answer = await postJson(target, jar, 'POST /interaction/<uid>/passkey/register/verify', `/interaction/${uid}/passkey/register/verify`, csrf, { response });
  // a first second factor comes with recovery codes (shown once): "I have saved my codes" finishes the sign-in
  if (typeof answer?.redirect !== 'string' || !answer.redirect) throw new FlowError('register/verify', `no redirect in ${JSON.stringify(answer).slice(0, 200)}`);
  const next = resolveLocation(target, answer.redirect, 'register/verify');
  let end = next.path === null ? { done: next.url } : await walk(target, jar, 'GET recovery codes', next.path);
  if (!end.done && /\/continue"/.test(end.html)) {
    end = await postForm(target, jar, 'POST /interaction/<uid>/continue', `/interaction/${uid}/continue`, { csrf: csrfOf(end.html, 'recovery codes page') });
  }
  if (!end.done) throw new FlowError(end.step, `expected the redirect to the client, got a page at ${end.url.pathname}`);
  const tokens = await exchangeCode(target, auth, end.done, 'resume');
  return { credentialId: response.id, amr: idTokenClaims(tokens).amr ?? null };
}

const idTokenClaims = (tokens) => JSON.parse(Buffer.from(tokens.id_token.split('.')[1], 'base64url').toString('utf8'));

/** One complete passkey sign-in ("Sign in with a passkey" button on the first page): returns the token response. */
export async function passkeySignInOnce(target, authenticator) {
  const jar = new Jar();
  const auth = authorization(target);
  const origin = new URL(target.issuer).origin;

  const at = await walk(target, jar, 'authorize', `${auth.url.pathname}${auth.url.search}`);
  if (at.done) throw new FlowError('authorize', 'signed in without a page');
  const uid = uidOf(at, 'login page');
  const csrf = csrfOf(at.html, 'login page');
  // as views/assets/passkeys.js does: the options the page came with, else ask for them
  const options = preparedOptions(at.html) ?? (await postJson(target, jar, 'POST /interaction/<uid>/passkey/options', `/interaction/${uid}/passkey/options`, csrf, { mode: 'button' }));
  let response;
  try {
    response = await authenticator.getAssertion(options, origin);
  } catch (err) {
    throw new FlowError('authenticator.getAssertion', err.message);
  }
  const answer = await postJson(target, jar, 'POST /interaction/<uid>/passkey/verify', `/interaction/${uid}/passkey/verify`, csrf, { response });
  return finish(target, jar, auth, answer, 'passkey/verify');
}

export { idTokenClaims };
