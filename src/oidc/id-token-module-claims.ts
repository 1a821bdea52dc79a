import type Provider from 'oidc-provider';

/**
 * Where findAccount's `claims('id_token')` hands the authorization module's extra claims to the ID
 * token. node-oidc-provider passes the account's claims through its scope mask, which keeps only the
 * claims a scope maps (sub, email, name, ...): a module's own claims (`roles`,
 * `https://example.com/plan`) were dropped from every ID token. A symbol key travels with the claims
 * object (object spread copies it) but is never a claim itself.
 */
export const MODULE_ID_TOKEN_CLAIMS = Symbol('latchkey.authz.idTokenClaims');

type ClaimBag = Record<string, unknown>;

/** Adds the module's claims to each ID token after the scope mask; they never replace a claim the token has. */
export function addModuleClaimsToIdTokens(provider: Provider): void {
  const proto = provider.IdToken.prototype as unknown as { payload(this: { available?: Record<PropertyKey, unknown> }): Promise<ClaimBag> };
  const payload = proto.payload;
  proto.payload = async function payloadWithModuleClaims() {
    const claims = await payload.call(this);
    const extra = this.available?.[MODULE_ID_TOKEN_CLAIMS] as ClaimBag | undefined;
    for (const [name, value] of Object.entries(extra ?? {})) if (!(name in claims)) claims[name] = value;
    return claims;
  };
}
