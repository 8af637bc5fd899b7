// gRPC status codes for the gateway's own errors (pure): gRPC's documented HTTP-to-gRPC mapping, plus timeouts.
import type { ErrorCode } from '../errors.js';

/** The gRPC codes the gateway answers with (google.rpc.Code). */
export const GRPC = {
  UNKNOWN: 2,
  DEADLINE_EXCEEDED: 4,
  PERMISSION_DENIED: 7,
  RESOURCE_EXHAUSTED: 8,
  UNIMPLEMENTED: 12,
  INTERNAL: 13,
  UNAVAILABLE: 14,
  UNAUTHENTICATED: 16,
} as const;

/**
 * The grpc-status for a gateway-made error with HTTP `status` (doc/http-grpc-status-mapping.md in grpc/grpc):
 * 400 → INTERNAL, 401 → UNAUTHENTICATED, 403 → PERMISSION_DENIED, 404 → UNIMPLEMENTED, 429/502/503/504 →
 * UNAVAILABLE, anything else → UNKNOWN. The exceptions: the gateway's own upstream timeouts are DEADLINE_EXCEEDED,
 * and a request too large (its body, 413; its headers, 431) RESOURCE_EXHAUSTED, as every gRPC server answers a
 * message over its receive limit: UNKNOWN told a client's retry logic nothing, where it knows not to resend as is.
 */
export function grpcStatusFor(status: number, code: ErrorCode | undefined): number {
  if (code === 'UPSTREAM_TIMEOUT' || code === 'UPSTREAM_CONNECT_TIMEOUT') return GRPC.DEADLINE_EXCEEDED;
  if (status === 413 || status === 431) return GRPC.RESOURCE_EXHAUSTED;
  switch (status) {
    case 400:
      return GRPC.INTERNAL;
    case 401:
      return GRPC.UNAUTHENTICATED;
    case 403:
      return GRPC.PERMISSION_DENIED;
    case 404:
      return GRPC.UNIMPLEMENTED;
    case 429:
    case 502:
    case 503:
    case 504:
      return GRPC.UNAVAILABLE;
    default:
      return GRPC.UNKNOWN;
  }
}

/** A gRPC-Web media type as grpc-web clients send it: the binary or -text form, with an optional +format (+proto, +json). */
const GRPC_WEB_TYPE = /^application\/grpc-web(?:-text)?(?:\+[a-z0-9._-]+)?$/;

/**
 * The content type of a gateway-made gRPC error, from the request's (`requestType`, which isGrpc accepted): native gRPC
 * gets application/grpc; a gRPC-Web call (application/grpc-web…) gets its own type back, without parameters, as
 * Envoy's grpc_web filter answers it. A gRPC-Web client reads a trailers-only answer's grpc-status from the head, but
 * takes application/grpc for no answer of its protocol. A type of no known shape is never echoed: the binary or text
 * form with +proto instead.
 */
export function grpcErrorContentType(requestType: string | undefined): string {
  const type = (requestType ?? '').split(';', 1)[0]!.trim().toLowerCase();
  if (!type.startsWith('application/grpc-web')) return 'application/grpc';
  if (GRPC_WEB_TYPE.test(type)) return type;
  return type.startsWith('application/grpc-web-text') ? 'application/grpc-web-text+proto' : 'application/grpc-web+proto';
}

/** grpc-message encoding (gRPC over HTTP/2 spec): printable ASCII except '%' as is, every other byte as %XX. */
export function encodeGrpcMessage(message: string): string {
  let out = '';
  for (const byte of Buffer.from(message, 'utf8')) {
    out += byte >= 0x20 && byte <= 0x7e && byte !== 0x25 ? String.fromCharCode(byte) : `%${byte.toString(16).toUpperCase().padStart(2, '0')}`;
  }
  return out;
}
