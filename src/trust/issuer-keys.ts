import { createLocalJWKSet, errors as joseErrors, type JSONWebKeySet, type JWTHeaderParameters, type FlattenedJWSInput } from 'jose';
import { LatchkeyError } from '../errors.js';
import { checkIssuerUrl } from './issuer-url.js';

export interface IssuerKeysOptions {
  /** How long fetched keys are used before discovery and the JWKS are fetched again. */
  ttlMs?: number;
  /** An unknown kid refetches the keys at most this often per issuer, so tokens with made-up kids cannot make us hammer the issuer. */
  refetchCooldownMs?: number;
  /** After a failed fetch, tokens of that issuer fail fast for this long instead of fetching again. */
  failureBackoffMs?: number;
  timeoutMs?: number;
  fetch?: typeof fetch;
  now?: () => number;
}

interface Entry {
  keys: ReturnType<typeof createLocalJWKSet>;
  fetchedAt: number;
}

const MAX_DOCUMENT_BYTES = 512 * 1024;

const unreachable = (issuer: string, why: string) => new LatchkeyError('issuer_unreachable', `cannot load the signing keys of ${issuer}: ${why}`, 502);

/**
 * Signing keys of trusted issuers: discovery (`/.well-known/openid-configuration` → `jwks_uri`), then
 * the JWKS, cached per issuer. A token whose kid is not in the cached set refetches once, at most
 * once per cooldown; concurrent lookups share one fetch.
 */
export class IssuerKeys {
  readonly #entries = new Map<string, Entry>();
  readonly #inflight = new Map<string, Promise<Entry>>();
  readonly #lastFetch = new Map<string, number>();
  readonly #failures = new Map<string, { at: number; error: unknown }>();
  readonly #ttl: number;
  readonly #cooldown: number;
  readonly #backoff: number;
  readonly #timeout: number;
  readonly #fetch: typeof fetch;
  readonly #now: () => number;

  constructor(options: IssuerKeysOptions = {}) {
    this.#ttl = options.ttlMs ?? 10 * 60_000;
    this.#cooldown = options.refetchCooldownMs ?? 30_000;
    this.#backoff = options.failureBackoffMs ?? 5_000;
    this.#timeout = options.timeoutMs ?? 5_000;
    this.#fetch = options.fetch ?? fetch;
    this.#now = options.now ?? Date.now;
  }

  /** A key resolver for jose's jwtVerify, bound to one issuer. */
  resolver(issuer: string) {
    return async (header: JWTHeaderParameters, token: FlattenedJWSInput) => {
      let entry = await this.#current(issuer);
      try {
        return await entry.keys(header, token);
      } catch (err) {
        if (!(err instanceof joseErrors.JWKSNoMatchingKey)) throw err;
        // the issuer may have rotated its keys: look again, unless we just did
        const last = this.#lastFetch.get(issuer) ?? 0;
        if (this.#now() - last < this.#cooldown) throw err;
        entry = await this.#load(issuer);
        return entry.keys(header, token);
      }
    };
  }

  /** Forgets cached keys (all, or one issuer's). */
  clear(issuer?: string): void {
    if (issuer === undefined) {
      this.#entries.clear();
      this.#lastFetch.clear();
      this.#failures.clear();
    } else {
      this.#entries.delete(issuer);
      this.#lastFetch.delete(issuer);
      this.#failures.delete(issuer);
    }
  }

  async #current(issuer: string): Promise<Entry> {
    const entry = this.#entries.get(issuer);
    if (entry && this.#now() - entry.fetchedAt < this.#ttl) return entry;
    return this.#load(issuer);
  }

  #load(issuer: string): Promise<Entry> {
    let pending = this.#inflight.get(issuer);
    if (!pending) {
      const failure = this.#failures.get(issuer);
      if (failure && this.#now() - failure.at < this.#backoff) return Promise.reject(failure.error);
      this.#lastFetch.set(issuer, this.#now());
      pending = this.#fetchKeys(issuer)
        .then(
          (jwks) => {
            const entry = { keys: createLocalJWKSet(jwks), fetchedAt: this.#now() };
            this.#entries.set(issuer, entry);
            this.#failures.delete(issuer);
            return entry;
          },
          (error: unknown) => {
            this.#failures.set(issuer, { at: this.#now(), error });
            throw error;
          },
        )
        .finally(() => this.#inflight.delete(issuer));
      this.#inflight.set(issuer, pending);
    }
    return pending;
  }

  async #fetchKeys(issuer: string): Promise<JSONWebKeySet> {
    const discoveryUrl = `${issuer.replace(/\/$/, '')}/.well-known/openid-configuration`;
    const discovery = await this.#getJson(issuer, discoveryUrl, 'discovery document');
    if (discovery.issuer !== issuer) {
      throw unreachable(issuer, `the discovery document names issuer ${JSON.stringify(discovery.issuer)}, not ${issuer}`);
    }
    const jwksUri = discovery.jwks_uri;
    if (typeof jwksUri !== 'string') throw unreachable(issuer, 'the discovery document has no jwks_uri');
    try {
      checkIssuerUrl(jwksUri, 'jwks_uri');
    } catch (err) {
      throw unreachable(issuer, (err as Error).message);
    }
    const jwks = await this.#getJson(issuer, jwksUri, 'JWKS');
    if (!Array.isArray(jwks.keys)) throw unreachable(issuer, `${jwksUri} is not a JSON Web Key Set`);
    return jwks as unknown as JSONWebKeySet;
  }

  async #getJson(issuer: string, url: string, what: string): Promise<Record<string, unknown>> {
    let res: Response;
    try {
      res = await this.#fetch(url, { headers: { accept: 'application/json' }, redirect: 'error', signal: AbortSignal.timeout(this.#timeout) });
    } catch (err) {
      throw unreachable(issuer, `fetching the ${what} at ${url} failed (${(err as Error).message})`);
    }
    if (!res.ok) throw unreachable(issuer, `the ${what} at ${url} answered HTTP ${res.status}`);
    const text = await res.text();
    if (text.length > MAX_DOCUMENT_BYTES) throw unreachable(issuer, `the ${what} at ${url} is too large`);
    try {
      const json = JSON.parse(text);
      if (typeof json !== 'object' || json === null || Array.isArray(json)) throw new Error('not an object');
      return json;
    } catch {
      throw unreachable(issuer, `the ${what} at ${url} is not a JSON object`);
    }
  }
}
