/**
 * OpenID Connect Back-Channel Logout 1.0: when a session ends through RP-initiated logout (the
 * provider's `/session/end`, which the account page's "Sign out" goes through too), every application
 * of that session registered with a `backchannel_logout_uri` is sent a logout token (a JWT with `sub`,
 * `sid`, `events`, signed as its ID tokens are) by the server, so it can end its own session for the
 * user even when the browser never comes back to it.
 *
 * node-oidc-provider delivers the tokens; this file decides how they travel and what is recorded:
 * - the provider's own `fetch` refuses special-use addresses (loopback, private ranges, link-local)
 *   after connecting; an operator whose applications live on a private network allows those with
 *   `outbound.allowPrivateNetworks` (see `privateNetworkFetch`); link-local addresses (cloud metadata
 *   services) are refused either way;
 * - each delivery is logged (client, outcome, HTTP status), never the token;
 * - sessions ended outside a request (`SessionEndNotifier`) are announced the same way.
 */
import { lookup as dnsLookup, type LookupAddress } from 'node:dns';
import { isIP } from 'node:net';
import type Provider from 'oidc-provider';
import type { Logger } from 'pino';
import { Agent, fetch as undiciFetch } from 'undici';
import type { EndedSession } from '../db/payloads-repo.js';

/** Link-local addresses, where cloud metadata services answer (169.254.169.254), and AWS's IPv6 metadata address fd00:ec2::254. */
function linkLocal(address: string): boolean {
  const v4 = address.startsWith('::ffff:') ? address.slice(7) : address;
  if (isIP(v4) === 4) return v4.startsWith('169.254.');
  const a = address.toLowerCase();
  return /^fe[89ab]/.test(a) || a === 'fd00:ec2::254';
}

/** DNS lookup that answers `*.localhost` with loopback (RFC 6761) and refuses link-local answers. */
function lookup(hostname: string, options: any, callback: any): void {
  if (hostname === 'localhost' || hostname.endsWith('.localhost')) {
    if (options?.all) callback(null, [{ address: '127.0.0.1', family: 4 }]);
    else callback(null, '127.0.0.1', 4);
    return;
  }
  dnsLookup(hostname, { ...options, all: true }, (err, addresses: LookupAddress[]) => {
    if (err) return callback(err);
    const usable = addresses.filter((a) => !linkLocal(a.address));
    if (!usable.length) return callback(Object.assign(new Error(`${hostname} resolves only to link-local addresses, which are never contacted`), { code: 'ELINKLOCAL' }));
    if (options?.all) return callback(null, usable);
    return callback(null, usable[0]!.address, usable[0]!.family);
  });
}

let privateDispatcher: Agent | undefined;

/**
 * node-oidc-provider's `fetch` setting. Without `allowPrivateNetworks` its own request (with its
 * special-use address check) goes out unchanged; with it, the request goes through a dispatcher that
 * reaches loopback and private addresses but still never link-local ones, nor a literal link-local IP.
 */
export function privateNetworkFetch(allowPrivateNetworks: boolean) {
  return (url: URL | string, options: RequestInit & { dispatcher?: unknown }): Promise<Response> => {
    if (!allowPrivateNetworks) return globalThis.fetch(url, options as RequestInit);
    const host = new URL(url).hostname.replace(/^\[|\]$/g, '');
    if (isIP(host) && linkLocal(host)) return Promise.reject(new Error(`${host} is a link-local address, which is never contacted`));
    privateDispatcher ??= new Agent({ connect: { lookup } });
    return undiciFetch(url, { ...(options as any), dispatcher: privateDispatcher }) as unknown as Promise<Response>;
  };
}

/** Logs each back-channel logout delivery of `provider` (never the logout token itself). */
export function logBackchannelDeliveries(provider: Provider, log: Logger): void {
  provider.on('backchannel.success', (_ctx: unknown, client: { clientId: string }) => log.info({ clientId: client.clientId }, 'back-channel logout delivered'));
  provider.on('backchannel.error', (_ctx: unknown, err: Error & { response?: { status?: number } }, client: { clientId: string; backchannelLogoutUri?: string }) =>
    log.warn(
      { clientId: client.clientId, uri: client.backchannelLogoutUri, status: err.response?.status, reason: err.message },
      'back-channel logout not delivered',
    ),
  );
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
              | { clientId: string; backchannelLogoutUri?: string; backchannelLogout(sub: string, sid: string): Promise<void> }
              | undefined;
            if (!client?.backchannelLogoutUri) return;
            try {
              await client.backchannelLogout(accountId, sid);
              delivered++;
              this.log.info({ realm: realmId, clientId }, 'back-channel logout delivered');
            } catch (err) {
              failed++;
              const e = err as Error & { response?: { status?: number } };
              this.log.warn({ realm: realmId, clientId, uri: client.backchannelLogoutUri, status: e.response?.status, reason: e.message }, 'back-channel logout not delivered');
            }
          })(),
        );
      }
    }
    await Promise.all(deliveries);
    return { delivered, failed };
  }
}
