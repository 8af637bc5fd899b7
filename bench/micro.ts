// Micro-benchmarks that justify the hand-written hot-path pieces against the libraries they replace:
//   1. the log line writer (src/observability/line-writer.ts) vs pino.destination({ sync: false }) (sonic-boom);
//   2. the fast metrics collectors (src/observability/fast-metrics.ts) vs prom-client's Counter and Histogram;
//   3. the access log's lines encoded in place (src/observability/line-bytes.ts) vs the same lines built as strings,
//      both through the real AccessLog and LineWriter;
//   4. the Host check (src/pipeline/host-check.ts) answering from its set of accepted authorities vs walking a Host
//      it has not seen.
// Each case runs the same work as one proxied request, in interleaved rounds; the median CPU ns per request is printed
// (the line-building and the event-loop turns are in every case alike).
// Run: node --import tsx bench/micro.ts [--rounds 5]   (MICRO_LOG_TO_DEV_NULL=1: user-space cost only)
import { closeSync, mkdtempSync, openSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { pino } from 'pino';
import { Counter, Histogram, Registry } from 'prom-client';
import { LineWriter } from '../src/observability/line-writer.js';
import { AccessLog, type AccessFacts } from '../src/observability/access-log.js';
import { FastCounter, FastHistogram } from '../src/observability/fast-metrics.js';
import { authorityProblem } from '../src/pipeline/host-check.js';

const { values } = parseArgs({ options: { rounds: { type: 'string', default: '5' } } });
const ROUNDS = Number(values.rounds);
const dir = mkdtempSync(join(tmpdir(), 'portcullis-micro-'));
/** MICRO_LOG_TO_DEV_NULL=1: the log cases write to /dev/null, leaving out the kernel's file-write cost. */
const logPath = (name: string): string => (process.env.MICRO_LOG_TO_DEV_NULL === '1' ? '/dev/null' : join(dir, name));

/** A request's three access lines, as the access log writes them (pre-serialised JSON). */
function accessLines(i: number): string {
  const id = `0f8fad5b-d9cb-469f-a165-70867728${String(i % 10_000).padStart(4, '0')}`;
  const t = 1_796_170_000_000 + i;
  return (
    `{"level":30,"time":${t},"service":"portcullis","request_id":"${id}","method":"GET","path":"/api/items","client":"10.0.0.7","msg":"Request Start"}\n` +
    `{"level":30,"time":${t},"service":"portcullis","request_id":"${id}","upstream":"backend1","attempt":1,"msg":"Upstream Request"}\n` +
    `{"level":30,"time":${t + 1},"service":"portcullis","request_id":"${id}","status":200,"duration_ms":1.42,"bytes":230,"msg":"Request Completed"}\n`
  );
}

interface Case {
  readonly name: string;
  /** Prepares the case and returns the per-request work plus a teardown that waits for pending I/O. */
  setup(): { run(i: number): void; done(): Promise<void> };
}

/** The work every log case shares (building the lines, the loop, the event-loop turns): subtract it. */
function baselineCase(): Case {
  let sink = 0;
  return {
    name: 'log: baseline (lines built, then discarded)',
    setup: () => ({ run: (i) => void (sink += accessLines(i).length), done: async () => void (sink = 0) }),
  };
}

function lineWriterCase(): Case {
  return {
    name: 'log: LineWriter (3 lines per request)',
    setup() {
      const fd = openSync(logPath('line-writer.log'), 'w');
      const writer = new LineWriter(fd);
      return {
        run: (i) => void writer.write(accessLines(i)),
        done: async () => {
          writer.end();
          closeSync(fd);
        },
      };
    },
  };
}

/** A proxied request as the access log sees it (what the driver's RequestContext carries). */
function accessFacts(i: number): AccessFacts {
  return {
    id: `0f8fad5b-d9cb-469f-a165-70867728${String(i % 10_000).padStart(4, '0')}`,
    req: { method: 'GET', httpVersionMajor: 1, httpVersionMinor: 1, socket: null },
    tlsVersion: undefined,
    path: '/api/items',
    route: { name: 'default' },
    service: 'default',
    peer: { label: '127.0.0.1:3001' },
    attempts: 1,
    status: 200,
    durationMs: Math.round((i % 500) * 1.37) / 100,
    clientAddress: '10.0.0.7',
    error: undefined,
    slots: [],
  };
}

/** The AccessLog's three events per request into a LineWriter: encoded in place, or (`strings`) built as strings. */
function accessLogCase(strings: boolean): Case {
  return {
    name: `access log: 3 events, ${strings ? 'built as strings' : 'encoded in place'}`,
    setup() {
      const fd = openSync(logPath(`access-${strings ? 'strings' : 'bytes'}.log`), 'w');
      const writer = new LineWriter(fd);
      // Without claim/commit, the access log takes its string path.
      const sink = strings ? { write: (line: string) => writer.write(line) } : writer;
      const log = new AccessLog(pino({ level: 'info' }, { write: () => undefined }), sink);
      return {
        run: (i) => {
          const ctx = accessFacts(i);
          log.requestStart(ctx);
          log.selectUpstream(ctx);
          log.requestCompleted(ctx);
        },
        done: async () => {
          writer.end();
          closeSync(fd);
        },
      };
    },
  };
}

/** pino.destination({ sync: false }): what pino writes through by default; `minLength` 0 is its default. */
function sonicBoomCase(minLength: number): Case {
  return {
    name: `log: pino.destination({sync:false, minLength:${minLength}})`,
    setup() {
      const dest = pino.destination({ dest: openSync(logPath(`sonic-boom-${minLength}.log`), 'w'), sync: false, minLength });
      return {
        run: (i) => void dest.write(accessLines(i)),
        done: async () => {
          dest.flushSync();
          dest.end();
        },
      };
    },
  };
}

function pinoLoggerCase(): Case {
  return {
    name: 'log: pino logger.info × 3 → pino.destination({sync:false})',
    setup() {
      const dest = pino.destination({ dest: openSync(logPath('pino.log'), 'w'), sync: false });
      const logger = pino({ base: { service: 'portcullis' } }, dest);
      return {
        run: (i) => {
          const id = `req-${i}`;
          logger.info({ request_id: id, method: 'GET', path: '/api/items', client: '10.0.0.7' }, 'Request Start');
          logger.info({ request_id: id, upstream: 'backend1', attempt: 1 }, 'Upstream Request');
          logger.info({ request_id: id, status: 200, duration_ms: 1.42, bytes: 230 }, 'Request Completed');
        },
        done: async () => {
          dest.flushSync();
          dest.end();
        },
      };
    },
  };
}

const STATUSES = [200, 200, 200, 200, 201, 204, 404, 500];
const BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

/** One request's metrics: the requests counter (4 labels) and the duration histogram (2 labels). */
function fastMetricsCase(): Case {
  return {
    name: 'metrics: FastCounter + FastHistogram',
    setup() {
      const requests = new FastCounter({ name: 'req_total', help: 'h', labelNames: ['route', 'method', 'status', 'upstream'] });
      const duration = new FastHistogram({ name: 'req_seconds', help: 'h', labelNames: ['route', 'method'], buckets: BUCKETS });
      return {
        run: (i) => {
          const status = STATUSES[i & 7]!;
          // The gateway keys series by small integers it already has (route × method × status × upstream index).
          const key = status * 16 + (i % 3);
          (requests.at(key) ?? requests.series(key, ['proxy', 'GET', String(status), `backend${i % 3}`])).inc();
          (duration.at(1) ?? duration.series(1, ['proxy', 'GET'])).observe(0.0005 + (i % 100) / 10_000);
        },
        done: async () => void 0,
      };
    },
  };
}

function promClientCase(): Case {
  return {
    name: 'metrics: prom-client Counter + Histogram (labels object)',
    setup() {
      const registry = new Registry();
      const requests = new Counter({ name: 'req_total', help: 'h', labelNames: ['route', 'method', 'status', 'upstream'], registers: [registry] });
      const duration = new Histogram({ name: 'req_seconds', help: 'h', labelNames: ['route', 'method'], buckets: BUCKETS, registers: [registry] });
      return {
        run: (i) => {
          const status = STATUSES[i & 7]!;
          requests.inc({ route: 'proxy', method: 'GET', status: String(status), upstream: `backend${i % 3}` });
          duration.observe({ route: 'proxy', method: 'GET' }, 0.0005 + (i % 100) / 10_000);
        },
        done: async () => void 0,
      };
    },
  };
}

/**
 * One request's Host check. Every request brings its Host as a new string (node's parser makes one per request), so
 * each run builds one: `seen` from two values the gateway has accepted before, as a gateway's clients send a few;
 * otherwise a new numeric authority each time, the worst case (the walk, the dotted-quad split, and a place in the set).
 */
function hostCheckCase(seen: boolean): Case {
  let refused = 0;
  return {
    name: seen ? 'host check: a Host accepted before (remembered)' : 'host check: a new Host each request (walked)',
    setup: () => ({
      run: (i) => {
        const host = seen ? `127.0.0.1:${8080 + (i & 1)}` : `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}:8080`;
        if (authorityProblem(host) !== undefined) refused++;
      },
      done: async () => {
        if (refused !== 0) throw new Error('a plain Host was refused');
      },
    }),
  };
}

const cases = [
  baselineCase(),
  lineWriterCase(),
  sonicBoomCase(0),
  sonicBoomCase(8192),
  pinoLoggerCase(),
  accessLogCase(true),
  accessLogCase(false),
  fastMetricsCase(),
  promClientCase(),
  hostCheckCase(true),
  hostCheckCase(false),
];
const N = 200_000;

async function once(c: Case): Promise<number> {
  const { run, done } = c.setup();
  for (let i = 0; i < 5_000; i++) run(i); // warm-up
  // Batches of 64 requests per event-loop turn, as a busy gateway serves them: writes complete between batches
  // (a tight loop would only fill buffers up to their limit and then measure dropped lines).
  // CPU time (user + system, every thread: the writes happen on libuv's pool), not wall time: on a shared machine
  // the wall clock mostly measures the neighbours.
  const start = process.cpuUsage();
  for (let i = 0; i < N; ) {
    for (const end = i + 64; i < end; i++) run(i);
    await new Promise((resolve) => setImmediate(resolve));
  }
  await done();
  const used = process.cpuUsage(start);
  return ((used.user + used.system) * 1000) / N;
}

try {
  const results = new Map<string, number[]>(cases.map((c) => [c.name, []]));
  for (let round = 0; round < ROUNDS; round++) {
    for (const c of cases) results.get(c.name)!.push(await once(c));
  }
  process.stdout.write(`CPU ns per request, median of ${ROUNDS} rounds of ${N.toLocaleString('en-US')} (min–max)\n`);
  for (const [name, ns] of results) {
    const sorted = [...ns].sort((a, b) => a - b);
    process.stdout.write(
      `  ${name.padEnd(58)} ${sorted[sorted.length >> 1]!.toFixed(0).padStart(6)} ns  (${sorted[0]!.toFixed(0)}–${sorted.at(-1)!.toFixed(0)})\n`,
    );
  }
} finally {
  rmSync(dir, { recursive: true, force: true });
}
