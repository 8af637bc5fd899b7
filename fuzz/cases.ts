// Generated malformed and adversarial HTTP/1.1 exchanges for the fuzz harness: request lines, targets, headers,
// body framings, pipelining, early closes and read sizes. Deterministic for a given seed.

/** How a case's bytes go on the wire and what the client does afterwards. */
export interface FuzzCase {
  /** The generator family, for the counts in the report. */
  readonly kind: string;
  /** The bytes to send, in order. */
  readonly bytes: Buffer;
  /** 'whole': one write; 'tiny': a few bytes per write with pauses; 'split': two writes with a pause between. */
  readonly write: 'whole' | 'tiny' | 'split';
  /** What the client does after writing: read until the server closes (bounded), close at once, or never read. */
  readonly after: 'read' | 'close' | 'stall';
}

/** A small deterministic PRNG (mulberry32). */
export class Random {
  #state: number;
  constructor(seed: number) {
    this.#state = seed >>> 0;
  }
  next(): number {
    this.#state = (this.#state + 0x6d2b79f5) >>> 0;
    let t = this.#state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }
  int(n: number): number {
    return Math.floor(this.next() * n);
  }
  pick<T>(list: readonly T[]): T {
    return list[this.int(list.length)]!;
  }
  chance(p: number): boolean {
    return this.next() < p;
  }
}

/** The value every spoofed header carries: the backend reports any request where it arrives. */
export const SPOOF = 'FUZZSPOOF';

const METHODS = ['GET', 'GET', 'GET', 'POST', 'HEAD', 'PUT', 'DELETE', 'PATCH', 'OPTIONS', 'TRACE', 'CONNECT', 'get', 'G ET', 'FOO', 'PRI', ''];
const VERSIONS = ['HTTP/1.1', 'HTTP/1.1', 'HTTP/1.1', 'HTTP/1.0', 'HTTP/0.9', 'HTTP/2.0', 'http/1.1', 'HTTP/1.10', 'HTTP/1.1 x', ''];
const LINE_ENDS = ['\r\n', '\r\n', '\r\n', '\n', '\r', '\r\r\n'];
/** Pieces of path tricks; a target is a few of them joined by "/" (or not). */
const PIECES = [
  'public', 'public', 'public', 'admin', 'x', '..', '.', '%2e', '%2E', '%2e%2e', '.%2e', '%2E.', ';', ';x=1', '..;', '%3b', '%3B',
  '%2f', '%2F', '%5c', '\\', '', '%25', '%252e', '%252f', '%00', '%0a', '%0D%0A', '#', '%23', '?', '%', '%zz', '%c0%ae', '%C0%AE',
  'caf\u00e9', '%C3%A9', '\x00', '\x7f', '\t', ' ', '~user', 'a..b', '.hidden', '%41', '%7E', '%u002e', '%%32%65', '..%2f', 'x;jsessionid=1',
];
const OWNED_SPELLINGS = [
  'X-User-Id', 'x_user_id', 'X_USER_ID', 'X-User_Id', 'X-User-Email', 'x_user_email', 'X-Consumer-Id', 'X_Consumer_Name', 'X-Request-ID',
  'x_request_id', 'X-Proxy-By', 'X-Forwarded-For', 'X_Forwarded_For', 'X-Forwarded-Proto', 'X-Forwarded-Host', 'X-Forwarded-Port',
  'X-Forwarded-Prefix', 'x_forwarded_server', 'Forwarded', 'X-Real-IP', 'X_Real_Ip', 'X-Original-URL', 'X-Rewrite-URL',
];
const BAD_NAMES = ['X Space', 'X:Colon', '', 'X\x00Nul', 'X\u00e9', '(x)', 'x@y', 'X\tTab', '"q"', 'X\x7f'];
const BAD_VALUES = ['a\x00b', 'a\x01b', 'a\rb', '\u00ff\u00fe', ' lead', 'trail ', 'x'.repeat(20_000), '%00', '\x7f'];
const TRANSFER_ENCODINGS = ['chunked', 'Chunked', 'chunked, gzip', 'gzip, chunked', ' chunked', 'identity', 'xchunked', 'chunked\x00', 'chunked, chunked'];
const CONTENT_LENGTHS = ['5', '-1', '+5', '0x10', '5, 5', '5, 6', '99999999999999999999', 'abc', '', ' 5', '1e3'];
const CHUNK_SIZES = ['5', 'ffffffffffffffffff', '-1', '0x5', '5;ext=1', '5 ;x', '5\x00', 'g', '', '00000000000000005', '5;' + 'e'.repeat(10_000)];

function pathTarget(r: Random): string {
  if (r.chance(0.05)) return r.pick(['*', 'http://127.0.0.1/public/x', 'http://evil.example/admin', 'evil.example:443', '/' + 'a'.repeat(r.int(20_000))]);
  let target = r.chance(0.7) ? '/public' : '';
  const n = 1 + r.int(5);
  for (let i = 0; i < n; i++) target += (r.chance(0.85) ? '/' : '') + r.pick(PIECES);
  if (!target.startsWith('/') && r.chance(0.8)) target = `/${target}`;
  if (r.chance(0.2)) target += `?q=${r.pick(PIECES)}`;
  return target;
}

function spoofedHeaders(r: Random): string[] {
  const lines: string[] = [];
  const n = 1 + r.int(4);
  for (let i = 0; i < n; i++) lines.push(`${r.pick(OWNED_SPELLINGS)}: ${SPOOF}`);
  return lines;
}

function oddHeaders(r: Random): string[] {
  const lines: string[] = [];
  switch (r.int(7)) {
    case 0:
      lines.push(`${r.pick(BAD_NAMES)}: v`);
      break;
    case 1:
      lines.push(`X-Odd: ${r.pick(BAD_VALUES)}`);
      break;
    case 2:
      lines.push('X-Fold: a', ` ${SPOOF}-folded`); // obs-fold continuation line
      break;
    case 3:
      for (let i = 0; i < 150 + r.int(150); i++) lines.push(`X-Many-${i}: ${i}`);
      break;
    case 4:
      lines.push('Host: second.example');
      break;
    case 5:
      lines.push(`Content-Length: ${r.pick(CONTENT_LENGTHS)}`, `Content-Length: ${r.pick(CONTENT_LENGTHS)}`);
      break;
    default:
      lines.push(`Transfer-Encoding: ${r.pick(TRANSFER_ENCODINGS)}`, 'Content-Length: 5');
  }
  return lines;
}

function head(r: Random, method: string, target: string, headers: readonly string[]): string {
  const eol = r.chance(0.9) ? '\r\n' : r.pick(LINE_ENDS);
  const hostLine = r.chance(0.95) ? [`Host: ${r.pick(['gw', 'localhost', '127.0.0.1', '', 'a b', 'evil.example:99999'])}`] : [];
  return `${method} ${target} ${r.pick(VERSIONS)}${eol}${[...hostLine, ...headers].join(eol)}${eol}${eol}`;
}

/** A well-formed request to a public path, sometimes with spoofed owned headers. */
function validRequest(r: Random, connectionClose = true): string {
  const headers = r.chance(0.5) ? spoofedHeaders(r) : [];
  if (connectionClose) headers.push('Connection: close');
  const path = r.pick(['/public/ok', '/public/big', '/public/slow', '/health', '/public/dir/', '/public/caf%C3%A9?x=1']);
  return `GET ${path} HTTP/1.1\r\nHost: gw\r\n${headers.map((h) => `${h}\r\n`).join('')}\r\n`;
}

function chunkedBody(r: Random): string {
  let body = '';
  const n = 1 + r.int(3);
  for (let i = 0; i < n; i++) {
    const size = r.chance(0.6) ? '5' : r.pick(CHUNK_SIZES);
    body += `${size}\r\nhello${r.chance(0.8) ? '\r\n' : ''}`;
  }
  if (r.chance(0.7)) body += `0\r\n${r.chance(0.3) ? `X-User-Id: ${SPOOF}\r\n` : ''}\r\n`;
  return body;
}

type Generator = (r: Random) => FuzzCase;

const GENERATORS: Record<string, Generator> = {
  'request-line': (r) => ({
    kind: 'request-line',
    bytes: Buffer.from(head(r, r.pick(METHODS), r.chance(0.5) ? pathTarget(r) : '/public/x', ['Connection: close']), 'latin1'),
    write: 'whole',
    after: 'read',
  }),
  target: (r) => ({
    kind: 'target',
    bytes: Buffer.from(`${r.pick(['GET', 'GET', 'HEAD', 'OPTIONS', 'POST'])} ${pathTarget(r)} HTTP/1.1\r\nHost: gw\r\nContent-Length: 0\r\nConnection: close\r\n\r\n`, 'latin1'),
    write: 'whole',
    after: 'read',
  }),
  headers: (r) => ({
    kind: 'headers',
    bytes: Buffer.from(head(r, 'GET', '/public/h', [...spoofedHeaders(r), ...oddHeaders(r), 'Connection: close']), 'latin1'),
    write: 'whole',
    after: 'read',
  }),
  body: (r) => {
    const chunked = r.chance(0.6);
    const framing = chunked ? [`Transfer-Encoding: ${r.chance(0.7) ? 'chunked' : r.pick(TRANSFER_ENCODINGS)}`] : [`Content-Length: ${r.pick(['5', '10', '100000', ...CONTENT_LENGTHS])}`];
    const body = chunked ? chunkedBody(r) : 'hello';
    const bytes = `POST /public/upload HTTP/1.1\r\nHost: gw\r\n${[...framing, ...spoofedHeaders(r), 'Connection: close'].join('\r\n')}\r\n\r\n${body}`;
    return { kind: 'body', bytes: Buffer.from(bytes, 'latin1'), write: r.pick(['whole', 'split']), after: r.pick(['read', 'read', 'close']) };
  },
  pipelining: (r) => {
    let bytes = '';
    const n = 2 + r.int(8);
    for (let i = 0; i < n; i++) {
      if (r.chance(0.7)) bytes += validRequest(r, false);
      else bytes += head(r, 'GET', pathTarget(r), spoofedHeaders(r));
    }
    bytes += validRequest(r, true);
    return { kind: 'pipelining', bytes: Buffer.from(bytes, 'latin1'), write: r.pick(['whole', 'split']), after: r.pick(['read', 'read', 'close']) };
  },
  'early-close': (r) => {
    const full = r.chance(0.5)
      ? validRequest(r, false)
      : `POST /public/upload HTTP/1.1\r\nHost: gw\r\nContent-Length: 100000\r\n\r\n${'x'.repeat(r.int(5000))}`;
    const cut = r.chance(0.5) ? full.slice(0, 1 + r.int(full.length)) : full;
    return { kind: 'early-close', bytes: Buffer.from(cut, 'latin1'), write: 'whole', after: r.pick(['close', 'stall']) };
  },
  'read-sizes': (r) => {
    if (r.chance(0.5)) return { kind: 'read-sizes', bytes: Buffer.from(validRequest(r), 'latin1'), write: 'tiny', after: 'read' };
    const size = 256 * 1024 + r.int(2 * 1024 * 1024);
    const bytes = Buffer.concat([
      Buffer.from(`POST /public/upload HTTP/1.1\r\nHost: gw\r\nContent-Length: ${size}\r\nConnection: close\r\n\r\n`),
      Buffer.alloc(size, 0x61),
    ]);
    return { kind: 'read-sizes', bytes, write: 'whole', after: r.pick(['read', 'stall', 'close']) };
  },
  hop: (r) => {
    // Hop-by-hop fields (RFC 9110 §7.6.1) and fields the request's Connection names, in several spellings, each
    // carrying SPOOF, and chunked trailers: none may reach the backend (the watch backend checks both).
    const names = ['X-Secret-Hop', 'x-secret-hop', 'X-SECRET-HOP', 'X-Api-Token', 'Cookie', 'Authorization', 'X-Custom'];
    const nominated = r.pick(names);
    const tokens = [r.pick(['keep-alive', 'close', 'Upgrade', '']), nominated];
    const conn = r.pick([
      `Connection: ${tokens.join(', ')}`,
      `Connection: ${tokens.join(',')}`,
      `Connection: ,, ${nominated} ,`,
      `Connection: ${nominated}\t`,
      `Connection: keep-alive\r\nConnection: ${nominated}`,
      `Connection:${nominated}`,
      `Connection: ${nominated.toUpperCase()}`,
    ]);
    const hop = r.pick([`Keep-Alive: ${SPOOF}`, `TE: ${SPOOF}`, `TE: trailers, ${SPOOF}`, `Trailer: ${SPOOF}`, `Proxy-Authorization: Basic ${SPOOF}`, `Proxy-Connection: ${SPOOF}`, `HTTP2-Settings: ${SPOOF}`, `Upgrade: ${SPOOF}`, `Expect: ${SPOOF}`, `Connection: ${SPOOF}`, `Keep-Alive: timeout=5, ${SPOOF}`, `Content-Type: application/grpc`, `TE: trailers`]);
    const lines = [conn, `${nominated}: ${SPOOF}`];
    if (r.chance(0.7)) lines.push(hop);
    if (r.chance(0.3)) lines.push(hop.replace(/^[A-Za-z-]+/, (n) => n.toLowerCase()));
    const method = r.pick(['GET', 'POST', 'GET']);
    const chunked = method === 'POST' && r.chance(0.5);
    const framing = method === 'POST' ? (chunked ? ['Transfer-Encoding: chunked'] : ['Content-Length: 5']) : [];
    const body = method === 'POST' ? (chunked ? `5\r\nhello\r\n0\r\n${r.chance(0.5) ? `${r.pick(['X-Trailer', 'X-User-Id', 'Forwarded', 'X-Secret-Hop', 'Content-Length', 'Host', 'Authorization'])}: ${SPOOF}\r\n` : ''}\r\n` : 'hello') : '';
    const bytes = `${method} ${r.pick(['/public/hop', '/public/ws', '/private/x'])} HTTP/1.1\r\nHost: gw\r\n${[...lines, ...framing].join('\r\n')}\r\n\r\n${body}`;
    return { kind: 'hop', bytes: Buffer.from(bytes, 'latin1'), write: r.pick(['whole', 'split']), after: 'read' };
  },
  upgrade: (r) => ({
    kind: 'upgrade',
    bytes: Buffer.from(head(r, 'GET', r.chance(0.5) ? '/public/ws' : pathTarget(r), ['Connection: Upgrade', `Upgrade: ${r.pick(['websocket', 'h2c', 'x'])}`, ...spoofedHeaders(r)]), 'latin1'),
    write: 'whole',
    after: r.pick(['read', 'close']),
  }),
};

/** The generator families, in the order the report lists them. */
export const KINDS: readonly string[] = Object.keys(GENERATORS);

/** One generated case. */
export function generateCase(r: Random): FuzzCase {
  return GENERATORS[r.pick(KINDS)]!(r);
}
