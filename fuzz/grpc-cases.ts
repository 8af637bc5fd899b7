// Generated gRPC calls for the fuzz target (`npm run fuzz -- --target grpc`): the four streaming kinds, well formed
// or not (message prefixes that lie, compressed flags, random bytes, unknown methods, odd content types and TE,
// grpc-timeout values), ending with a half-close, a reset, or never (a call its client leaves open). Deterministic for
// a given seed.
import { Random } from './cases.js';
import { encodeMsg, grpcFrame } from './grpc-wire.js';

/** What the client does once it has written its messages. */
export type CallEnd = 'half-close' | 'open' | 'reset';

export interface GrpcCase {
  readonly kind: string;
  readonly path: string;
  /** Request headers besides :method, :path and x-fuzz-case. */
  readonly headers: Readonly<Record<string, string>>;
  /** The body, written piece by piece with `pauseMs` between pieces. */
  readonly writes: readonly Buffer[];
  readonly pauseMs: number;
  readonly end: CallEnd;
}

export const GRPC_KINDS = ['unary', 'server-stream', 'client-stream', 'bidi', 'malformed', 'unknown-method', 'odd-headers', 'empty'] as const;

const SERVICE = '/portcullis.test.Echo/';
const METHODS = ['Unary', 'ServerStream', 'ClientStream', 'Bidi'] as const;
const CONTENT_TYPES = ['application/grpc', 'application/grpc+proto', 'Application/GRPC', 'application/grpc; charset=utf-8', 'application/grpc-web', 'application/json', ''];
const TES = ['trailers', 'trailers', 'TRAILERS', 'trailers, deflate', 'gzip', ''];
const TIMEOUTS = ['1n', '1m', '100m', '5S', '0S', 'abc', '99999999H', '-1S', '1'];
const BAD_PATHS = [`${SERVICE}Nope`, '/x', `${SERVICE}Unary/extra`, '/portcullis.test.Echo', `${SERVICE}`, '/%2e%2e/portcullis.test.Echo/Unary', '/Echo/Unary'];

function message(r: Random, i: number): Buffer {
  const text = r.chance(0.1) ? 'x'.repeat(r.int(100_000)) : `m${i}`;
  return grpcFrame(encodeMsg({ text, n: r.int(300), user: '' }));
}

/** Splits `bytes` into 1-4 pieces at random points (a message may straddle writes). */
function pieces(r: Random, bytes: Buffer): Buffer[] {
  if (bytes.length < 2 || r.chance(0.6)) return [bytes];
  const out: Buffer[] = [];
  let at = 0;
  const count = 1 + r.int(3);
  for (let i = 0; i < count && at < bytes.length - 1; i++) {
    const next = at + 1 + r.int(bytes.length - at - 1);
    out.push(bytes.subarray(at, next));
    at = next;
  }
  out.push(bytes.subarray(at));
  return out;
}

/** A body that breaks the framing one way or another. */
function malformedBody(r: Random): Buffer {
  const good = encodeMsg({ text: 'bad', n: 1, user: '' });
  switch (r.int(5)) {
    case 0:
      return Buffer.from(Array.from({ length: 1 + r.int(64) }, () => r.int(256))); // random bytes
    case 1:
      return grpcFrame(good, 0, good.length + 1 + r.int(1000)); // a length longer than what follows
    case 2:
      return grpcFrame(good, 0, 0xffffffff); // a 4 GB message announced
    case 3:
      return grpcFrame(good, 1); // compressed, with no grpc-encoding
    default:
      return grpcFrame(Buffer.from([0xff, 0xff, 0xff])); // not protobuf
  }
}

function ends(r: Random): CallEnd {
  return r.pick<CallEnd>(['half-close', 'half-close', 'half-close', 'open', 'reset']);
}

export function generateGrpcCase(r: Random): GrpcCase {
  const kind = r.pick(GRPC_KINDS);
  const headers: Record<string, string> = { 'content-type': 'application/grpc', te: 'trailers' };
  const pauseMs = r.pick([0, 0, 1, 20, 200]);
  const writes: Buffer[] = [];
  switch (kind) {
    case 'unary':
      writes.push(...pieces(r, message(r, 0)));
      return { kind, path: `${SERVICE}Unary`, headers, writes, pauseMs, end: ends(r) };
    case 'server-stream':
      writes.push(grpcFrame(encodeMsg({ text: 's', n: r.int(1000), user: '' })));
      return { kind, path: `${SERVICE}ServerStream`, headers, writes, pauseMs, end: ends(r) };
    case 'client-stream':
    case 'bidi': {
      const count = r.int(6);
      for (let i = 0; i < count; i++) writes.push(...pieces(r, message(r, i)));
      return { kind, path: `${SERVICE}${kind === 'bidi' ? 'Bidi' : 'ClientStream'}`, headers, writes, pauseMs, end: ends(r) };
    }
    case 'malformed':
      writes.push(...pieces(r, malformedBody(r)));
      return { kind, path: `${SERVICE}${r.pick(METHODS)}`, headers, writes, pauseMs, end: ends(r) };
    case 'unknown-method':
      writes.push(message(r, 0));
      return { kind, path: r.pick(BAD_PATHS), headers, writes, pauseMs, end: ends(r) };
    case 'odd-headers':
      headers['content-type'] = r.pick(CONTENT_TYPES);
      headers.te = r.pick(TES);
      if (r.chance(0.5)) headers['grpc-timeout'] = r.pick(TIMEOUTS);
      if (r.chance(0.2)) headers['grpc-encoding'] = r.pick(['gzip', 'identity', 'br', 'x']);
      for (const name of Object.keys(headers)) if (headers[name] === '') delete headers[name];
      writes.push(message(r, 0));
      return { kind, path: `${SERVICE}${r.pick(METHODS)}`, headers, writes, pauseMs, end: ends(r) };
    default:
      // No body at all: the request ends with its HEADERS (END_STREAM), or stays open with nothing sent.
      return { kind, path: `${SERVICE}${r.pick(METHODS)}`, headers, writes, pauseMs, end: r.chance(0.5) ? 'half-close' : 'open' };
  }
}
