import { errors, type FindAccount } from 'oidc-provider';
import type { UserService } from '../accounts/user-service.js';
import type { AuthorizationModule } from '../authz/module.js';
import { RESERVED_CLAIMS } from '../authz/module.js';

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
          // tenant_id is the server's to say: the module sees it but cannot set it
          for (const [k, v] of Object.entries(decision.claims ?? {})) if (!RESERVED_CLAIMS.has(k) && k !== 'tenant_id' && !(k in claims)) claims[k] = v;
        }
        return claims as { sub: string };
      },
    };
  };
}
