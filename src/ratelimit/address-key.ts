// The rate-limit identity of a client address: IPv4 as is, IPv6 reduced to its network prefix (a /64 by default).
import { isIPv4 } from 'node:net';

/**
 * The bucket key part for `address` (already normalised: IPv4-mapped IPv6 is plain IPv4). An IPv6 address becomes
 * its first `ipv6Prefix` bits, written as `2001:db8:0:1::/64`: one end site usually holds a whole /64 (SLAAC, privacy
 * addresses), so keying single addresses would hand it 2^64 buckets. IPv4 and anything unparsable come back unchanged.
 * Pure and allocation-light: IPv4, the common case, returns at the first check.
 */
export function addressBucketKey(address: string, ipv6Prefix: number): string {
  if (!address.includes(':') || ipv6Prefix >= 128) return address;
  const hextets = parseIPv6(address);
  if (hextets === undefined) return address;
  const words = Math.ceil(ipv6Prefix / 16);
  const out: string[] = [];
  for (let i = 0; i < words; i++) {
    const keep = Math.min(16, ipv6Prefix - i * 16);
    const mask = keep === 16 ? 0xffff : (0xffff << (16 - keep)) & 0xffff;
    out.push((hextets[i]! & mask).toString(16));
  }
  return `${out.join(':')}::/${ipv6Prefix}`;
}

/** The eight 16-bit groups of an IPv6 address (zone id ignored, dotted IPv4 tail accepted), or undefined. */
export function parseIPv6(text: string): number[] | undefined {
  const zone = text.indexOf('%');
  let address = zone === -1 ? text : text.slice(0, zone);
  const lastColon = address.lastIndexOf(':');
  const last = address.slice(lastColon + 1);
  if (last.includes('.')) {
    // "::ffff:1.2.3.4", "64:ff9b::1.2.3.4": the dotted quad is the last two groups.
    if (!isIPv4(last)) return undefined;
    const [a, b, c, d] = last.split('.').map(Number) as [number, number, number, number];
    address = `${address.slice(0, lastColon + 1)}${((a << 8) | b).toString(16)}:${((c << 8) | d).toString(16)}`;
  }
  const halves = address.split('::');
  if (halves.length > 2) return undefined;
  const head = groups(halves[0]!);
  const rest = halves.length === 2 ? groups(halves[1]!) : [];
  if (head === undefined || rest === undefined) return undefined;
  const known = head.length + rest.length;
  if (halves.length === 1 ? known !== 8 : known > 7) return undefined;
  return [...head, ...new Array<number>(8 - known).fill(0), ...rest];
}

const GROUP = /^[0-9a-fA-F]{1,4}$/;

function groups(part: string): number[] | undefined {
  if (part === '') return [];
  const values: number[] = [];
  for (const group of part.split(':')) {
    if (!GROUP.test(group)) return undefined;
    values.push(Number.parseInt(group, 16));
  }
  return values;
}
