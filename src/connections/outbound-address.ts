import { BlockList, isIP } from 'node:net';
import { LatchkeyError } from '../errors.js';

/**
 * Which addresses Latchkey may connect to when it talks to an upstream identity provider (discovery,
 * token, userinfo, JWKS, and wherever a discovery document points). The URLs are an operator's, but
 * what they resolve to, and the endpoints of a discovery document, are not: without a check, a
 * connection is a way to make the server send requests inside its own network.
 */

function blockList(ranges: Array<[string, number]>): BlockList {
  const list = new BlockList();
  for (const [network, prefix] of ranges) list.addSubnet(network, prefix, isIP(network) === 6 ? 'ipv6' : 'ipv4');
  return list;
}

// never: link-local (where cloud instance metadata answers, 169.254.169.254), the cloud metadata
// addresses outside it (Alibaba 100.100.100.200, AWS IPv6 fd00:ec2::254), "this network" (0.0.0.0
// reaches the host itself), multicast and broadcast
const NEVER = blockList([
  ['169.254.0.0', 16],
  ['100.100.100.200', 32],
  ['0.0.0.0', 8],
  ['224.0.0.0', 4],
  ['240.0.0.0', 4],
  ['fe80::', 10],
  ['fd00:ec2::254', 128],
  ['::', 128],
  ['ff00::', 8],
]);

// only when allowed: loopback, the private ranges (RFC 1918, shared address space of RFC 6598, IPv6
// unique local), and the benchmarking range
const PRIVATE = blockList([
  ['127.0.0.0', 8],
  ['10.0.0.0', 8],
  ['172.16.0.0', 12],
  ['192.168.0.0', 16],
  ['100.64.0.0', 10],
  ['198.18.0.0', 15],
  ['::1', 128],
  ['fc00::', 7],
]);

/** The IPv4 address inside an IPv4-mapped (::ffff:a.b.c.d) or NAT64 (64:ff9b::a.b.c.d) IPv6 address. */
function embeddedIpv4(address: string): string | undefined {
  const m = /^(?:::ffff:|64:ff9b::)(?:(\d+\.\d+\.\d+\.\d+)|([0-9a-f]{1,4}):([0-9a-f]{1,4}))$/i.exec(address);
  if (!m) return undefined;
  if (m[1]) return m[1];
  const hi = parseInt(m[2]!, 16);
  const lo = parseInt(m[3]!, 16);
  return [hi >> 8, hi & 255, lo >> 8, lo & 255].join('.');
}

/**
 * Why Latchkey will not connect to `address` (an IP address), or undefined when it may. Loopback and
 * private addresses are refused unless `allowPrivateNetworks`; link-local and metadata addresses always.
 */
export function addressRefusal(address: string, allowPrivateNetworks: boolean): string | undefined {
  const bare = address.replace(/^\[|\]$/g, '').replace(/%.*$/, '');
  const family = isIP(bare);
  if (!family) return 'it is not an IP address';
  const v4 = family === 6 ? embeddedIpv4(bare) : bare;
  const [ip, type] = v4 ? [v4, 'ipv4' as const] : [bare, 'ipv6' as const];
  if (NEVER.check(ip, type)) return `${bare} is a link-local, cloud metadata or otherwise unroutable address, which Latchkey never connects to`;
  if (!allowPrivateNetworks && PRIVATE.check(ip, type)) {
    return `${bare} is a loopback or private network address; set outbound.allowPrivateNetworks (LATCHKEY_ALLOW_PRIVATE_NETWORKS=true) to allow upstreams inside your network`;
  }
  return undefined;
}

/** A connection to an upstream that the address policy refused; its message names the host and why. */
export class OutboundAddressRefused extends LatchkeyError {
  constructor(
    readonly host: string,
    readonly reason: string,
  ) {
    super('upstream_address_refused', `connecting to ${host} was refused: ${reason}`, 502);
  }
}
