import type Provider from 'oidc-provider';
import type { KoaContextWithOIDC } from 'oidc-provider';
import type { Logger } from 'pino';
import type { Db } from '../db/knex.js';
import { payloadsRepo } from '../db/payloads-repo.js';

/**
 * A token request that fails leaves nothing behind that it did not hand out.
 *
 * node-oidc-provider stores the tokens of a token response one after the other, and the authorization
 * module is asked only while they are issued (`extraTokenClaims` for the access token, the account's
 * claims for the ID token, which comes last). A refusal there, or any other failure, answered an error but
 * left stored what came before it:
 * - every grant: the access token, and for authorization_code and device_code the refresh token, that
 *   nobody received;
 * - refresh_token: the presented refresh token consumed (rotated) and its successor stored. The client's
 *   retry, once the module allowed again, looked like a replayed refresh token and revoked the whole grant.
 *
 * So, before the error goes out, the minted access and refresh tokens are deleted and a presented
 * refresh token this request consumed is usable again. The consume itself stays conditional
 * (src/oidc/adapter.ts): two requests presenting the same refresh token at once are still a replay.
 * (An authorization or device code stays consumed: a code is good for one exchange, right or wrong.)
 */
export function undoFailedTokenRequests(provider: Provider, db: Db, realmId: string, log: Logger): void {
  provider.use(async (ctx, next) => {
    await next();
    const oidc = (ctx as unknown as KoaContextWithOIDC).oidc;
    if (ctx.status < 400 || oidc?.route !== 'token') return;
    const { AccessToken: access, RefreshToken: refresh, RotatedRefreshToken: rotated } = oidc.entities;
    // the refresh token entity is the presented one, unless this request rotated it or began a grant's tokens
    const mintedRefresh = rotated ? refresh !== rotated : oidc.params?.grant_type !== 'refresh_token';
    try {
      // what the failed answer would have handed out goes first: at worst the old token stays spent
      if (refresh && mintedRefresh) await refresh.destroy();
      if (access) await access.destroy();
      if (rotated) await payloadsRepo.unconsume(db, realmId, 'RefreshToken', rotated.jti);
    } catch (err) {
      log.error({ err }, 'could not remove the tokens of a failed token request');
    }
  });
}
