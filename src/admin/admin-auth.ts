// The admin listener's guards: the optional bearer token (constant-time) and a strict loopback test for Host names.
import { createHash, timingSafeEqual } from 'node:crypto';
import { isIP } from 'node:net';
import type { IncomingMessage } from 'node:http';

/** What the Authorization header said about the admin token. */
export type AdminTokenCheck = 'ok' | 'missing' | 'wrong';

/**
 * Compares the request's bearer token with `expected` in constant time: both are hashed first, so neither the
 * length nor a common prefix changes the time taken. A header without the Bearer scheme counts as missing.
 */
export function checkAdminToken(req: Pick<IncomingMessage, 'headers'>, expected: string): AdminTokenCheck {
  const header = req.headers.authorization;
  if (header === undefined) return 'missing';
  const match = /^\s*bearer\s+(\S+)\s*$/i.exec(header);
  if (match === null) return /^\s*bearer\b/i.test(header) ? 'wrong' : 'missing';
  const given = createHash('sha256').update(match[1]!).digest();
  const wanted = createHash('sha256').update(expected).digest();
  return timingSafeEqual(given, wanted) ? 'ok' : 'wrong';
}

/**
 * True for a loopback IP literal: any IPv4 address in 127.0.0.0/8 written as four decimal octets, `::1` (in any
 * valid spelling) and IPv4-mapped `::ffff:127.x.y.z`. A name such as `127.attacker.example` is not an IP, so no.
 */
export function isLoopbackAddress(address: string): boolean {
  const version = isIP(address);
  if (version === 4) return address.split('.')[0] === '127';
  if (version !== 6) return false;
  const lower = address.toLowerCase();
  const mapped = /^(?:0{0,4}:){0,5}:?ffff:(\d+\.\d+\.\d+\.\d+)$/.exec(lower) ?? /^::ffff:(\d+\.\d+\.\d+\.\d+)$/.exec(lower);
  if (mapped) return isLoopbackAddress(mapped[1]!);
  return expandIPv6(lower) === '0000:0000:0000:0000:0000:0000:0000:0001';
}

/**
 * True when a Host header names this machine's loopback: `localhost`, a loopback IPv4 literal, or `[::1]`, each with
 * an optional port. Parsed strictly: anything with extra labels, user info or a bad port is refused.
 */
export function isLoopbackHost(host: string | undefined): boolean {
  if (host === undefined) return false;
  const value = host.trim().toLowerCase();
  let name: string;
  let rest: string;
  if (value.startsWith('[')) {
    const end = value.indexOf(']');
    if (end === -1) return false;
    name = value.slice(1, end);
    rest = value.slice(end + 1);
    if (isIP(name) !== 6) return false;
  } else {
    const colon = value.indexOf(':');
    name = colon === -1 ? value : value.slice(0, colon);
    rest = colon === -1 ? '' : value.slice(colon);
  }
  // A port is 0-65535 as the proxy listener's Host check reads it (host-check.ts): `localhost:99999` is no authority.
  if (rest !== '' && !(/^:\d{1,5}$/.test(rest) && Number(rest.slice(1)) <= 65_535)) return false;
  if (name === 'localhost' || name === 'localhost.') return true;
  return isLoopbackAddress(name);
}

/** The eight groups of an IPv6 address, zero-padded (input already validated by isIP). */
function expandIPv6(address: string): string {
  const [head, tail] = address.includes('::') ? address.split('::') : [address, undefined];
  const left = head ? head.split(':') : [];
  const right = tail === undefined ? [] : tail ? tail.split(':') : [];
  const missing = 8 - left.length - right.length;
  const groups = tail === undefined ? left : [...left, ...Array<string>(missing).fill('0'), ...right];
  return groups.map((g) => g.padStart(4, '0')).join(':');
}
