// The request target's one canonical form: anything a backend could read as another path than the gateway matched is refused.
//
// Why refuse instead of normalizing: the gateway forwards the target byte for byte, and Tomcat, Jetty, Spring, nginx
// and IIS each normalize differently (Tomcat strips `;params` per segment, IIS reads `\` as `/`, nginx decodes before
// merging dot-segments, ...). A target that is already canonical reads the same to all of them, so what public-path
// and route matching saw is exactly what the backend serves. The rules follow the strictest of them (Spring
// Security's StrictHttpFirewall and Tomcat's default) and are listed in README.md ("Request targets").
import { GatewayError } from '../errors.js';

/** Raw characters allowed in a canonical path (RFC 3986 pchar and "/"), by char code; `;` is not among them. */
const PATH_CHAR = new Uint8Array(128);
for (const ch of 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~!$&\'()*+,=:@/') PATH_CHAR[ch.charCodeAt(0)] = 1;

/** Characters that must never be percent-encoded in the canonical form (RFC 3986 §2.3 unreserved). */
const UNRESERVED = new Uint8Array(128);
for (const ch of 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~') UNRESERVED[ch.charCodeAt(0)] = 1;

/** Value of an upper-case hex digit, -1 for a lower-case one (refused: not canonical), -2 for anything else. */
function hexValue(c: number): number {
  if (c >= 48 && c <= 57) return c - 48;
  if (c >= 65 && c <= 70) return c - 55;
  if (c >= 97 && c <= 102) return -1;
  return -2;
}

/** Why a percent-encoded byte is not allowed in the canonical path, or undefined when it is. */
function encodedByteProblem(byte: number): string | undefined {
  if (byte < 0x20 || byte === 0x7f) return 'encoded control character or NUL';
  if (byte === 0x2f || byte === 0x5c) return 'encoded slash or backslash (%2F, %5C)';
  if (byte === 0x25) return 'double encoding (%25)';
  if (byte === 0x3b) return 'encoded semicolon (%3B)';
  if (byte < 128 && UNRESERVED[byte] === 1) return 'percent-encoded unreserved character (such as %2E or %41): send it unencoded';
  return undefined;
}

/** Why a raw character is not allowed in the canonical path (it is not a pchar). */
function rawCharProblem(c: number): string {
  if (c === 0x3b) return 'path parameters (;)';
  if (c === 0x5c) return 'backslash';
  if (c === 0x23) return 'fragment (#) in the request target';
  if (c < 0x20 || c === 0x7f) return 'control character or NUL';
  if (c >= 0x80) return 'non-ASCII byte: percent-encode it';
  return 'character that must be percent-encoded';
}

/**
 * Why `target` (the raw request target, `req.url`) is not a canonical origin-form target, or undefined when it is.
 * Pure and allocation-free on the accepted path; runs once per request, before any phase. Rules:
 * - origin-form only: it starts with "/" (absolute-form `http://h/p`, authority-form and `*` are refused);
 * - the path holds only RFC 3986 pchars and "/": no `;`, `\`, `#`, space, control, NUL or non-ASCII byte;
 * - percent-encoding uses upper-case hex, and never encodes an unreserved character, "/", "\", "%", ";" or a
 *   control byte;
 * - no "." or ".." segment and no empty segment ("//"); a trailing "/" is fine;
 * - the query (after the first "?") holds no `#`, space, control or non-ASCII byte; it is not otherwise judged,
 *   since no match reads it.
 */
export function targetProblem(target: string): string | undefined {
  const length = target.length;
  if (length === 0 || target.charCodeAt(0) !== 0x2f) {
    return target === '*' ? 'asterisk-form (*) target' : 'request target must be origin-form (/path?query)';
  }
  let segmentStart = 1;
  let i = 1;
  for (; i <= length; i++) {
    const c = i === length ? 0x3f : target.charCodeAt(i);
    if (c === 0x2f || c === 0x3f) {
      // End of a segment [segmentStart, i).
      const size = i - segmentStart;
      if (size === 0 && c === 0x2f) return 'empty path segment (//)';
      if (size === 1 && target.charCodeAt(segmentStart) === 0x2e) return 'dot-segment (.)';
      if (size === 2 && target.charCodeAt(segmentStart) === 0x2e && target.charCodeAt(segmentStart + 1) === 0x2e) {
        return 'dot-segment (..)';
      }
      if (c === 0x3f) break;
      segmentStart = i + 1;
      continue;
    }
    if (c === 0x25) {
      const hi = i + 1 < length ? hexValue(target.charCodeAt(i + 1)) : -2;
      const lo = i + 2 < length ? hexValue(target.charCodeAt(i + 2)) : -2;
      if (hi === -2 || lo === -2) return 'malformed percent-encoding';
      if (hi === -1 || lo === -1) return 'percent-encoding must use upper-case hex digits';
      const problem = encodedByteProblem(hi * 16 + lo);
      if (problem !== undefined) return problem;
      i += 2;
      continue;
    }
    if (c >= 128 || PATH_CHAR[c] !== 1) return rawCharProblem(c);
  }
  // The query: forwarded as is, but never with bytes that parsers split or drop differently.
  for (i++; i < length; i++) {
    const c = target.charCodeAt(i);
    if (c === 0x23) return 'fragment (#) in the request target';
    if (c <= 0x20 || c >= 0x7f) return 'control, space or non-ASCII byte in the query';
  }
  return undefined;
}

/** True when `target` is canonical (see targetProblem). */
export function isCanonicalTarget(target: string): boolean {
  return targetProblem(target) === undefined;
}

/** One shared error per reason: a flood of bad targets allocates nothing per request. */
const ERRORS = new Map<string, GatewayError>();

/**
 * The driver's one call, before any phase: undefined for a canonical origin-form target, else the 400 to answer
 * (its `details` names the rule broken, never echoing the target).
 */
export function checkRequestTarget(target: string | undefined): GatewayError | undefined {
  const problem = targetProblem(target ?? '');
  if (problem === undefined) return undefined;
  let error = ERRORS.get(problem);
  if (error === undefined) {
    error = new GatewayError('BAD_REQUEST', { details: `request target not canonical: ${problem}` });
    ERRORS.set(problem, error);
  }
  return error;
}
