import type { Realm } from '../realms/service.js';

export interface RelyingParty {
  /** The RP ID ceremonies use on this issuer. */
  rpId: string;
  /** Origins whose responses are accepted for that RP ID. */
  origins: string[];
  /** The human name browsers show. */
  name: string;
}

/**
 * The RP ID is the domain the user is on. With related origins turned on, every issuer of the realm
 * uses the primary issuer's domain instead, and the primary domain lists the others in
 * /.well-known/webauthn (WebAuthn Related Origin Requests).
 */
export function relyingParty(realm: Realm, issuer: string): RelyingParty {
  const primary = realm.issuers[0] ?? issuer;
  if (realm.settings.passkeys.relatedOrigins) {
    return { rpId: new URL(primary).hostname, origins: realm.issuers.map((i) => new URL(i).origin), name: realm.displayName };
  }
  return { rpId: new URL(issuer).hostname, origins: [new URL(issuer).origin], name: realm.displayName };
}

/** The /.well-known/webauthn document the primary domain serves, or undefined when not applicable. */
export function relatedOriginsDocument(realm: Realm, issuer: string): { origins: string[] } | undefined {
  if (!realm.settings.passkeys.relatedOrigins || realm.issuers[0] !== issuer) return undefined;
  return { origins: realm.issuers.map((i) => new URL(i).origin) };
}
