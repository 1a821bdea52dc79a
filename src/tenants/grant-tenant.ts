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
  await tenants.setGrantTenant(realmId, grantId, tenant);
}

/** Answers already looked up during one request (a token request asks from findAccount and extraTokenClaims). */
const perRequest = perRequestMemo<string | undefined>();

/** The grant's tenant; with `ctx`, looked up at most once per request and grant. */
export function tenantOfGrant(tenants: TenantService, realmId: string, grantId: string | undefined, ctx?: object): Promise<string | undefined> {
  if (!grantId) return Promise.resolve(undefined);
  const load = () => tenants.grantTenant(realmId, grantId);
  return ctx ? perRequest(ctx, grantId, load) : load();
}
