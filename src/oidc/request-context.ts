/**
 * node-oidc-provider runs each of its requests inside an AsyncLocalStorage (`als.run(ctx, next)`), only
 * so that a few configuration callbacks called while a token is formatted (`extraTokenClaims`, TTL
 * functions, `pairwiseIdentifier`, format customizers) and `Provider.ctx` can be handed the request.
 *
 * On Node 20 and 22 the first `run` switches on a promise hook that runs for every promise the process
 * creates from then on: about 12% of the server CPU of a passkey sign-in and 5% of a client_credentials
 * request (bench/ab.js, bench/README.md). Latchkey's callbacks do not use that ctx:
 * - access-token TTLs are numbers; the refresh-token TTL reads the rotation from the token itself
 *   (`rotations`, `iiat`), see `refreshTokenTtl`;
 * - `extraTokenClaims` reads the grant type from the token (`grantTypeOf`);
 * - no pairwise subjects, format customizers or `Provider.ctx`.
 * So the provider's storage is made a pass-through: its callbacks get `undefined` for ctx, which they
 * are written to accept. Node 24 propagates AsyncLocalStorage without promise hooks; the pass-through
 * is harmless there.
 *
 * The module is internal to node-oidc-provider (the package has no `exports` map, so it can be
 * imported). If a later version moves it, the import fails at start-up and the test suite says so.
 */
import { AsyncLocalStorage } from 'node:async_hooks';
import als from 'oidc-provider/lib/helpers/als.js';

let done = false;

/** Makes node-oidc-provider's request storage a pass-through (idempotent). */
export function withoutProviderAsyncContext(): void {
  if (done) return;
  done = true;
  if (!(als instanceof AsyncLocalStorage)) throw new Error("oidc-provider/lib/helpers/als.js no longer exports an AsyncLocalStorage: review src/oidc/request-context.ts");
  als.run = ((_store: unknown, callback: (...args: unknown[]) => unknown, ...args: unknown[]) => callback(...args)) as typeof als.run;
}

/** The OAuth `grant_type` a token was issued by, from the token's own `gty` (`"authorization_code refresh_token"` for a refreshed one). */
const GRANT_TYPES: Record<string, string> = {
  authorization_code: 'authorization_code',
  refresh_token: 'refresh_token',
  device_code: 'urn:ietf:params:oauth:grant-type:device_code',
  ciba: 'urn:openid:params:grant-type:ciba',
  token_exchange: 'urn:ietf:params:oauth:grant-type:token-exchange',
};

export function grantTypeOf(token: { kind?: string; gty?: string }): string | undefined {
  if (token.kind === 'ClientCredentials') return 'client_credentials';
  const last = token.gty?.split(' ').pop();
  return last ? (GRANT_TYPES[last] ?? last) : undefined;
}

/**
 * Refresh-token lifetime: a fresh token lives `ttlSeconds`; a rotated one keeps the end of life of the
 * first token of its chain (`iiat` is carried through every rotation), so rotation never extends a
 * sign-in. Sender-constrained tokens (DPoP, mTLS) get the full lifetime on each rotation, as
 * node-oidc-provider's default does.
 */
export function refreshTokenTtl(ttlSeconds: number, token: { rotations?: number; iiat?: number; isSenderConstrained?: () => boolean }, nowSeconds = Math.floor(Date.now() / 1000)): number {
  if (!token.rotations || typeof token.iiat !== 'number' || token.isSenderConstrained?.()) return ttlSeconds;
  return Math.max(1, token.iiat + ttlSeconds - nowSeconds);
}
