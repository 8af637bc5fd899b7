// The rate-limit identity of a client address: IPv4 as is, IPv6 reduced to its network prefix (a /64 by default).
// The per-client connection cap counts by the same key, so "one client" means the same thing to both.
import { embeddedIPv4, formatIPv6, parseIPv6 } from '../pipeline/client-address.js';

export { parseIPv6 } from '../pipeline/client-address.js';

/**
 * The bucket key part for `address`, worked out from its value, never its spelling: `2001:DB8::1`,
 * `2001:0db8:0:0::0001` and `2001:db8::1%eth0` are one key, and an IPv6 address that stands for an IPv4 host
 * (`::ffff:10.0.0.1`, `::ffff:a00:1`, `64:ff9b::10.0.0.1`; see client-address.ts) is that IPv4 address.
 * An IPv6 address becomes its first `ipv6Prefix` bits, written as `2001:db8:0:1::/64`: one end site usually holds a
 * whole /64 (SLAAC, privacy addresses), so keying single addresses would hand it 2^64 buckets. At 128 it is the
 * address in RFC 5952 text. Anything unparsable comes back unchanged.
 * Allocation-light for IPv4, the common case: it returns at the first check.
 */
export function addressBucketKey(address: string, ipv6Prefix: number): string {
  if (!address.includes(':')) return address;
  const hextets = parseIPv6(address);
  if (hextets === undefined) return address;
  const v4 = embeddedIPv4(hextets);
  if (v4 !== undefined) return v4; // an IPv4 host in IPv6 clothing
  if (ipv6Prefix >= 128) return formatIPv6(hextets);
  const words = Math.ceil(ipv6Prefix / 16);
  const out: string[] = [];
  for (let i = 0; i < words; i++) {
    const keep = Math.min(16, ipv6Prefix - i * 16);
    const mask = keep === 16 ? 0xffff : (0xffff << (16 - keep)) & 0xffff;
    out.push((hextets[i]! & mask).toString(16));
  }
  return `${out.join(':')}::/${ipv6Prefix}`;
}
