// The set-up of the HTTP/2 stream-deadline tests (review7-h2-deadline-*): a spawned TLS gateway whose
// timeouts.request (1 s) answers 408 beside the driver, and a raw h2 client whose zero initial window holds that
// 408's body back, so the stream stays open while something else (an upstream, a hook) happens meanwhile.
import type { ConfigInput, GatewayProcess } from './gateway.js';
import { frame, FRAME, FLAG, PREFACE, requestBlock, windowUpdate, zeroWindowSettings, type RawH2 } from './h2-frames.js';
import { sleep, waitFor } from './wait.js';
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

/** What releaseHeld408 saw: the request's Request Completed line, the 408 body the client got, its RST_STREAM code. */
export interface Released408 {
  readonly logged: Record<string, unknown>;
  readonly body: string;
  readonly reset: number | undefined;
}

/**
 * After sendHeldUpload: waits for the deadline's 408 head (HEADERS are not flow-controlled, so it goes out at 1 s while
 * its body waits for a window), lets `meanwhileMs` pass for whatever the test makes happen meanwhile, then opens
 * stream 1's window so the 408's body goes out, and waits for the request's line (its path `path`).
 */
export async function releaseHeld408(client: RawH2, gw: GatewayProcess, path: string, meanwhileMs: number): Promise<Released408> {
  const head408 = (): boolean => client.frames().some((f) => f.type === FRAME.HEADERS && f.stream === 1);
  await waitFor(head408, 'the 408 head', 10_000);
  await sleep(meanwhileMs);
  client.send(windowUpdate(1, 65_535));
  const line = (): Record<string, unknown> | undefined => gw.logs.find((l) => l.msg === 'Request Completed' && l.path === path);
  await waitFor(() => line() !== undefined, 'the request logged', 10_000);
  const body = Buffer.concat(client.frames().filter((f) => f.type === FRAME.DATA && f.stream === 1).map((f) => f.payload)).toString();
  const reset = client.frames().find((f) => f.type === FRAME.RST_STREAM && f.stream === 1)?.payload.readUInt32BE(0);
  return { logged: line()!, body, reset };
}
