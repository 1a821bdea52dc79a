import { errors, type FindAccount } from 'oidc-provider';
import type { UserService } from '../accounts/user-service.js';
import type { AuthorizationModule } from '../authz/module.js';
import { RESERVED_CLAIMS } from '../authz/module.js';
import { MODULE_ID_TOKEN_CLAIMS } from './id-token-module-claims.js';

/** The user's claims as Latchkey states them (whether or not a scope asks for them): never the module's to set. */
const USER_CLAIMS = new Set(['sub', 'email', 'email_verified', 'name', 'picture', 'updated_at', 'tenant_id']);

/** node-oidc-provider's account lookup: realm users, disabled ones refused, claims by scope. */
/**
 * `tenantOf` gives the tenant a grant was signed in for (src/tenants/grant-tenant.ts); `isMember` says
 * whether the user still belongs to it. A token (code, refresh or access token) of a grant signed in for
 * a tenant the user was removed from finds no account, as for a disabled user: it gives nothing more.
 */
export function createFindAccount(
  users: UserService,
  authz: AuthorizationModule,
  realmId: string,
  issuer: string,
  tenantOf: (grantId: string | undefined, ctx: object) => Promise<string | undefined>,
  isMember: (tenantId: string, userId: string) => Promise<boolean>,
): FindAccount {
  return async (ctx, sub, token) => {
    // looked up once per request (a passkey verify that resumes the sign-in in process has read them already)
    const user = await users.findById(realmId, sub, ctx.req);
    if (!user || user.disabled) return undefined;
    const grantId = (token as { grantId?: string } | undefined)?.grantId;
    if (grantId) {
      const tenantId = await tenantOf(grantId, ctx);
      if (tenantId && !(await isMember(tenantId, user.id))) return undefined;
    }
    return {
      accountId: user.id,
      async claims(use, scope) {
        const claims: Record<string, unknown> = {
          sub: user.id,
          email: user.email,
          email_verified: user.emailVerified,
          ...(user.name ? { name: user.name } : {}),
          ...(user.picture ? { picture: user.picture } : {}),
          updated_at: Math.floor(user.updatedAt / 1000),
        };
        // the tenant of the grant behind this token (code, refresh or access token), in ID tokens and userinfo
        const tenantId = await tenantOf((token as { grantId?: string } | undefined)?.grantId, ctx);
        if (tenantId) claims.tenant_id = tenantId;
        if (use === 'id_token') {
          const decision = await authz.onIssue({
            realmId,
            issuer,
            clientId: ctx.oidc.client?.clientId ?? '',
            subject: user.id,
            grantType: ctx.oidc.params?.grant_type as string | undefined,
            token: 'id_token',
            scopes: scope ? scope.split(' ') : [],
            tenantId,
          });
          // a denied ID token is not issued: the token request fails as for a denied access token
          if (!decision.allow) throw new errors.AccessDenied(decision.reason ?? 'the authorization module denied this token');
          // the module's own claims go past the scope mask (src/oidc/id-token-module-claims.ts); the user's
          // claims and tenant_id are the server's to say: the module sees them but cannot set or fill them
          const extra = Object.fromEntries(Object.entries(decision.claims ?? {}).filter(([k]) => !RESERVED_CLAIMS.has(k) && !USER_CLAIMS.has(k)));
          if (Object.keys(extra).length) (claims as Record<PropertyKey, unknown>)[MODULE_ID_TOKEN_CLAIMS] = extra;
        }
        return claims as { sub: string };
      },
    };
  };
}
