import type { KoaContextWithOIDC } from 'oidc-provider';
import type { TenantService } from './service.js';
import { perRequestMemo } from '../server/per-request.js';

/**
 * How the tenant chosen at sign-in reaches the tokens.
 *
 * node-oidc-provider's login result carries only accountId/acr/amr/remember, and its Grant keeps a
 * fixed set of properties. So the sign-in hands the tenant over as an extra key of the interaction
 * result (`tenant`: an id, or null for none), which node-oidc-provider exposes as ctx.oidc.result
 * when the authorization resumes. `recordGrantTenant` runs where the grant of that authorization is
 * settled (loadExistingGrant, after consent) and keeps the tenant in grant_tenants, keyed by the grant
 * id. Every token of the grant (authorization code, refresh token and its rotations, access token, ID
 * token) carries the grant id, so `tenantOfGrant` finds the tenant again at issue time.
 *
 * A new sign-in replaces the grant's tenant (or removes it): grants are per client per session, and a
 * first-party client's grant is replaced by a new one when the tenant changes (see provider-factory),
 * so the old tenant never appears in tokens issued after the new sign-in.
 */
export function resultTenant(ctx: KoaContextWithOIDC): string | null | undefined {
  const result = ctx.oidc.result as { tenant?: unknown; login?: unknown } | undefined;
  if (!result || !('tenant' in result)) return undefined;
  return typeof result.tenant === 'string' ? result.tenant : null;
}

export async function recordGrantTenant(tenants: TenantService, realmId: string, grantId: string, tenant: string | null | undefined): Promise<void> {
  if (tenant === undefined) return; // no sign-in in this authorization: the grant keeps its tenant
  // dropped before (lookups that run while the write is awaited read again) and after (an answer read
  // meanwhile, on PostgreSQL from before the write commits, is not kept)
  thisTurn.delete(turnKey(realmId, grantId));
  await tenants.setGrantTenant(realmId, grantId, tenant);
  thisTurn.delete(turnKey(realmId, grantId));
}

/** Answers already looked up during one request (a token request asks from findAccount and extraTokenClaims). */
const perRequest = perRequestMemo<string | undefined>();

/**
 * Answers looked up in the current turn of the event loop, forgotten when it ends. extraTokenClaims is
 * called without a ctx (src/oidc/request-context.ts), usually in the same turn as the findAccount of that
 * token request, which has just looked the grant up. A change of the grant's tenant in this process
 * drops the answer at once (recordGrantTenant).
 */
const thisTurn = new Map<string, Promise<string | undefined>>();
let forgetQueued = false;
const forgetTurn = (): void => {
  forgetQueued = false;
  thisTurn.clear();
};
const turnKey = (realmId: string, grantId: string): string => `${realmId}\u0000${grantId}`;

function inThisTurn(key: string, load: () => Promise<string | undefined>): Promise<string | undefined> {
  let answer = thisTurn.get(key);
  if (!answer) {
    thisTurn.set(key, (answer = load()));
    answer.catch(() => thisTurn.delete(key));
    if (!forgetQueued) {
      forgetQueued = true;
      setImmediate(forgetTurn);
    }
  }
  return answer;
}

/** The grant's tenant; looked up at most once per turn of the event loop, and with `ctx` once per request. */
export function tenantOfGrant(tenants: TenantService, realmId: string, grantId: string | undefined, ctx?: object): Promise<string | undefined> {
  if (!grantId) return Promise.resolve(undefined);
  const load = () => inThisTurn(turnKey(realmId, grantId), () => tenants.grantTenant(realmId, grantId));
  return ctx ? perRequest(ctx, grantId, load) : load();
}
