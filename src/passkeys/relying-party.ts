import type { Realm } from '../realms/service.js';

export interface RelyingParty {
  /** The RP ID ceremonies use. */
  rpId: string;
  /** Origins whose responses are accepted for that RP ID. */
  origins: string[];
  /** The human name browsers show. */
  name: string;
}

const hostOf = (issuer: string) => new URL(issuer).hostname;
const originOf = (issuer: string) => new URL(issuer).origin;

/**
 * The RP ID is the domain the user is on. With related origins turned on for the realm, a browser that
 * supports WebAuthn Related Origin Requests uses the primary issuer's domain as RP ID on every issuer
 * (the primary domain lists the others in /.well-known/webauthn), so one passkey works everywhere;
 * other browsers keep per-domain passkeys.
 */
export function relyingParty(realm: Realm, issuer: string, client: { relatedOrigins?: boolean } = {}): RelyingParty {
  const primary = realm.issuers[0] ?? issuer;
  if (realm.settings.passkeys.relatedOrigins && (issuer === primary || client.relatedOrigins)) {
    return { rpId: hostOf(primary), origins: realm.issuers.map(originOf), name: realm.displayName };
  }
  return { rpId: hostOf(issuer), origins: [originOf(issuer)], name: realm.displayName };
}

/** Every RP a response on this issuer may legitimately be for (the challenge says which one was used). */
export function relyingParties(realm: Realm, issuer: string): RelyingParty[] {
  const own = relyingParty(realm, issuer);
  const related = relyingParty(realm, issuer, { relatedOrigins: true });
  return own.rpId === related.rpId ? [own] : [own, related];
}

/** The /.well-known/webauthn document the primary domain serves, or undefined when not applicable. */
export function relatedOriginsDocument(realm: Realm, issuer: string): { origins: string[] } | undefined {
  if (!realm.settings.passkeys.relatedOrigins || realm.issuers[0] !== issuer) return undefined;
  return { origins: realm.issuers.map(originOf) };
}
