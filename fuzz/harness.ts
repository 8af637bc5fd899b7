// Runs generated adversarial traffic at a gateway child process over raw sockets (127.0.0.1 only), then checks that
// it survived: alive, memory back near its start, /health 200, and no forbidden request ever reached the backend.
import { connect, type Socket } from 'node:net';
import { Agent, request } from 'undici';
import { spawnGateway, upstreams, type GatewayProcess } from '../test/helpers/gateway.js';
import { sleep } from '../test/helpers/wait.js';
import { generateCase, KINDS, Random, type FuzzCase } from './cases.js';
import { startWatchBackend, type WatchBackend } from './watch-backend.js';
import { checkSurvival, sampleRun, type SurvivalFields } from './survival.js';

export interface FuzzOptions {
  /** How long to send traffic, ms. */
  readonly durationMs: number;
  /** PRNG seed (a failing run can be replayed with it). Default: time-based. */
  readonly seed?: number;
  /** Connections at once. Default 32. */
  readonly concurrency?: number;
  /** How long a case may wait for the gateway's answer before the client gives up, ms. Default 1500. */
  readonly caseTimeoutMs?: number;
}

export interface FuzzReport extends SurvivalFields {
  readonly seed: number;
  readonly durationMs: number;
  readonly cases: number;
  /** Cases per generator family. */
  readonly byKind: Record<string, number>;
  /** First response status seen per case ("closed" when none, "client-timeout" when the client gave up). */
  readonly outcomes: Record<string, number>;
  readonly backendHits: number;
  readonly violations: readonly string[];
  /** Every failed guarantee; empty when the run passed. */
  readonly failures: readonly string[];
}

/** Sends one case and resolves with what the client saw; never rejects. */
function runCase(port: number, c: FuzzCase, timeoutMs: number): Promise<string> {
  return new Promise((resolve) => {
    let socket: Socket;
    let data = '';
    let settled = false;
    const finish = (outcome: string): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket.destroy();
      const match = /^HTTP\/1\.[01] (\d{3})/.exec(data);
      resolve(match ? match[1]! : outcome);
    };
    const timer = setTimeout(() => finish(c.after === 'stall' ? 'stalled' : 'client-timeout'), timeoutMs);
    socket = connect(port, '127.0.0.1', () => {
      void send().catch(() => finish('closed'));
    });
    socket.on('error', () => finish('closed'));
    socket.on('close', () => finish('closed'));
    socket.on('data', (chunk: Buffer) => {
      if (data.length < 64) data += chunk.toString('latin1', 0, 64);
      if (c.after === 'stall') socket.pause(); // a client that never reads the rest
    });
    async function send(): Promise<void> {
      if (c.write === 'whole') socket.write(c.bytes);
      else if (c.write === 'split') {
        const at = 1 + Math.floor(c.bytes.length / 2);
        socket.write(c.bytes.subarray(0, at));
        await sleep(20);
        if (!socket.destroyed) socket.write(c.bytes.subarray(at));
      } else {
        for (let i = 0; i < c.bytes.length && !socket.destroyed; i += 3) {
          socket.write(c.bytes.subarray(i, i + 3));
          await sleep(1);
        }
      }
      if (c.after === 'close') finish('closed-by-client');
    }
  });
}

async function healthStatus(port: number): Promise<number> {
  try {
    // reset: the connection closes after the answer, so it does not linger in the connection gauge.
    const res = await request(`http://127.0.0.1:${port}/health`, { headersTimeout: 3_000, bodyTimeout: 3_000, reset: true });
    await res.body.dump();
    return res.statusCode;
  } catch {
    return 0;
  }
}

/** Warms the gateway up with ordinary requests, so the memory baseline includes its steady-state heap. */
async function warmUp(port: number): Promise<void> {
  const agent = new Agent({ connections: 4 });
  for (let i = 0; i < 200; i++) {
    const res = await request(`http://127.0.0.1:${port}/public/warm`, { dispatcher: agent, headers: { 'x-user-id': 'FUZZSPOOF' } });
    await res.body.dump();
  }
  await agent.close(); // its keep-alive connections must not count as leftovers
}

/** Starts a backend and a gateway child process, fuzzes it for `durationMs`, checks it, and tears both down. */
export async function runFuzz(options: FuzzOptions): Promise<FuzzReport> {
  const seed = options.seed ?? (Date.now() & 0x7fffffff);
  const random = new Random(seed);
  const concurrency = options.concurrency ?? 32;
  const caseTimeout = options.caseTimeoutMs ?? 1_500;
  let backend: WatchBackend | undefined;
  let gw: GatewayProcess | undefined;
  try {
    backend = await startWatchBackend();
    gw = await spawnGateway({
      server: { timeouts: { header: '2s', request_body_chunk: '2s' } },
      load_balancing: { upstreams: upstreams([backend.port]), connections_per_upstream: 16, queue_timeout: '2s' },
      middleware: { auth: { enabled: true, public_paths: ['/public/*'], argon2: { memory_kib: 1024, iterations: 1 } } },
      jwt: { secret: 'fuzz-secret-0123456789-abcdefghijklmnop' },
      logging: { access_log: false },
    }, { timeoutMs: 60_000 }); // a loaded machine may take a while to start a child process
    const pid = gw.child.pid!;
    await warmUp(gw.port);
    await sleep(500);
    const sampling = sampleRun(pid);
    const byKind: Record<string, number> = Object.fromEntries(KINDS.map((k) => [k, 0]));
    const outcomes: Record<string, number> = {};
    let cases = 0;
    const started = Date.now();
    const deadline = started + options.durationMs;
    const port = gw.port;
    await Promise.all(
      Array.from({ length: concurrency }, async () => {
        while (Date.now() < deadline) {
          const c = generateCase(random);
          byKind[c.kind] = (byKind[c.kind] ?? 0) + 1;
          const outcome = await runCase(port, c, caseTimeout);
          outcomes[outcome] = (outcomes[outcome] ?? 0) + 1;
          cases++;
        }
      }),
    );
    const elapsed = Date.now() - started;
    // Let the gateway's timeouts (2 s here) fire and closed sockets be noticed.
    const { fields, failures } = await checkSurvival(gw, sampling.stop(), () => healthStatus(port), 3_000);
    if (backend.violations.length > 0) failures.push(`${backend.violations.length} forbidden requests reached the backend: ${backend.violations.slice(0, 5).join('; ')}`);
    if ((outcomes['500'] ?? 0) > 0) failures.push(`${outcomes['500']} answers were 500 (a bug)`);
    return {
      seed,
      durationMs: elapsed,
      cases,
      byKind,
      outcomes,
      backendHits: backend.hits,
      violations: backend.violations,
      ...fields,
      failures,
    };
  } finally {
    await gw?.cleanup();
    await backend?.stop();
  }
}
