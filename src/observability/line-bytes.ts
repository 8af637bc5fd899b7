// Writing JSON log fields as bytes, straight into a line writer's buffer: the access log's fast path, which builds
// no string per request. Each writer puts one field at `pos` and returns the position after it.
//
// Why by hand: a request's three access lines built as template strings and then encoded cost about twice what
// writing them does, inside the gateway (string concatenation, flattening, number-to-string conversion; see the
// README's benchmark notes). Every function here writes ASCII only and refuses (returns -1) what it cannot write
// exactly as JSON.stringify or String would; the caller then falls back to building the line as a string. Tests
// hold each one to JSON.stringify / String on many inputs; bench/micro.ts times both ways.

/** Somewhere lines can be encoded in place: a buffer with room for `bound` bytes at the returned offset. */
export interface ByteSink {
  /**
   * Room for one line of at most `bound` bytes: its start in `claimedBuffer`; -1 when there is none to give (the
   * line is long, or the writer is full), and the line must go through `write` instead.
   */
  claim(bound: number): number;
  /** The buffer the last successful claim() gave room in. */
  readonly claimedBuffer: Uint8Array;
  /** The line is in place up to `end` (exclusive); a claim not committed is simply forgotten. */
  commit(end: number): void;
}

/** True when `sink` also takes lines encoded in place. */
export function isByteSink(sink: object): sink is ByteSink {
  return typeof (sink as Partial<ByteSink>).claim === 'function' && typeof (sink as Partial<ByteSink>).commit === 'function';
}

/** The bytes of an ASCII constant, encoded once. */
export function ascii(text: string): Uint8Array {
  for (let i = 0; i < text.length; i++) {
    if (text.charCodeAt(i) > 0x7f) throw new TypeError(`not ASCII: ${text}`);
  }
  return new Uint8Array(Buffer.from(text, 'latin1'));
}

/** Beyond this many bytes TypedArray.set's call is cheaper than a loop; below it, dearer (measured: 8 bytes 16 ns
 * by loop, 36 by set; 38 bytes 96 against 36). */
const SET_ABOVE = 16;

/** Copies constant bytes. */
export function putBytes(buf: Uint8Array, pos: number, bytes: Uint8Array): number {
  const n = bytes.length;
  if (n > SET_ABOVE) buf.set(bytes, pos);
  else for (let i = 0; i < n; i++) buf[pos + i] = bytes[i]!;
  return pos + n;
}

/**
 * A string known to need no escaping and to be ASCII (a UUID, a hex trace id, a TLS version name), without quotes.
 * Not checked: only for values the gateway or Node makes (a method can be injected, so it is a JSON string).
 */
export function putAscii(buf: Uint8Array, pos: number, text: string): number {
  const n = text.length;
  for (let i = 0; i < n; i++) buf[pos + i] = text.charCodeAt(i);
  return pos + n;
}

/**
 * `JSON.stringify(text)` for text of printable ASCII without `"` or `\`; -1 for anything else (control characters,
 * quotes and backslashes need escapes, other characters UTF-8 or escapes; DEL, which JSON leaves raw, is escaped
 * by the line writer as a terminal control): the caller falls back to strings.
 */
export function putJsonString(buf: Uint8Array, pos: number, text: string): number {
  const n = text.length;
  buf[pos] = 0x22;
  for (let i = 0; i < n; i++) {
    const c = text.charCodeAt(i);
    if (c < 0x20 || c === 0x22 || c === 0x5c || c >= 0x7f) return -1;
    buf[pos + 1 + i] = c;
  }
  buf[pos + 1 + n] = 0x22;
  return pos + n + 2;
}

/** `String(n)` for a safe non-negative integer (a timestamp, a status, a count); -1 otherwise. */
export function putUint(buf: Uint8Array, pos: number, n: number): number {
  if (!(n >= 0 && n <= Number.MAX_SAFE_INTEGER) || Math.floor(n) !== n) return -1;
  let digits = 1;
  for (let rest = n; rest >= 10; rest = Math.floor(rest / 10)) digits++;
  let rest = n;
  for (let i = digits - 1; i >= 0; i--) {
    const q = Math.floor(rest / 10);
    buf[pos + i] = 0x30 + (rest - q * 10);
    rest = q;
  }
  return pos + digits;
}

/** Above this, hundredths no longer have few enough digits to be sure of String()'s spelling: fall back. */
const MAX_HUNDREDTHS = 1e11;

/**
 * `String(x)` for a number rounded to hundredths (the access log's duration_ms: `Math.round(ms * 100) / 100`).
 * Such a number is the double nearest to k/100 for an integer k, and with at most 11 significant digits no shorter
 * decimal maps to that double, so String() spells it as k/100 with its trailing zeros dropped. -1 for anything
 * else (negative, not in hundredths, too large).
 */
export function putHundredths(buf: Uint8Array, pos: number, x: number): number {
  const k = Math.round(x * 100);
  if (!(k >= 0 && k < MAX_HUNDREDTHS) || k / 100 !== x) return -1;
  const whole = Math.floor(k / 100);
  const cents = k - whole * 100;
  pos = putUint(buf, pos, whole);
  if (cents === 0) return pos;
  buf[pos++] = 0x2e; // '.'
  const tenths = Math.floor(cents / 10);
  buf[pos++] = 0x30 + tenths;
  const last = cents - tenths * 10;
  if (last !== 0) buf[pos++] = 0x30 + last;
  return pos;
}
