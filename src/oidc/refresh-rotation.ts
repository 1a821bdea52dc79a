import type Provider from 'oidc-provider';
import type { KoaContextWithOIDC } from 'oidc-provider';
import type { Logger } from 'pino';
import type { Db } from '../db/knex.js';
import { payloadsRepo } from '../db/payloads-repo.js';

/**
 * node-oidc-provider's refresh_token grant consumes (rotates) the presented refresh token first and only
 * then issues the new tokens, which is when the authorization module is asked (`extraTokenClaims` for the
 * access token, the account's claims for the ID token). A refusal there, or any other failure after the
 * rotation, answered an error but left the presented token consumed and a new one stored that nobody
 * received: the client's retry, once the module allowed again, looked like a replayed refresh token and
 * revoked the whole grant.
 *
 * A refresh that fails after rotating is undone before its answer goes out: the tokens minted for it (the
 * new refresh token, the access token) are deleted and the presented refresh token is usable again. The
 * consume itself stays conditional (src/oidc/adapter.ts), so two requests presenting the same refresh
 * token at once are still a replay.
 */
export function keepRefreshTokenOnFailedRefresh(provider: Provider, db: Db, realmId: string, log: Logger): void {
  provider.use(async (ctx, next) => {
    await next();
    const entities = (ctx as unknown as KoaContextWithOIDC).oidc?.entities;
    const rotated = entities?.RotatedRefreshToken;
    if (!rotated || ctx.status < 400) return;
    try {
      // what the failed answer would have handed out goes first: at worst the old token stays spent
      if (entities.RefreshToken && entities.RefreshToken !== rotated) await entities.RefreshToken.destroy();
      if (entities.AccessToken) await entities.AccessToken.destroy();
      await payloadsRepo.unconsume(db, realmId, 'RefreshToken', rotated.jti);
    } catch (err) {
      log.error({ err }, 'could not undo the rotation of the refresh token of a failed refresh');
    }
  });
}
