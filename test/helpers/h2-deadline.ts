// The set-up of the HTTP/2 stream-deadline tests (review7-h2-deadline-*): a spawned TLS gateway whose
// timeouts.request (1 s) answers 408 beside the driver, and a raw h2 client whose zero initial window holds that
// 408's body back, so the stream stays open while something else (an upstream, a hook) happens meanwhile.
import type { ConfigInput, GatewayProcess } from './gateway.js';
import { frame, FRAME, FLAG, PREFACE, requestBlock, zeroWindowSettings, type RawH2 } from './h2-frames.js';
import type { TlsStack } from './tls-stack.js';

/**
 * A gateway on `stack` (stopped after the file): TLS, header and request timeouts 1 s, request_body_chunk 20 s (so
 * only the stream deadline fires), everything routed to one 'api' upstream at 127.0.0.1:`upstreamPort`. `extra`
 * adds top-level sections (plugins, middleware).
 */
export function deadlineGateway(stack: TlsStack, upstreamPort: number, extra: ConfigInput = {}): Promise<GatewayProcess> {
  return stack.gateway({
    server: {
      tls: { cert_file: stack.cert.certFile, key_file: stack.cert.keyFile },
      timeouts: { header: '1s', request: '1s', request_body_chunk: '20s' },
    },
    services: { api: { upstreams: [{ name: 'api', address: '127.0.0.1', port: upstreamPort }] } },
    routes: [{ name: 'api', match: { path_prefix: '/' }, service: 'api' }],
    ...extra,
  });
}

/**
 * Opens the connection with a zero initial window (acking the server's SETTINGS) and starts an upload on stream 1
 * that never ends: a POST to `path` with content-type text/plain, `headers`, and one DATA frame without END_STREAM.
 */
export function sendHeldUpload(client: RawH2, path: string, headers: ReadonlyArray<readonly [string, string]> = []): void {
  client.send(
    PREFACE,
    zeroWindowSettings(),
    frame(FRAME.SETTINGS, FLAG.ACK, 0),
    frame(FRAME.HEADERS, FLAG.END_HEADERS, 1, requestBlock('POST', path, [['content-type', 'text/plain'], ...headers])),
    frame(FRAME.DATA, 0, 1, Buffer.from('part of a body')),
  );
}
