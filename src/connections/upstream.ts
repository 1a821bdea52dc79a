import * as oidc from 'openid-client';
import { acceptableName } from '../display-name.js';
import { LatchkeyError } from '../errors.js';
import { OutboundAddressRefused } from './outbound-address.js';
import { isLoopbackHost, type ClaimMapping, type OAuth2Config, type OidcConfig, type UpstreamConfig } from './settings.js';

/** What Latchkey keeps from an upstream sign-in: who it is, and the profile claims (never tokens). */
export interface UpstreamIdentity {
  subject: string;
  email?: string;
  /** True only when the upstream vouches for the address (OIDC `email_verified: true`, GitHub's verified flag). */
  emailVerified: boolean;
  name?: string;
  picture?: string;
}

/** The per-sign-in secrets bound to an interaction: checked on the way back, used once. */
export interface UpstreamChecks {
  state: string;
  nonce: string;
  verifier: string;
}

const DISCOVERY_TTL_MS = 10 * 60 * 1000;
const MAX_DOCUMENT = 256 * 1024;
const USER_AGENT = 'Latchkey';

export const upstreamFailed = (message: string) => new LatchkeyError('upstream_failed', message, 502);

/**
 * The error for a failed request to the provider: `what` failed because of `err`. A connection the
 * address policy refused (src/connections/outbound-address.ts) keeps its own code, wherever in the
 * chain of causes openid-client put it.
 */
function failedBecause(what: string, err: unknown): LatchkeyError {
  for (let e: unknown = err, depth = 0; e instanceof Error && depth < 5; e = e.cause, depth++) {
    if (e instanceof OutboundAddressRefused) return new LatchkeyError(e.code, `${what}: ${e.message}`, e.status);
  }
  return upstreamFailed(`${what}: ${(err as Error)?.message ?? err}`);
}

const isHttp = (url: string) => new URL(url).protocol === 'http:';

function fromPath(document: unknown, path: string | undefined): unknown {
  if (!path) return undefined;
  let value: unknown = document;
  for (const key of path.split('.')) {
    if (value === null || typeof value !== 'object' || Array.isArray(value) || !Object.hasOwn(value, key)) return undefined;
    value = (value as Record<string, unknown>)[key];
  }
  return value;
}

const text = (value: unknown, max: number): string | undefined => (typeof value === 'string' && value.length > 0 && value.length <= max ? value : undefined);

/** Maps a userinfo document through the claim mapping; the subject may be a string or a number (GitHub's id). */
export function mapClaims(document: unknown, mapping: ClaimMapping): UpstreamIdentity {
  const sub = fromPath(document, mapping.sub);
  const subject = typeof sub === 'number' && Number.isSafeInteger(sub) ? String(sub) : text(sub, 300);
  if (!subject) throw upstreamFailed(`the provider's user information has no usable "${mapping.sub}" (the subject)`);
  const verified = fromPath(document, mapping.email_verified);
  return {
    subject,
    email: text(fromPath(document, mapping.email), 320),
    emailVerified: verified === true,
    // shown on the account page and put in ID tokens: a name that would not show as the text it holds is dropped
    name: acceptableName(fromPath(document, mapping.name)),
    picture: text(fromPath(document, mapping.picture), 2000),
  };
}

async function readJson(res: Response, what: string): Promise<unknown> {
  const body = await res.text();
  if (body.length > MAX_DOCUMENT) throw upstreamFailed(`the provider's ${what} answer is too large`);
  try {
    return JSON.parse(body);
  } catch {
    throw upstreamFailed(`the provider's ${what} answer is not JSON (HTTP ${res.status})`);
  }
}

/** Talks to upstream identity providers: builds the authorization request, and turns the answer into an identity. */
export class UpstreamClient {
  readonly #discovered = new Map<string, { at: number; config: Promise<oidc.Configuration> }>();

  /** `fetchImpl`: the server's is src/connections/outbound-fetch.ts (timeouts, the address policy). */
  constructor(private readonly fetchImpl: typeof fetch) {}

  async authorizationUrl(upstream: UpstreamConfig, clientSecret: string | undefined, redirectUri: string, checks: UpstreamChecks): Promise<URL> {
    const challenge = await oidc.calculatePKCECodeChallenge(checks.verifier);
    const params: Record<string, string> = {
      redirect_uri: redirectUri,
      scope: upstream.scopes.join(' '),
      state: checks.state,
      code_challenge: challenge,
      code_challenge_method: 'S256',
    };
    if (upstream.type === 'oidc') {
      const config = await this.#configuration(upstream, clientSecret);
      return oidc.buildAuthorizationUrl(config, { ...params, nonce: checks.nonce });
    }
    const url = new URL(upstream.authorizationEndpoint);
    url.searchParams.set('response_type', 'code');
    url.searchParams.set('client_id', upstream.clientId);
    for (const [k, v] of Object.entries(params)) if (k !== 'scope' || v) url.searchParams.set(k, v);
    return url;
  }

  /** Exchanges the code of a successful authorization response (state already matched) for the identity. */
  async complete(upstream: UpstreamConfig, clientSecret: string | undefined, redirectUri: string, response: URLSearchParams, checks: UpstreamChecks): Promise<UpstreamIdentity> {
    return upstream.type === 'oidc' ? this.#completeOidc(upstream, clientSecret, redirectUri, response, checks) : this.#completeOAuth2(upstream, clientSecret, redirectUri, response, checks);
  }

  #configuration(upstream: OidcConfig, clientSecret: string | undefined): Promise<oidc.Configuration> {
    const key = `${upstream.issuer}\n${upstream.clientId}\n${clientSecret ?? ''}`;
    const cached = this.#discovered.get(key);
    if (cached && Date.now() - cached.at < DISCOVERY_TTL_MS) return cached.config;
    const config = oidc
      .discovery(new URL(upstream.issuer), upstream.clientId, undefined, clientSecret ? oidc.ClientSecretBasic(clientSecret) : oidc.None(), {
        [oidc.customFetch]: this.fetchImpl as any,
        execute: isHttp(upstream.issuer) && isLoopbackHost(new URL(upstream.issuer).hostname) ? [oidc.allowInsecureRequests] : [],
        timeout: 10,
      })
      .catch((err: unknown) => {
        this.#discovered.delete(key);
        throw failedBecause(`the provider's discovery document at ${upstream.issuer} could not be used`, err);
      });
    this.#discovered.set(key, { at: Date.now(), config });
    return config;
  }

  async #completeOidc(upstream: OidcConfig, clientSecret: string | undefined, redirectUri: string, response: URLSearchParams, checks: UpstreamChecks): Promise<UpstreamIdentity> {
    const config = await this.#configuration(upstream, clientSecret);
    const current = new URL(redirectUri);
    for (const [k, v] of response) current.searchParams.append(k, v);
    let tokens;
    try {
      tokens = await oidc.authorizationCodeGrant(config, current, { pkceCodeVerifier: checks.verifier, expectedState: checks.state, expectedNonce: checks.nonce, idTokenExpected: true });
    } catch (err) {
      throw failedBecause('the sign-in at the provider could not be verified', err);
    }
    const idClaims = tokens.claims();
    if (!idClaims) throw upstreamFailed('the provider returned no ID token');
    let info: Record<string, unknown> = {};
    if (config.serverMetadata().userinfo_endpoint) {
      try {
        info = await oidc.fetchUserInfo(config, tokens.access_token, idClaims.sub);
      } catch (err) {
        throw failedBecause("the provider's userinfo endpoint failed", err);
      }
    }
    // the ID token is authoritative; userinfo (same subject, checked) fills in what it lacks
    const merged: Record<string, unknown> = { ...info, ...idClaims };
    return mapClaims(merged, { sub: 'sub', email: 'email', email_verified: 'email_verified', name: 'name', picture: 'picture' });
  }

  async #completeOAuth2(upstream: OAuth2Config, clientSecret: string | undefined, redirectUri: string, response: URLSearchParams, checks: UpstreamChecks): Promise<UpstreamIdentity> {
    const code = response.get('code');
    if (!code) throw upstreamFailed('the provider sent no authorization code');
    const form = new URLSearchParams({ grant_type: 'authorization_code', code, redirect_uri: redirectUri, client_id: upstream.clientId, code_verifier: checks.verifier });
    if (clientSecret) form.set('client_secret', clientSecret);
    let tokenRes: Response;
    try {
      tokenRes = await this.fetchImpl(upstream.tokenEndpoint, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json', 'user-agent': USER_AGENT },
        body: form.toString(),
        redirect: 'error',
      });
    } catch (err) {
      throw failedBecause("the provider's token endpoint could not be reached", err);
    }
    const token = (await readJson(tokenRes, 'token')) as Record<string, unknown>;
    if (!tokenRes.ok || typeof token.error === 'string') {
      const detail = typeof token.error === 'string' ? `${token.error}${typeof token.error_description === 'string' ? `: ${token.error_description}` : ''}` : `HTTP ${tokenRes.status}`;
      throw upstreamFailed(`the provider refused the authorization code (${detail.slice(0, 300)})`);
    }
    const accessToken = token.access_token;
    if (typeof accessToken !== 'string' || !accessToken) throw upstreamFailed('the provider\'s token answer has no access_token');
    if (typeof token.token_type === 'string' && token.token_type.toLowerCase() !== 'bearer') throw upstreamFailed(`the provider issued a "${token.token_type}" token; only bearer tokens are supported`);
    const get = async (url: string, what: string) => {
      let res: Response;
      try {
        res = await this.fetchImpl(url, { headers: { authorization: `Bearer ${accessToken}`, accept: 'application/json', 'user-agent': USER_AGENT }, redirect: 'error' });
      } catch (err) {
        throw failedBecause(`the provider's ${what} endpoint could not be reached`, err);
      }
      if (!res.ok) throw upstreamFailed(`the provider's ${what} endpoint answered HTTP ${res.status}`);
      return readJson(res, what);
    };
    const identity = mapClaims(await get(upstream.userinfoEndpoint, 'user information'), upstream.claims);
    if (upstream.emailsEndpoint) {
      // GitHub: the address list says which are verified; only those count, the primary one first
      const emails = await get(upstream.emailsEndpoint, 'emails');
      const verified = (Array.isArray(emails) ? emails : []).filter(
        (e): e is { email: string; primary?: boolean } => e !== null && typeof e === 'object' && e.verified === true && typeof e.email === 'string' && e.email.length <= 320,
      );
      const chosen = verified.find((e) => e.primary === true) ?? verified[0];
      return { ...identity, email: chosen?.email, emailVerified: Boolean(chosen) };
    }
    return identity;
  }
}
