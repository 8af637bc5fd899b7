// Works out who the client is: the socket peer, or, when (and only when) the peer is a trusted proxy, the address its
// forwarding headers name (X-Forwarded-For, else Forwarded's for=, else X-Real-IP). Every address leaves this module
// in one canonical text form, because the rate limiter, the connection cap and the logs all key on that text: two
// spellings of one client must never be two clients, and two clients must never share one spelling.
import { BlockList, isIPv4 } from 'node:net';

// ---------------------------------------------------------------------------------------------------------------
// Canonical form

/**
 * The eight 16-bit groups of an IPv6 address, or undefined when `text` is not one. Accepts every spelling RFC 4291
 * allows: either case, leading zeros (at most four digits a group), `::` anywhere once, a dotted IPv4 tail; a zone id
 * (`%eth0`) is dropped: it names an interface of the host that saw the address, not the client.
 */
export function parseIPv6(text: string): number[] | undefined {
  const zone = text.indexOf('%');
  if (zone === text.length - 1) return undefined; // "fe80::1%": a zone separator with no zone
  let address = zone === -1 ? text : text.slice(0, zone);
  const lastColon = address.lastIndexOf(':');
  if (lastColon === -1) return undefined;
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

/**
 * The IPv4 address an IPv6 address stands for, or undefined. These ranges carry one IPv4 host per address, so they
 * are that host: keyed as IPv6 they would all fall into one /64 bucket (one client starving every other), and the
 * same host reached over IPv4 would get a second bucket.
 * - `::ffff:0:0/96`, IPv4-mapped (RFC 4291): what a dual-stack socket reports for an IPv4 peer;
 * - `::ffff:0:0:0/96`, IPv4-translated (SIIT, RFC 2765);
 * - `64:ff9b::/96`, the NAT64 well-known prefix (RFC 6052): a stateless translator shows IPv4 host a.b.c.d as
 *   64:ff9b::a.b.c.d;
 * - `::/96`, IPv4-compatible (RFC 4291, deprecated, produced by no current stack), except `::/104` (0.0.0.0/8 is no
 *   host), so `::` and `::1` stay IPv6.
 * Not mapped: network-specific NAT64 prefixes and 64:ff9b:1::/48 (the IPv4 bits' position depends on a prefix length
 * the gateway cannot know), 6to4 and Teredo (they are sites, grouped by their prefix like any IPv6 site).
 */
export function embeddedIPv4(h: readonly number[]): string | undefined {
  const zeroTo = (end: number) => h.slice(0, end).every((g) => g === 0);
  const mapped = zeroTo(5) && h[5] === 0xffff;
  const translated = zeroTo(4) && h[4] === 0xffff && h[5] === 0;
  const nat64 = h[0] === 0x64 && h[1] === 0xff9b && h[2] === 0 && h[3] === 0 && h[4] === 0 && h[5] === 0;
  const compatible = zeroTo(6) && h[6]! >= 0x100;
  if (!(mapped || translated || nat64 || compatible)) return undefined;
  return `${h[6]! >> 8}.${h[6]! & 0xff}.${h[7]! >> 8}.${h[7]! & 0xff}`;
}

/** RFC 5952 text: lower case, no leading zeros, the longest run (the first of equals) of two or more zero groups as `::`. */
export function formatIPv6(h: readonly number[]): string {
  let bestStart = -1;
  let bestLength = 1; // a single zero group is written "0", never "::"
  for (let i = 0; i < 8; ) {
    if (h[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && h[j] === 0) j++;
    if (j - i > bestLength) [bestStart, bestLength] = [i, j - i];
    i = j;
  }
  const hex = (from: number, to: number) => h.slice(from, to).map((g) => g.toString(16)).join(':');
  if (bestStart === -1) return hex(0, 8);
  return `${hex(0, bestStart)}::${hex(bestStart + bestLength, 8)}`;
}

/**
 * The one text form of an IP address, or undefined when `text` is none: IPv4 in dotted decimal (Node's strict
 * parser: no leading zeros, which inet_aton would read as octal), an IPv6 address carrying an IPv4 host as that
 * IPv4 address (`embeddedIPv4`), any other IPv6 address as RFC 5952 text without its zone id.
 */
export function canonicalAddress(text: string): string | undefined {
  if (isIPv4(text)) return text;
  const hextets = parseIPv6(text);
  if (hextets === undefined) return undefined;
  return embeddedIPv4(hextets) ?? formatIPv6(hextets);
}

const MAPPED_V4 = '::ffff:';

/**
 * The canonical form of a socket's peer address (see `canonicalAddress`); text that is no address (a socket already
 * gone reports none) comes back as it is. Called for every request: the kernel's IPv4 text and the dual-stack
 * socket's `::ffff:a.b.c.d` return before any parsing.
 */
export function normalizeAddress(address: string): string {
  if (!address.includes(':')) return address;
  if (address.startsWith(MAPPED_V4) && isIPv4(address.slice(MAPPED_V4.length))) return address.slice(MAPPED_V4.length);
  return canonicalAddress(address) ?? address;
}

// ---------------------------------------------------------------------------------------------------------------
// Forwarding headers

/** A port after an address: "1.2.3.4:5678", "[2001:db8::1]:443". */
const PORT = /^:\d{1,5}$/;

/**
 * The canonical address of one hop of X-Forwarded-For or X-Real-IP, or of a Forwarded `for=` value once unquoted:
 * a bare address, or one with a port (`1.2.3.4:5678`, `[2001:db8::1]:443`, `[2001:db8::1]`; proxies such as Azure's
 * add the client's port). Undefined for anything else, `unknown` and obfuscated identifiers (`_hidden`) included.
 */
export function hopAddress(raw: string): string | undefined {
  const text = raw.trim();
  if (text.startsWith('[')) {
    const close = text.indexOf(']');
    if (close === -1) return undefined;
    const after = text.slice(close + 1);
    return after === '' || PORT.test(after) ? canonicalAddress(text.slice(1, close)) : undefined;
  }
  const colon = text.indexOf(':');
  // One colon: an IPv4 address and its port (an IPv6 address has at least two colons, and takes brackets for a port).
  if (colon !== -1 && colon === text.lastIndexOf(':')) {
    const ip = text.slice(0, colon);
    return PORT.test(text.slice(colon)) && isIPv4(ip) ? ip : undefined;
  }
  return canonicalAddress(text);
}

/**
 * What `forwardedForValues` gives for the part of a Forwarded header left of the elements that parse (an unterminated
 * quoted string there): no address, so a walk from the right that reaches it ends at the peer.
 */
export const MALFORMED_ELEMENT = '';

/**
 * The `for=` value of each element of an RFC 7239 Forwarded header, left to right (undefined for an element without
 * one). Parameter names are case-insensitive; quoted values are unquoted (`for="[2001:db8::1]:443"`); `,` and `;`
 * inside quotes separate nothing. Elements are cut from the right, as the walk reads them: the hops a trusted proxy
 * appended on the right parse whatever the client wrote on their left. A left part that does not parse (an
 * unterminated quoted string, which would swallow every element after it read from the left) is one element
 * MALFORMED_ELEMENT, as is an element whose parameters do not parse.
 */
export function forwardedForValues(header: string): (string | undefined)[] {
  return splitFromRight(header, ',').map((element) => {
    if (element === undefined) return MALFORMED_ELEMENT;
    const pairs = splitOutsideQuotes(element, ';');
    if (pairs === undefined) return MALFORMED_ELEMENT;
    let value: string | undefined;
    for (const pair of pairs) {
      const eq = pair.indexOf('=');
      // A repeated for= in one element (not allowed) keeps the last: the one written after the client's.
      if (eq !== -1 && pair.slice(0, eq).trim().toLowerCase() === 'for') value = unquote(pair.slice(eq + 1).trim());
    }
    return value;
  });
}

/**
 * `text` cut at each `separator` outside a quoted string, reading from the right, in left-to-right order; when a
 * quoted string is still open at the start, everything left of the last cut is one undefined part. Reading from the
 * right, a `"` inside a quoted string is escaped when an odd number of backslashes precede it.
 */
function splitFromRight(text: string, separator: string): (string | undefined)[] {
  const parts: (string | undefined)[] = [];
  let end = text.length;
  let quoted = false;
  for (let i = text.length - 1; i >= 0; i--) {
    const c = text[i];
    if (quoted) {
      if (c !== '"') continue;
      let backslashes = 0;
      while (i - 1 - backslashes >= 0 && text[i - 1 - backslashes] === '\\') backslashes++;
      if (backslashes % 2 === 0) quoted = false;
    } else if (c === '"') quoted = true;
    else if (c === separator) {
      parts.push(text.slice(i + 1, end));
      end = i;
    }
  }
  parts.push(quoted ? undefined : text.slice(0, end));
  return parts.reverse();
}

/** `text` cut at each `separator` that is not inside a quoted string; undefined when a quote is never closed. */
function splitOutsideQuotes(text: string, separator: string): string[] | undefined {
  const parts: string[] = [];
  let start = 0;
  let quoted = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (quoted && c === '\\') i++; // quoted-pair: the next character is literal
    else if (c === '"') quoted = !quoted;
    else if (!quoted && c === separator) {
      parts.push(text.slice(start, i));
      start = i + 1;
    }
  }
  if (quoted) return undefined;
  parts.push(text.slice(start));
  return parts;
}

/** A token as it is, a quoted-string without its quotes and with its quoted-pairs resolved. */
function unquote(value: string): string {
  if (value.length < 2 || !value.startsWith('"') || !value.endsWith('"')) return value;
  return value.slice(1, -1).replace(/\\(.)/g, '$1');
}

/** The forwarding headers as node hands them over (repeated lines as an array or joined with ", "). */
export interface ForwardingHeaders {
  readonly 'x-forwarded-for'?: string | string[] | undefined;
  readonly forwarded?: string | string[] | undefined;
  readonly 'x-real-ip'?: string | string[] | undefined;
  /** Read for the forwarding headers it names (nominatedForwardingHeader). */
  readonly connection?: string | string[] | undefined;
}

/** A Connection value that may name a forwarding header: the test before any split (keep-alive, close never match). */
const MAY_NAME_FORWARDING = /forwarded|x-real-ip/i;

/**
 * The first forwarding header (`X-Forwarded-*`, `Forwarded`, `X-Real-IP`) a Connection header names, lower-case, or
 * undefined. Tokens are case-insensitive and may carry whitespace around them (RFC 9110 §7.6.1); node joins repeated
 * Connection lines with ", ". A header named there is hop-by-hop: a compliant proxy removes it before it forwards
 * (the "hop-by-hop header abuse" of https://nathandavison.com/blog/abusing-http-hop-by-hop-request-headers turns
 * that removal into a way to take the client's address off a request). Envoy refuses such a request (400) rather
 * than remove the header, since removing it masks where the request came from; the driver does the same for a
 * trusted proxy's request (run.ts), and clientAddress never reads a header so named.
 */
export function nominatedForwardingHeader(connection: string | string[] | undefined): string | undefined {
  if (connection === undefined) return undefined;
  const text = Array.isArray(connection) ? connection.join(',') : connection;
  if (!MAY_NAME_FORWARDING.test(text)) return undefined;
  for (const token of text.split(',')) {
    const name = token.trim().toLowerCase();
    if (name === 'forwarded' || name === 'x-real-ip' || name.startsWith('x-forwarded-')) return name;
  }
  return undefined;
}

/** A header's lines as one list, or undefined when absent or blank (a proxy that sends it empty says nothing). */
function joined(value: string | string[] | undefined): string | undefined {
  const text = Array.isArray(value) ? value.join(',') : value;
  return text === undefined || text.trim() === '' ? undefined : text;
}

// ---------------------------------------------------------------------------------------------------------------
// Trusted proxies

/**
 * `server.client_address_header`: which header of a trusted proxy names the client. `auto` reads the first present of
 * X-Forwarded-For, Forwarded and X-Real-IP; a header named reads that one alone, as nginx's `real_ip_header` and
 * Kong's `real_ip_header` do, so a client's own copy of another header, passed on by a proxy that only sets its own,
 * is never read.
 */
export type ClientAddressHeader = 'auto' | 'x-forwarded-for' | 'forwarded' | 'x-real-ip';

/** The configured trusted proxies (IPs or CIDRs), matched with node's BlockList. Built once per config. */
export class TrustedProxies {
  readonly #list = new BlockList();
  readonly #empty: boolean;
  readonly #header: ClientAddressHeader;

  /** Throws Error with the offending entry when one is neither an IP nor a CIDR. */
  constructor(entries: readonly string[], header: ClientAddressHeader = 'auto') {
    this.#empty = entries.length === 0;
    this.#header = header;
    for (const entry of entries) {
      const [ip, bits] = entry.split('/') as [string, string | undefined];
      const canonical = canonicalAddress(ip);
      if (canonical === undefined) throw new Error(`not an IP address or CIDR: ${entry}`);
      const prefix = bits === undefined ? undefined : Number(bits);
      const v4 = isIPv4(canonical);
      const embedded = v4 && ip.includes(':');
      // A range wider than the 96 bits around an embedded IPv4 address is no IPv4 range: kept as written.
      if (embedded && prefix !== undefined && prefix < 96) this.#add(ip, prefix, 'ipv6');
      // An entry written in a range that stands for IPv4 hosts (64:ff9b::a00:1) must match the IPv4 address such a
      // peer is canonicalised to; BlockList itself only knows the IPv4-mapped range.
      else this.#add(canonical, embedded && prefix !== undefined ? prefix - 96 : prefix, v4 ? 'ipv4' : 'ipv6');
    }
  }

  #add(ip: string, bits: number | undefined, family: 'ipv4' | 'ipv6'): void {
    if (bits === undefined) this.#list.addAddress(ip, family);
    else this.#list.addSubnet(ip, bits, family);
  }

  /** True when `address` (canonical) is a trusted proxy. */
  has(address: string): boolean {
    if (this.#empty || address === '') return false;
    return this.#list.check(address, isIPv4(address) ? 'ipv4' : 'ipv6');
  }

  /**
   * The client address for a request from `peer` (canonical). Only a trusted peer's headers are read, and only one
   * of them: the configured one, or with `auto` in this order: X-Forwarded-For; else Forwarded, when an element has
   * `for=`; else X-Real-IP. Each is read from the right, skipping trusted hops: the first untrusted hop is the client
   * (anything to its left is the client's own say). A hop that is no address (`unknown`, `_hidden`, garbage) ends
   * the walk at the peer, as does the configured header's absence, and a Connection header naming any forwarding
   * header.
   */
  clientAddress(peer: string, headers: ForwardingHeaders): string {
    if (!this.has(peer)) return peer;
    // A forwarding header the proxy made hop-by-hop is never believed (nominatedForwardingHeader): the request is
    // refused, and its log line names the peer alone.
    if (headers.connection !== undefined && nominatedForwardingHeader(headers.connection) !== undefined) return peer;
    const header = this.#header;
    if (header === 'auto' || header === 'x-forwarded-for') {
      const xff = joined(headers['x-forwarded-for']);
      if (xff !== undefined) return this.#walk(peer, xff.split(','));
      if (header !== 'auto') return peer;
    }
    if (header === 'auto' || header === 'forwarded') {
      const forwarded = joined(headers.forwarded);
      const fors = forwarded === undefined ? undefined : forwardedForValues(forwarded);
      // A malformed part counts as a hop that is no address: reached by the walk, it ends at the peer.
      if (fors !== undefined && fors.some((v) => v !== undefined)) return this.#walk(peer, fors);
      if (header !== 'auto') return peer;
    }
    const realIp = joined(headers['x-real-ip']);
    // X-Real-IP is one address; a client's own copy joined with the proxy's reads as a list, whose right end is the proxy's.
    return realIp === undefined ? peer : this.#walk(peer, realIp.split(','));
  }

  #walk(peer: string, hops: readonly (string | undefined)[]): string {
    for (let i = hops.length - 1; i >= 0; i--) {
      const raw = hops[i];
      const hop = raw === undefined ? undefined : hopAddress(raw);
      if (hop === undefined) return peer; // not an address: fall back to what we saw
      if (!this.has(hop)) return hop;
    }
    return peer;
  }
}
