// The headers the gateway owns: it sets them itself, so no client, route rewrite or plugin may set or remove them.
// Kept in one place so every feature refuses the same names.

/** Request headers the gateway owns (lower case). Identity header names come from the config and are added at start-up. */
const OWNED_REQUEST: ReadonlySet<string> = new Set([
  'x-user-id',
  'x-user-email',
  'x-consumer-id',
  'x-consumer-name',
  'x-request-id',
  'x-forwarded-for',
  'x-forwarded-proto',
  'x-forwarded-host',
  'x-forwarded-port',
  'x-forwarded-prefix',
  'forwarded',
  'x-real-ip',
  'x-proxy-by',
  'x-original-url',
  'x-rewrite-url',
]);

/** W3C Trace Context: owned while tracing is on (the gateway sends its own span as the parent); passed through when off. */
const TRACE_CONTEXT: ReadonlySet<string> = new Set(['traceparent', 'tracestate']);

/** Response headers the gateway sets on every answer. */
const OWNED_RESPONSE: ReadonlySet<string> = new Set(['x-proxy-by', 'x-request-id', 'x-response-time']);

/** Lower case with "_" read as "-": how CGI-style backends fold header names (X_User_Id → HTTP_X_USER_ID). */
export function canonicalHeaderName(name: string): string {
  return name.toLowerCase().replaceAll('_', '-');
}

/** True when `name` (any spelling) is a request header the gateway owns; `tracing`: traceparent/tracestate too. */
export function isOwnedHeader(name: string, tracing = false): boolean {
  const canonical = canonicalHeaderName(name);
  return OWNED_REQUEST.has(canonical) || (tracing && TRACE_CONTEXT.has(canonical));
}

/** True when `name` is a response header the gateway sets itself (`traceHeader`: tracing.response_header, if any). */
export function isOwnedResponseHeader(name: string, traceHeader = ''): boolean {
  const canonical = canonicalHeaderName(name);
  return OWNED_RESPONSE.has(canonical) || (traceHeader !== '' && canonical === canonicalHeaderName(traceHeader));
}
