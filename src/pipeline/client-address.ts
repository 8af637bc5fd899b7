// Works out the client's address: the socket peer, or X-Forwarded-For when (and only when) the peer is a trusted proxy.
import { BlockList, isIPv4, isIPv6 } from 'node:net';

const MAPPED_V4 = '::ffff:';

/** Strips the IPv4-mapped IPv6 prefix so 127.0.0.1 and ::ffff:127.0.0.1 are the same client. */
export function normalizeAddress(address: string): string {
  return address.startsWith(MAPPED_V4) && isIPv4(address.slice(MAPPED_V4.length))
    ? address.slice(MAPPED_V4.length)
    : address;
}

/** The configured trusted proxies (IPs or CIDRs), matched with node's BlockList. Built once at start-up. */
export class TrustedProxies {
  readonly #list = new BlockList();
  readonly #empty: boolean;

  /** Throws Error with the offending entry when one is neither an IP nor a CIDR. */
  constructor(entries: readonly string[]) {
    this.#empty = entries.length === 0;
    for (const entry of entries) {
      const [ip, bits] = entry.split('/');
      const family = isIPv4(ip!) ? 'ipv4' : isIPv6(ip!) ? 'ipv6' : undefined;
      if (!family) throw new Error(`not an IP address or CIDR: ${entry}`);
      if (bits === undefined) this.#list.addAddress(ip!, family);
      else this.#list.addSubnet(ip!, Number(bits), family);
    }
  }

  /** True when `address` (already normalized) is a trusted proxy. */
  has(address: string): boolean {
    if (this.#empty || address === '') return false;
    return this.#list.check(address, isIPv4(address) ? 'ipv4' : 'ipv6');
  }

  /**
   * The client address for a request from `peer`. With a trusted peer, X-Forwarded-For is read from the right,
   * skipping trusted hops: the first untrusted entry is the client. Otherwise the header is ignored.
   */
  clientAddress(peer: string, forwardedFor: string | undefined): string {
    if (forwardedFor === undefined || !this.has(peer)) return peer;
    const hops = forwardedFor.split(',');
    for (let i = hops.length - 1; i >= 0; i--) {
      const hop = normalizeAddress(hops[i]!.trim());
      if (hop === '' || !(isIPv4(hop) || isIPv6(hop))) return peer; // a malformed chain: fall back to what we saw
      if (!this.has(hop)) return hop;
    }
    return peer;
  }
}
