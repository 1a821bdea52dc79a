/**
 * OpenID Connect Back-Channel Logout 1.0: when a session ends through RP-initiated logout (the
 * provider's `/session/end`, which the account page's "Sign out" goes through too), every application
 * of that session registered with a `backchannel_logout_uri` is sent a logout token (a JWT with `sub`,
 * `sid`, `events`, signed as its ID tokens are) by the server, so it can end its own session for the
 * user even when the browser never comes back to it.
 *
 * node-oidc-provider delivers the tokens; this file decides how they travel and what is recorded:
 * - they travel under the address policy of every request the server makes itself (`providerFetch`):
 *   loopback and private addresses only with `outbound.allowPrivateNetworks`, link-local and cloud
 *   metadata addresses never;
 * - each delivery is logged (client, outcome, HTTP status), never the token;
 * - sessions ended outside a request (`SessionEndNotifier`) are announced the same way.
 */
import type Provider from 'oidc-provider';
import type { Logger } from 'pino';
import { createOutboundFetch } from '../connections/outbound-fetch.js';
import type { EndedSession } from '../db/payloads-repo.js';

const fetches = new Map<boolean, typeof fetch>();

/**
 * node-oidc-provider's `fetch` setting (back-channel logout deliveries, client JWKS URIs): the same
 * address policy as connections to upstreams (src/connections/outbound-address.ts), checked on the
 * address connected to, in place of the provider's own special-use check; one agent per policy for
 * every provider instance of the process.
 */
export function providerFetch(allowPrivateNetworks: boolean): (url: URL | string, options: RequestInit) => Promise<Response> {
  let f = fetches.get(allowPrivateNetworks);
  if (!f) fetches.set(allowPrivateNetworks, (f = createOutboundFetch({ allowPrivateNetworks })));
  const outbound = f;
  // the provider hands its own dispatcher along: the policy's agent replaces it
  return (url, options) => outbound(url, { ...options, dispatcher: undefined } as RequestInit);
}

/** A client as the provider hands it to back-channel logout. */
interface BackchannelClient {
  clientId: string;
  backchannelLogoutUri?: string;
}

/** Why a delivery failed: the provider's error, with the application's answer when there was one. */
type DeliveryError = Error & { response?: { status?: number } };

/**
 * Logs one back-channel logout delivery's outcome, after `context` (the realm, when known): the client,
 * and for a failure (`error` not null) the URI, the HTTP status and the reason; never the logout token.
 */
function logDelivery(log: Logger, context: Record<string, string>, client: BackchannelClient, error: DeliveryError | null): void {
  if (error === null) log.info({ ...context, clientId: client.clientId }, 'back-channel logout delivered');
  else log.warn({ ...context, clientId: client.clientId, uri: client.backchannelLogoutUri, status: error.response?.status, reason: error.message }, 'back-channel logout not delivered');
}

/** Logs each back-channel logout delivery of `provider` (never the logout token itself). */
export function logBackchannelDeliveries(provider: Provider, log: Logger): void {
  provider.on('backchannel.success', (_ctx: unknown, client: BackchannelClient) => logDelivery(log, {}, client, null));
  provider.on('backchannel.error', (_ctx: unknown, err: DeliveryError, client: BackchannelClient) => logDelivery(log, {}, client, err));
}

/**
 * Announces sessions that end outside a request (an operator's or the user's "sign out everywhere", a
 * password reset) with back-channel logout tokens, as `/session/end` does for the session it ends: for
 * each application signed in with such a session and registered with a back-channel logout URI, a
 * logout token from the issuer (domain) the session lived on, naming the session's `sid`. Deliveries run
 * in parallel, each at most 2.5 s (node-oidc-provider's limit); the caller waits for them (a CLI command
 * must not exit before they are made) and gets the counts.
 */
export class SessionEndNotifier {
  constructor(
    /** The provider of one of the realm's issuers, or undefined when the issuer no longer belongs to it. */
    private readonly providerFor: (realmId: string, issuer: string) => Promise<Provider | undefined>,
    private readonly log: Logger,
  ) {}

  async notify(realmId: string, accountId: string, ended: EndedSession[]): Promise<{ delivered: number; failed: number }> {
    const providers = new Map<string, Promise<Provider | undefined>>();
    const providerOf = (issuer: string) => {
      let p = providers.get(issuer);
      if (!p) {
        p = this.providerFor(realmId, issuer).catch((err) => {
          this.log.warn({ err, realm: realmId, issuer }, 'back-channel logout: no provider for the session’s issuer');
          return undefined;
        });
        providers.set(issuer, p);
      }
      return p;
    };
    let delivered = 0;
    let failed = 0;
    const deliveries: Array<Promise<void>> = [];
    for (const session of ended) {
      // a session stored before its issuer was recorded cannot be announced with the right `iss`
      if (!session.issuer) continue;
      for (const { clientId, sid } of session.clients) {
        if (!sid) continue;
        const issuer = session.issuer;
        deliveries.push(
          (async () => {
            const provider = await providerOf(issuer);
            const client = (await provider?.Client.find(clientId).catch(() => undefined)) as
              | (BackchannelClient & { backchannelLogout(sub: string, sid: string): Promise<void> })
              | undefined;
            if (!client?.backchannelLogoutUri) return;
            try {
              await client.backchannelLogout(accountId, sid);
              delivered++;
              logDelivery(this.log, { realm: realmId }, client, null);
            } catch (err) {
              failed++;
              logDelivery(this.log, { realm: realmId }, client, err as DeliveryError);
            }
          })(),
        );
      }
    }
    await Promise.all(deliveries);
    return { delivered, failed };
  }
}
