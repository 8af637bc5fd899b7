// The request's authority (Host, or HTTP/2's :authority) in one form every backend reads alike, checked before routing.
//
// Why: routes match on the host, and the gateway forwards the header as sent. A value that the gateway and a backend
// read as different hosts lets a request take one route (say, a public one) while the backend serves it as another
// host: `x@admin.example.com` is no host to the gateway but `admin.example.com` to `new URL()`, `127.1` is 127.0.0.1
// to a WHATWG parser, a second Host line or an :authority that disagrees with Host is read first by some and last
// by others. So anything but a plain name, a dotted-quad IPv4 or a canonical bracketed IPv6, with an optional
// numeric port, is refused with 400 (RFC 9112 §3.2 asks for 400 on an invalid or repeated Host), never echoed.
import type { IncomingMessage } from 'node:http';
import { isIPv6 } from 'node:net';
import { GatewayError } from '../errors.js';

/** A DNS name's longest form (RFC 1035), without its optional trailing dot. */
const MAX_NAME = 253;
const MAX_LABEL = 63;

/** Characters of a host name we accept: letters, digits, "-", "_" (service names in containers) and ".". */
const NAME_CHAR = new Uint8Array(128);
for (const ch of 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.') NAME_CHAR[ch.charCodeAt(0)] = 1;

function isDigit(c: number): boolean {
  return c >= 48 && c <= 57;
}

/**
 * Why `[start, end)` of `value` is not a dotted-quad IPv4 address in its one canonical spelling, or undefined. Only
 * asked of names whose last label is numeric: a WHATWG URL parser reads any such name as an IPv4 address (`127.1`,
 * `0x7f.0.0.1`, `2130706433` are all 127.0.0.1 to it), which no route written as a name or a dotted quad would match.
 */
function ipv4Problem(value: string, start: number, end: number): string | undefined {
  const parts = value.slice(start, end).split('.');
  if (parts.length !== 4) return 'numeric host that is not a dotted-quad IPv4 address';
  for (const part of parts) {
    if (part.length === 0 || part.length > 3) return 'numeric host that is not a dotted-quad IPv4 address';
    for (let i = 0; i < part.length; i++) if (!isDigit(part.charCodeAt(i))) return 'numeric host that is not a dotted-quad IPv4 address';
    if ((part.length > 1 && part.charCodeAt(0) === 48) || Number(part) > 255) return 'IPv4 address not in its canonical form';
  }
  return undefined;
}

/** Why `[start, end)` of `value` is not a host name (or dotted-quad IPv4 address), or undefined. */
function nameProblem(value: string, start: number, end: number): string | undefined {
  if (end > start && value.charCodeAt(end - 1) === 0x2e) end--; // "example.com." is the same name
  if (end === start) return 'empty host name';
  if (end - start > MAX_NAME) return 'host name longer than 253 characters';
  let labelStart = start;
  for (let i = start; i <= end; i++) {
    const c = i === end ? 0x2e : value.charCodeAt(i);
    if (c === 0x2e) {
      const size = i - labelStart;
      if (size === 0) return 'empty label in the host name';
      if (size > MAX_LABEL) return 'host name label longer than 63 characters';
      if (i < end) labelStart = i + 1;
      continue;
    }
    if (c >= 128 || NAME_CHAR[c] !== 1) return c === 0x40 ? 'user information (@) in the host' : 'character not allowed in a host name';
  }
  // The last label decides whether URL parsers read the name as an IPv4 address: all digits, or 0x followed by hex.
  const first = value.charCodeAt(labelStart);
  let numeric = true;
  for (let i = labelStart; i < end && numeric; i++) numeric = isDigit(value.charCodeAt(i));
  const hex = first === 48 && end - labelStart >= 2 && (value.charCodeAt(labelStart + 1) | 0x20) === 0x78;
  return numeric || hex ? ipv4Problem(value, start, end) : undefined;
}

/** Why a bracketed IPv6 literal ending at `close` is not acceptable, or undefined. */
function ipv6Problem(value: string, close: number): string | undefined {
  const inner = value.slice(1, close);
  // No zone ids ("%25eth0") or IPvFuture: neither names a host a backend can be asked for.
  if (inner.includes('%') || !isIPv6(inner)) return 'invalid IPv6 literal';
  // One spelling per address, the one URL parsers produce: "[0:0::1]" and "[::1]" must not take different routes.
  if (new URL(`http://[${inner}]/`).hostname !== `[${inner.toLowerCase()}]`) return 'IPv6 literal not in its canonical form';
  return undefined;
}

/**
 * Authorities already found acceptable. A gateway's clients send a handful of Host values, and checking one walks it
 * character by character (and splits a numeric one): 1-2 % of a proxied request's CPU. The check is a pure function
 * of the string, so a hit answers for it. Emptied when full, so a client sending ever new hosts gets each checked, as
 * without the set, and holds at most MAX_ACCEPTED short strings.
 */
const ACCEPTED = new Set<string>();
const MAX_ACCEPTED = 256;

/**
 * Why `authority` (a Host value or :authority) is not acceptable, or undefined when it is: a host name (letters,
 * digits, "-", "_", labels of 1-63, at most 253 in all, one trailing dot allowed), a dotted-quad IPv4 address or a
 * canonical bracketed IPv6 address, then an optional ":" and port of at most five digits, up to 65535. The empty
 * value is accepted: RFC 9112 §3.2 has a client send it for a target without an authority.
 */
export function authorityProblem(authority: string): string | undefined {
  if (ACCEPTED.has(authority)) return undefined;
  const problem = scanAuthority(authority);
  if (problem === undefined) {
    if (ACCEPTED.size >= MAX_ACCEPTED) ACCEPTED.clear();
    ACCEPTED.add(authority);
  }
  return problem;
}

function scanAuthority(authority: string): string | undefined {
  const length = authority.length;
  if (length === 0) return undefined;
  let hostEnd: number;
  if (authority.charCodeAt(0) === 0x5b /* '[' */) {
    const close = authority.indexOf(']');
    if (close === -1) return 'unterminated IPv6 literal';
    const problem = ipv6Problem(authority, close);
    if (problem !== undefined) return problem;
    hostEnd = close + 1;
  } else {
    const colon = authority.indexOf(':');
    hostEnd = colon === -1 ? length : colon;
    const problem = nameProblem(authority, 0, hostEnd);
    if (problem !== undefined) return problem;
  }
  if (hostEnd === length) return undefined;
  if (authority.charCodeAt(hostEnd) !== 0x3a /* ':' */) return 'characters after the host';
  const digits = length - hostEnd - 1;
  if (digits > 5) return 'port out of range';
  for (let i = hostEnd + 1; i < length; i++) if (!isDigit(authority.charCodeAt(i))) return 'port that is not a number';
  if (digits > 0 && Number(authority.slice(hostEnd + 1)) > 65535) return 'port out of range';
  return undefined;
}

/** True when the raw header list holds more than one Host line (node keeps the first and drops the rest). */
function repeatsHost(rawHeaders: readonly string[]): boolean {
  let seen = false;
  for (let i = 0; i < rawHeaders.length; i += 2) {
    const name = rawHeaders[i]!;
    if (name.length === 4 && (name === 'Host' || name === 'host' || name.toLowerCase() === 'host')) {
      if (seen) return true;
      seen = true;
    }
  }
  return false;
}

/** What the authority checks read of a request; the version's minor number only matters without a Host. */
type AuthorityFacts = Pick<IncomingMessage, 'httpVersionMajor' | 'headers' | 'rawHeaders'> & { readonly httpVersionMinor?: number };

/** Why the request's authority is not acceptable, or undefined. */
export function requestAuthorityProblem(req: AuthorityFacts): string | undefined {
  const host = req.headers.host;
  if (req.httpVersionMajor === 2) {
    const authority = req.headers[':authority'] as string | undefined;
    // RFC 9113 §8.3.1: :authority names the target; a Host beside it must agree, or the two could take two routes.
    if (authority !== undefined && host !== undefined && authority.toLowerCase() !== host.toLowerCase()) {
      return 'Host and :authority disagree';
    }
    const value = authority ?? host;
    return value === undefined ? undefined : authorityProblem(value);
  }
  if (host === undefined) {
    // RFC 9112 §3.2: 400 to an HTTP/1.1 request without Host. Node's own bare 400 is turned off (proxy-listener.ts),
    // so that this one carries the gateway's headers and a log line. HTTP/1.0 had no Host: it matches host-less routes.
    return (req.httpVersionMinor ?? 1) >= 1 ? 'no Host header (HTTP/1.1 requires one)' : undefined;
  }
  if (repeatsHost(req.rawHeaders)) return 'more than one Host header';
  return authorityProblem(host);
}

/** One shared error per reason: a flood of bad hosts allocates nothing per request. */
const ERRORS = new Map<string, GatewayError>();

/** The driver's call, beside the request-target check: undefined when the authority is acceptable, else the 400. */
export function checkRequestHost(req: AuthorityFacts): GatewayError | undefined {
  const problem = requestAuthorityProblem(req);
  if (problem === undefined) return undefined;
  let error = ERRORS.get(problem);
  if (error === undefined) {
    error = new GatewayError('BAD_REQUEST', { details: `invalid Host: ${problem}` });
    ERRORS.set(problem, error);
  }
  return error;
}
