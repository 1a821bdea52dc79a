import type Provider from 'oidc-provider';
import type { KoaContextWithOIDC } from 'oidc-provider';

interface StoredToken {
  save(): Promise<unknown>;
  destroy(): Promise<unknown>;
}

/**
 * A refresh_token request the authorization module denied (access_denied, from extraTokenClaims or the
 * ID token's claims) leaves the client's refresh token as it was. node-oidc-provider consumes the
 * presented refresh token and saves its successor before it formats the access token, where the
 * module is asked: the denied request would use up a token whose successor the client never gets, and
 * presenting the old one again counts as reuse, which revokes the whole grant. So the successor and
 * the access token made for the denied answer go, and the presented token is stored again unconsumed
 * (an upsert clears the consumed mark, src/db/payloads-repo.ts), with its own expiry.
 */
export function keepRefreshTokenOnDenial(provider: Provider): void {
  provider.use(async (koaCtx, next) => {
    await next();
    const ctx = koaCtx as unknown as KoaContextWithOIDC;
    if (ctx.status !== 400 || (ctx.body as { error?: string } | undefined)?.error !== 'access_denied') return;
    if (ctx.oidc?.route !== 'token' || ctx.oidc.params?.grant_type !== 'refresh_token') return;
    const entities = ctx.oidc.entities as unknown as Record<string, StoredToken | undefined>;
    const presented = entities.RotatedRefreshToken;
    if (!presented) return;
    const successor = entities.RefreshToken;
    if (successor && successor !== presented) await successor.destroy();
    await entities.AccessToken?.destroy();
    await presented.save();
  });
}
