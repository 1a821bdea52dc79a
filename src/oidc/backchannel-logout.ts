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
 * - each delivery is logged (client, outcome, HTTP status), never the token.
 */
import { lookup as dnsLookup, type LookupAddress } from 'node:dns';
import { isIP } from 'node:net';
import type Provider from 'oidc-provider';
import type { Logger } from 'pino';
import { Agent, fetch as undiciFetch } from 'undici';

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
