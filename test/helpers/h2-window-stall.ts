// The set-up of the window-stall tests (review7-h2-window-stall*): a spawned TLS gateway whose request_body_chunk
// (1 s) bounds how long an answer may wait at an HTTP/2 client's flow-control window, and a raw h2 client that
// exhausts its connection window with a download it never acknowledges, so every later answer's body is held.
import type { GatewayProcess } from './gateway.js';
import { clientPreface, frame, FRAME, FLAG, requestBlock, type RawH2 } from './h2-frames.js';
import type { TlsStack } from './tls-stack.js';
import { waitFor } from './wait.js';

/**
 * A gateway on `stack` (stopped after the file): TLS, request_body_chunk 1 s, header and request 2 s, everything
 * routed to an 'api' upstream at 127.0.0.1:`apiPort`; each entry of `more` adds a service of that name at that port,
 * routed from the path prefix /<name> (matched before the api route).
 */
export function windowStallGateway(stack: TlsStack, apiPort: number, more: Readonly<Record<string, number>> = {}): Promise<GatewayProcess> {
  const extra = Object.entries(more);
  return stack.gateway({
    server: { tls: { cert_file: stack.cert.certFile, key_file: stack.cert.keyFile }, timeouts: { request_body_chunk: '1s', header: '2s', request: '2s' } },
    services: {
      api: { upstreams: [{ name: 'api', address: '127.0.0.1', port: apiPort }] },
      ...Object.fromEntries(extra.map(([name, port]) => [name, { upstreams: [{ name, address: '127.0.0.1', port }] }])),
    },
    routes: [
      ...extra.map(([name]) => ({ name, match: { path_prefix: `/${name}` }, service: name })),
      { name: 'api', match: { path_prefix: '/' }, service: 'api' },
    ],
  });
}

/**
 * Opens the connection and lets stream 1 (GET /download?bytes=200000) take the whole connection window (65,535
 * bytes), never acknowledged: resolves once that much DATA came (waits up to 10 s).
 */
export async function exhaustConnectionWindow(client: RawH2): Promise<void> {
  client.send(clientPreface(), frame(FRAME.SETTINGS, FLAG.ACK, 0), frame(FRAME.HEADERS, FLAG.END_HEADERS | FLAG.END_STREAM, 1, requestBlock('GET', '/download?bytes=200000')));
  const windowUsed = (): number => client.frames().filter((f) => f.type === FRAME.DATA && f.stream === 1).reduce((n, f) => n + f.payload.length, 0);
  await waitFor(() => windowUsed() === 65_535, 'the connection window used up', 10_000);
}
