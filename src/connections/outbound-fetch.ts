import { lookup as dnsLookup } from 'node:dns';
import { Agent, fetch as undiciFetch } from 'undici';

const TIMEOUT_MS = 10_000;

/**
 * RFC 6761 (6.3): names under `localhost` are loopback. Node's resolver asks the system resolver,
 * which often does not know `*.localhost`; answer those here so local upstreams work.
 */
function lookup(hostname: string, options: any, callback: any): void {
  if (hostname === 'localhost' || hostname.endsWith('.localhost')) {
    if (options?.all) callback(null, [{ address: '127.0.0.1', family: 4 }]);
    else callback(null, '127.0.0.1', 4);
    return;
  }
  dnsLookup(hostname, options, callback);
}

const dispatcher = new Agent({ connect: { lookup, timeout: TIMEOUT_MS }, headersTimeout: TIMEOUT_MS, bodyTimeout: TIMEOUT_MS });

/** The fetch used to talk to upstream identity providers: loopback-aware, with timeouts. */
export const outboundFetch: typeof fetch = ((input: any, init?: any) =>
  undiciFetch(input, { ...init, dispatcher, signal: init?.signal ?? AbortSignal.timeout(TIMEOUT_MS) })) as any;
