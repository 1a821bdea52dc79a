import type { CredentialRow } from '../db/webauthn-repo.js';
import { LatchkeyError } from '../errors.js';
import type { Realm } from '../realms/service.js';
import { postedCredentialName } from './credential-name.js';
import { relyingParties } from './relying-party.js';
import type { CredentialKind, PasskeyService, PasskeyUser } from './service.js';

/**
 * A new credential a signed-in user's browser posted (JSON `response` and optional `name`) on the
 * issuer served: the account page's "Add a passkey", the sign-in pages' passkey offer and security-key
 * enrolment. A bad name is refused first (a 400 naming the problem); the ceremony is then verified for
 * this issuer's RP IDs (the stored challenge, bound to `boundTo`, says which one the options used).
 */
export async function verifyPostedRegistration(
  passkeys: PasskeyService,
  served: { realm: Realm; issuer: string },
  user: PasskeyUser,
  posted: { response: unknown; name: unknown },
  boundTo: string,
  kind: CredentialKind,
): Promise<CredentialRow> {
  const { name, problem } = postedCredentialName(posted.name);
  if (problem) throw new LatchkeyError('invalid_input', problem, 400);
  return passkeys.verifyRegistration({
    realmId: served.realm.id,
    settings: served.realm.settings,
    rp: relyingParties(served.realm, served.issuer),
    user: { id: user.id, email: user.email, name: user.name },
    boundTo,
    kind,
    response: posted.response as any,
    name,
  });
}
