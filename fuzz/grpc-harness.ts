// The gRPC fuzz target: generated gRPC calls (grpc-cases.ts) from node:http2 clients to a TLS gateway child process
// proxying h2c to a hand-written Echo backend (grpc-backend.ts). Besides the guarantees of the HTTP/1.1 target (alive,
// /health 200, gauges back at 0, nothing uncaught), every call that is still open when the driver gives up on it
// (caseTimeoutMs) is judged by what the backend saw of it:
// - open-call: the client never half-closed and the backend is still waiting for its messages (a call left open by
//   its client is held open, as a gRPC server holds it: bounded by request_body_chunk and timeouts.request, not by
//   the driver's patience). The input's own stall, counted, not a failure.
// - backend: the request reached its end at the backend, which has not answered. The backend's own.
// - gateway: the backend answered or closed the call at least a second before, or the client's half-close or the
//   call itself never reached the backend: the gateway holds a stream it should have passed on, answered or reset.
//   A failure.
import { connect, constants, type ClientHttp2Session } from 'node:http2';
import { Agent, request } from 'undici';
import { spawnGateway, upstreams, type GatewayProcess } from '../test/helpers/gateway.js';
import { createTestCa, pkiDir } from '../test/helpers/tls.js';
import { sleep } from '../test/helpers/wait.js';
import { Random } from './cases.js';
import { generateGrpcCase, GRPC_KINDS, type GrpcCase } from './grpc-cases.js';
import { startGrpcBackend, type GrpcBackend } from './grpc-backend.js';
import { checkSurvival, sampleRun, type SurvivalFields } from './survival.js';

export interface GrpcFuzzOptions {
  readonly durationMs: number;
  readonly seed?: number;
  /** Client sessions at once, one call at a time each. Default 16. */
  readonly concurrency?: number;
  /** How long the driver waits for a call to end before it gives up (and resets it). Default 6 s. */
  readonly caseTimeoutMs?: number;
  /** The gateway's server.timeouts.request_body_chunk; default: the gateway's own (30 s). */
  readonly requestBodyChunk?: string;
}

/** The stalls, by whose they are (see the header). */
export type StallOwner = 'open-call' | 'backend' | 'gateway';

export interface GrpcFuzzReport extends SurvivalFields {
  readonly target: 'grpc';
  readonly seed: number;
  readonly durationMs: number;
  readonly cases: number;
  readonly byKind: Record<string, number>;
  /**
   * How calls ended: grpc-N (status), http-N (no grpc-status), rst-N (reset, no status), reset-by-client, stalled,
   * still-streaming (the response was still arriving when the driver gave up), not-sent-CODE (node's client refused
   * to send it: a TE other than trailers); also session-goaway-N, GOAWAYs the gateway sent.
   */
  readonly outcomes: Record<string, number>;
  readonly stalls: Record<StallOwner, number>;
  /** Up to ten stalled calls of each owner, described. */
  readonly stalledExamples: Record<StallOwner, string[]>;
  readonly backendCalls: number;
  /** Request Completed lines with a status of 500 or more, by status, error and cause. */
  readonly gatewayErrors: Record<string, number>;
  /** The backend's sessions that ended in an error, and its streams reset with a code other than NO_ERROR/CANCEL. */
  readonly backendSessionEnds: Record<string, number>;
  readonly failures: readonly string[];
}

/** An answer the backend finished this long before the driver gave up should have reached the client. */
const ANSWER_GRACE_MS = 1_000;
/** A call whose client read response bytes this recently is still flowing, not stalled. */
const PROGRESS_MS = 1_000;

interface CallResult {
  readonly outcome: string;
  readonly halfClosed: boolean;
  /** Response body bytes the client read, and when it read the last of them (0: none). */
  readonly bytesRead: number;
  readonly lastReadAt: number;
}

/** Sends one call on `session`; resolves however it ends (or 'stalled' after `timeoutMs`, the stream then reset). */
function runCall(session: ClientHttp2Session, c: GrpcCase, id: string, timeoutMs: number): Promise<CallResult> {
  return new Promise((resolve) => {
    let halfClosed = false;
    let settled = false;
    let status = 0;
    let grpcStatus: string | undefined;
    let resetByClient = false;
    let bytesRead = 0;
    let lastReadAt = 0;
    const emptyHalfClose = c.writes.length === 0 && c.end === 'half-close';
    let stream: ReturnType<ClientHttp2Session['request']>;
    try {
      stream = session.request({ ':method': 'POST', ':path': c.path, 'x-fuzz-case': id, ...c.headers }, { endStream: emptyHalfClose });
    } catch (err) {
      // node's client refuses some headers itself (a TE other than trailers), or the session is closing.
      resolve({ outcome: `not-sent-${String((err as { code?: unknown }).code)}`, halfClosed: false, bytesRead: 0, lastReadAt: 0 });
      return;
    }
    if (emptyHalfClose) halfClosed = true;
    const finish = (outcome: string): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      resolve({ outcome, halfClosed, bytesRead, lastReadAt });
    };
    const timer = setTimeout(() => {
      finish('stalled');
      if (!stream.closed) stream.close(constants.NGHTTP2_CANCEL);
    }, timeoutMs);
    stream.on('response', (h) => {
      status = Number(h[':status']);
      if (h['grpc-status'] !== undefined) grpcStatus = String(h['grpc-status']);
    });
    stream.on('trailers', (t) => {
      if (t['grpc-status'] !== undefined) grpcStatus = String(t['grpc-status']);
    });
    stream.on('error', () => {});
    stream.on('data', (chunk: Buffer) => {
      bytesRead += chunk.length;
      lastReadAt = Date.now();
    });
    stream.on('close', () => {
      if (resetByClient) finish('reset-by-client');
      else if (grpcStatus !== undefined) finish(`grpc-${grpcStatus}`);
      else if (status !== 0) finish(`http-${status}`);
      else finish(`rst-${stream.rstCode}`);
    });
    void (async () => {
      for (const piece of c.writes) {
        if (stream.closed || stream.destroyed) return;
        stream.write(piece);
        if (c.pauseMs > 0) await sleep(c.pauseMs);
      }
      if (stream.closed || stream.destroyed || emptyHalfClose) return;
      if (c.end === 'half-close') {
        halfClosed = true;
        stream.end();
      } else if (c.end === 'reset') {
        resetByClient = true;
        stream.close(constants.NGHTTP2_CANCEL);
      }
    })();
  });
}

/** Whose stall a call that never ended is, from what the backend saw (see the header). */
function stallOwner(backend: GrpcBackend, id: string, c: GrpcCase, halfClosed: boolean, gaveUpAt: number): StallOwner {
  const call = backend.call(id);
  if (call === undefined) return 'gateway';
  // Closed at the backend: its whole answer (or its reset) was sent, and the gateway did not pass it on.
  if (call.closedAt !== undefined) return gaveUpAt - call.closedAt >= ANSWER_GRACE_MS ? 'gateway' : 'backend';
  // Answered but not closed: the backend's answer is still queued behind flow control, which the gateway holds
  // only while its client does not read (and this client read nothing for PROGRESS_MS).
  if (call.answeredAt !== undefined) return gaveUpAt - call.answeredAt >= ANSWER_GRACE_MS ? 'gateway' : 'backend';
  if (!halfClosed) return c.end === 'open' ? 'open-call' : 'gateway';
  return call.requestEnded ? 'backend' : 'gateway';
}

function describeCall(backend: GrpcBackend, id: string, c: GrpcCase, result: CallResult): string {
  const call = backend.call(id);
  const sent = c.writes.reduce((n, b) => n + b.length, 0);
  const seen =
    call === undefined
      ? 'never reached the backend'
      : `backend: request ended ${call.requestEnded}, answered ${call.answeredAt !== undefined}, closed ${call.closedAt !== undefined} (rst ${call.rstCode})`;
  const read = `client read ${result.bytesRead} B${result.lastReadAt > 0 ? `, last ${Date.now() - result.lastReadAt} ms before` : ''}`;
  return `${id} ${c.kind} ${c.path} ${JSON.stringify(c.headers)} ${c.writes.length} writes/${sent} B, end ${c.end}${result.halfClosed ? '' : ' (not half-closed)'}; ${seen}; ${read}`;
}

function countErrors(logs: ReadonlyArray<Record<string, unknown>>): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const l of logs) {
    if (l.msg !== 'Request Completed' || typeof l.status !== 'number' || l.status < 500) continue;
    const key = `${l.status} ${String(l.error)} ${String(l.cause)}`;
    counts[key] = (counts[key] ?? 0) + 1;
  }
  return counts;
}

async function healthStatus(port: number, ca: Buffer): Promise<number> {
  const agent = new Agent({ connect: { ca, servername: 'a.test' } });
  try {
    const res = await request(`https://127.0.0.1:${port}/health`, { dispatcher: agent, headersTimeout: 3_000, bodyTimeout: 3_000 });
    await res.body.dump();
    return res.statusCode;
  } catch {
    return 0;
  } finally {
    await agent.close();
  }
}

/** A client session to the gateway; `goaway` hears the code of a GOAWAY the gateway sends on it. */
function openSession(port: number, ca: Buffer, goaway: (code: number) => void): Promise<ClientHttp2Session | undefined> {
  return new Promise((resolve) => {
    const session = connect(`https://127.0.0.1:${port}`, { ca, servername: 'a.test' });
    session.on('error', () => resolve(undefined));
    session.once('goaway', goaway);
    session.once('connect', () => resolve(session));
  });
}

export async function runGrpcFuzz(options: GrpcFuzzOptions): Promise<GrpcFuzzReport> {
  const seed = options.seed ?? (Date.now() & 0x7fffffff);
  const random = new Random(seed);
  const concurrency = options.concurrency ?? 16;
  const caseTimeout = options.caseTimeoutMs ?? 6_000;
  const pki = pkiDir();
  let backend: GrpcBackend | undefined;
  let gw: GatewayProcess | undefined;
  try {
    const ca = createTestCa('gRPC fuzz CA', pki.path);
    const cert = ca.issue('a.test', { san: ['DNS:a.test', 'IP:127.0.0.1'] });
    backend = await startGrpcBackend();
    const timeouts = options.requestBodyChunk === undefined ? {} : { request_body_chunk: options.requestBodyChunk };
    gw = await spawnGateway(
      {
        server: { tls: { cert_file: cert.certFile, key_file: cert.keyFile }, timeouts },
        load_balancing: { http2: true, upstreams: upstreams([backend.port]) },
        // On: the report counts the gateway's own failures by error and cause (gatewayErrors).
        logging: { access_log: true },
      },
      { timeoutMs: 60_000 },
    );
    const pid = gw.child.pid!;
    const port = gw.port;
    await sleep(500);
    const sampling = sampleRun(pid);
    const byKind: Record<string, number> = Object.fromEntries(GRPC_KINDS.map((k) => [k, 0]));
    const outcomes: Record<string, number> = {};
    const stalls: Record<StallOwner, number> = { 'open-call': 0, backend: 0, gateway: 0 };
    const stalledExamples: Record<StallOwner, string[]> = { 'open-call': [], backend: [], gateway: [] };
    let cases = 0;
    const started = Date.now();
    const deadline = started + options.durationMs;
    await Promise.all(
      Array.from({ length: concurrency }, async (_, worker) => {
        let session: ClientHttp2Session | undefined;
        let n = 0;
        while (Date.now() < deadline) {
          if (session === undefined || session.closed || session.destroyed) {
            session?.destroy();
            session = await openSession(port, ca.ca, (code) => (outcomes[`session-goaway-${code}`] = (outcomes[`session-goaway-${code}`] ?? 0) + 1));
            if (session === undefined) {
              outcomes['connect-failed'] = (outcomes['connect-failed'] ?? 0) + 1;
              await sleep(100);
              continue;
            }
          }
          const c = generateGrpcCase(random);
          const id = `w${worker}-${n++}`;
          byKind[c.kind] = (byKind[c.kind] ?? 0) + 1;
          const result = await runCall(session, c, id, caseTimeout);
          const gaveUpAt = Date.now();
          // A response still arriving when the driver gave up (a large one, a loaded machine) is not a stall.
          const outcome = result.outcome === 'stalled' && gaveUpAt - result.lastReadAt < PROGRESS_MS ? 'still-streaming' : result.outcome;
          outcomes[outcome] = (outcomes[outcome] ?? 0) + 1;
          cases++;
          if (outcome === 'stalled') {
            const owner = stallOwner(backend!, id, c, result.halfClosed, gaveUpAt);
            stalls[owner]++;
            if (stalledExamples[owner].length < 10) stalledExamples[owner].push(describeCall(backend!, id, c, result));
          }
        }
        session?.close();
      }),
    );
    const elapsed = Date.now() - started;
    const { fields, failures: survival } = await checkSurvival(gw, sampling.stop(), () => healthStatus(port, ca.ca), 2_000);
    const failures: string[] = [];
    if (stalls.gateway > 0) failures.push(`${stalls.gateway} calls held by the gateway: ${stalledExamples.gateway.slice(0, 3).join(' | ')}`);
    failures.push(...survival);
    return {
      target: 'grpc',
      seed,
      durationMs: elapsed,
      cases,
      byKind,
      outcomes,
      stalls,
      stalledExamples,
      backendCalls: backend.arrived(),
      gatewayErrors: countErrors(gw.logs),
      backendSessionEnds: backend.sessionEnds(),
      ...fields,
      failures,
    };
  } finally {
    await gw?.cleanup();
    await backend?.stop();
    pki.remove();
  }
}
