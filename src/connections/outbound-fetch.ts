import { lookup as dnsLookup, type LookupAddress } from 'node:dns';
import { isIP } from 'node:net';
import { Agent, buildConnector, fetch as undiciFetch } from 'undici';
import { addressRefusal, OutboundAddressRefused } from './outbound-address.js';

const TIMEOUT_MS = 10_000;

export interface OutboundOptions {
  /** Whether upstreams may be on loopback or private network addresses (link-local and metadata never). */
  allowPrivateNetworks: boolean;
}

/**
 * RFC 6761 (6.3): names under `localhost` are loopback. Node's resolver asks the system resolver,
 * which often does not know `*.localhost`; answer those here so local upstreams work. Every address a
 * name resolves to is checked against the address policy before the socket connects to it, so a name
 * cannot pass a check and then resolve elsewhere (DNS rebinding): the check is on what is connected to.
 */
function guardedLookup(options: OutboundOptions) {
  return (hostname: string, lookupOptions: any, callback: any): void => {
    const answer = (err: NodeJS.ErrnoException | null, address: string | LookupAddress[], family?: number) => {
      if (err) return callback(err);
      const addresses = Array.isArray(address) ? address.map((a) => a.address) : [address];
      for (const a of addresses) {
        const reason = addressRefusal(a, options.allowPrivateNetworks);
        if (reason) return callback(new OutboundAddressRefused(hostname, reason));
      }
      return Array.isArray(address) ? callback(null, address) : callback(null, address, family);
    };
    if (hostname === 'localhost' || hostname.endsWith('.localhost')) {
      if (lookupOptions?.all) answer(null, [{ address: '127.0.0.1', family: 4 }]);
      else answer(null, '127.0.0.1', 4);
      return;
    }
    dnsLookup(hostname, lookupOptions, answer as any);
  };
}

/**
 * The fetch used to talk to upstream identity providers: loopback-aware, with timeouts, and connecting
 * only to addresses the policy allows (src/connections/outbound-address.ts). A refused connection
 * rejects with OutboundAddressRefused, naming the host and the reason.
 */
export function createOutboundFetch(options: OutboundOptions): typeof fetch {
  const base = buildConnector({ timeout: TIMEOUT_MS, lookup: guardedLookup(options) } as any);
  // an IP address in the URL is connected to without a lookup: it is checked here
  const connect: buildConnector.connector = (opts, callback) => {
    if (isIP(opts.hostname)) {
      const reason = addressRefusal(opts.hostname, options.allowPrivateNetworks);
      if (reason) {
        callback(new OutboundAddressRefused(opts.hostname, reason), null);
        return;
      }
    }
    base(opts, callback);
  };
  const dispatcher = new Agent({ connect, headersTimeout: TIMEOUT_MS, bodyTimeout: TIMEOUT_MS });
  return (async (input: any, init?: any) => {
    try {
      return await undiciFetch(input, { ...init, dispatcher, signal: init?.signal ?? AbortSignal.timeout(TIMEOUT_MS) });
    } catch (err) {
      // undici reports a failed connection as "fetch failed"; the refusal itself says what happened
      const cause = (err as { cause?: unknown }).cause;
      if (cause instanceof OutboundAddressRefused) throw cause;
      throw err;
    }
  }) as any;
}
