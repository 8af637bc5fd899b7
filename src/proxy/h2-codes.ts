// HTTP/2 error codes (RFC 9113 §7) the gateway sends or reads, as plain numbers. node:http2's `constants` has them
// too, but importing node:http2 for them loads node's whole HTTP/2 and TLS stacks (about 2 MB of memory) into
// every gateway, also one that neither serves nor proxies HTTP/2 (see src/balancer/undici.ts, lazyBuiltin.ts).
export const H2_NO_ERROR = 0x0;
export const H2_INTERNAL_ERROR = 0x2;
/** RFC 9113 §8.7: the stream was refused before any application processing; the request may be retried. */
export const H2_REFUSED_STREAM = 0x7;
export const H2_CANCEL = 0x8;
export const H2_ENHANCE_YOUR_CALM = 0xb;

/** RFC 9113 §7's names, by code: what a log line says of a reset node reported without its code's name. */
const NAMES = [
  'NO_ERROR',
  'PROTOCOL_ERROR',
  'INTERNAL_ERROR',
  'FLOW_CONTROL_ERROR',
  'SETTINGS_TIMEOUT',
  'STREAM_CLOSED',
  'FRAME_SIZE_ERROR',
  'REFUSED_STREAM',
  'CANCEL',
  'COMPRESSION_ERROR',
  'CONNECT_ERROR',
  'ENHANCE_YOUR_CALM',
  'INADEQUATE_SECURITY',
  'HTTP_1_1_REQUIRED',
];

/** The code's name, or its number for a code RFC 9113 does not define (node's own message does the same). */
export function h2CodeName(code: number): string {
  return NAMES[code] ?? String(code);
}
