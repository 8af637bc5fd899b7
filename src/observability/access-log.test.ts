// The access log's two ways of writing a line (encoded in place into the line writer, or built as a string) give
// the same bytes for every request, in both formats; what the byte path cannot write exactly goes the string way.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, openSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { GatewayError } from '../errors.js';
import { AccessLog, type AccessFacts, type AccessLogFormat, type LineSink, type TunnelFacts } from './access-log.js';
import type { ByteSink } from './line-bytes.js';
import { LineWriter } from './line-writer.js';
import { TRACE } from './tracing/types.js';
import { waitFor } from '../../test/helpers/wait.js';

const logger = pino({ level: 'info' }, { write: () => undefined });

interface Case {
  readonly id: string;
  readonly method: string | undefined;
  readonly path: string;
  readonly route: string;
  readonly service: string | undefined;
  readonly upstream: string | undefined;
  readonly attempts: number;
  readonly status: number;
  readonly durationMs: number;
  readonly client: string;
  readonly version: [number, number];
  readonly tls: string | undefined;
  readonly traceId: string | undefined;
  readonly error: GatewayError | undefined;
}

function facts(c: Case): AccessFacts {
  const ctx = {
    id: c.id,
    req: { method: c.method, httpVersionMajor: c.version[0], httpVersionMinor: c.version[1], socket: null },
    tlsVersion: c.tls,
    path: c.path,
    route: { name: c.route },
    service: c.service,
    peer: c.upstream === undefined ? undefined : { label: c.upstream },
    attempts: c.attempts,
    status: c.status,
    durationMs: c.durationMs,
    clientAddress: c.client,
    error: c.error,
    slots: [] as unknown[],
  };
  if (c.traceId !== undefined) TRACE.set(ctx, { traceId: c.traceId });
  return ctx;
}

const PLAIN: Case = {
  id: '1b4e28ba-2fa1-41d2-883f-0016d3cca427',
  method: 'GET',
  path: '/api/users',
  route: 'default',
  service: 'default',
  upstream: '127.0.0.1:3001',
  attempts: 1,
  status: 200,
  durationMs: 1.23,
  client: '127.0.0.1',
  version: [1, 1],
  tls: undefined,
  traceId: undefined,
  error: undefined,
};

/** Requests of every shape the log meets, including what only the string path can write. */
function cases(): Case[] {
  const out: Case[] = [PLAIN];
  const variants: Partial<Case>[] = [
    { method: undefined },
    { method: 'PROPFIND', path: '/', status: 404, service: undefined, upstream: undefined, route: 'ROUTE_NOT_FOUND' },
    { traceId: '4bf92f3577b34da6a3ce929d0e0e4736' },
    { tls: 'TLSv1.3', version: [2, 0] },
    { version: [1, 0], durationMs: 0 },
    { durationMs: 12 },
    { durationMs: 0.5 },
    { durationMs: 0.07 },
    { durationMs: 2_000_000_000.25 }, // too large for the byte writer: the string path
    { attempts: 3, status: 502 },
    { client: '2001:db8::1', upstream: '[::1]:8080' },
    { path: '/quote"d' },
    { path: '/back\\slash' },
    { path: '/caf\u00e9' },
    { path: '/\u{1f600}' },
    { path: `/${'a'.repeat(20_000)}` }, // longer than a claim: the string path
    { route: 'r\u00e9sum\u00e9s', service: 'svc"x' },
    { upstream: 'b\u00e4ckend' },
    { error: new GatewayError('UPSTREAM_TIMEOUT', { cause: new Error('read ETIMEDOUT') }), status: 504 },
    { error: new GatewayError('NO_HEALTHY_UPSTREAM'), status: 503, upstream: undefined },
    // Node's parsers only let tokens through, but inject() does not parse: the method is written as JSON too.
    { method: 'G\u00c9T' },
    { method: 'G\u010aT' },
    { method: 'M"X' },
  ];
  for (const v of variants) out.push({ ...PLAIN, ...v });
  // Many more plain ones, to fill several buffers and cross their boundaries, with the variants mixed in: a claim
  // that sealed a full buffer and then fell back to the string path must lose and reorder nothing.
  for (let i = 0; i < PLAIN_COUNT; i++) {
    out.push({ ...PLAIN, id: `${PLAIN.id.slice(0, -4)}${String(i).padStart(4, '0')}`, path: `/items/${i}`, status: 200 + (i % 5), durationMs: Math.round(i * 13.37) / 100 });
    if (i % 7 === 0) out.push({ ...PLAIN, ...variants[(i / 7) % variants.length] });
  }
  return out;
}

const PLAIN_COUNT = 3_000;

/** The line writer, counting the lines it was given encoded in place (to show the fast path is taken). */
function counting(writer: LineWriter): ByteSink & LineSink & { commits: number } {
  return {
    commits: 0,
    claim: (bound) => writer.claim(bound),
    get claimedBuffer() {
      return writer.claimedBuffer;
    },
    commit(end) {
      this.commits++;
      writer.commit(end);
    },
    write: (line) => writer.write(line),
  };
}

/** Every event of every case through `log` (the driver's order: start, select when proxied, completed). */
function logAll(log: AccessLog, all: Case[]): void {
  for (const c of all) {
    const ctx = facts(c);
    log.requestStart(ctx);
    if (c.upstream !== undefined) log.selectUpstream(ctx);
    log.requestCompleted(ctx);
  }
}

/** Each line with its timestamp replaced: the two runs read the clock at different moments. */
function withoutTime(text: string): string[] {
  return text.split('\n').map((line) => line.replace(/^\{"level":30,"time":\d+,/, '{"level":30,"time":0,'));
}

for (const format of ['events', 'single'] as AccessLogFormat[]) {
  for (const shared of [false, true]) {
    test(`format ${format}${shared ? ', shared writer' : ''}: lines encoded in place are the lines built as strings`, async () => {
      const dir = mkdtempSync(join(tmpdir(), 'portcullis-access-log-'));
      try {
        const file = join(dir, 'access.log');
        const writer = new LineWriter(openSync(file, 'w'), { shared, chunk: 16_384 });
        const sink = counting(writer);
        const built: string[] = [];
        const all = cases();
        logAll(new AccessLog(logger, sink, true, format), all);
        // Every plain request's lines took the fast path (three a request in "events", one in "single").
        assert.ok(sink.commits >= PLAIN_COUNT * (format === 'events' ? 3 : 1), `${sink.commits} lines encoded in place`);
        logAll(new AccessLog(logger, { write: (line: string) => built.push(line) }, true, format), all);
        writer.end(); // (a write already running finishes the rest asynchronously)
        const slow = withoutTime(built.join(''));
        await waitFor(() => withoutTime(readFileSync(file, 'utf8')).length >= slow.length, 'the whole log in the file');
        const fast = withoutTime(readFileSync(file, 'utf8'));
        assert.equal(fast.length, slow.length);
        for (let i = 0; i < fast.length; i++) assert.equal(fast[i], slow[i], `line ${i}`);
        // Every line is JSON, and the time is a real one.
        for (const line of readFileSync(file, 'utf8').trimEnd().split('\n')) {
          const parsed = JSON.parse(line) as { time: number };
          assert.ok(Math.abs(parsed.time - Date.now()) < 60_000);
        }
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    });
  }
}

test('a clock that gives fractions (mocked timers) takes the string path: the line is still whole', async (t) => {
  t.mock.method(Date, 'now', () => 1_700_000_000_000.5);
  const dir = mkdtempSync(join(tmpdir(), 'portcullis-access-log-'));
  try {
    const file = join(dir, 'access.log');
    const writer = new LineWriter(openSync(file, 'w'));
    const sink = counting(writer);
    logAll(new AccessLog(logger, sink, true, 'events'), [PLAIN, PLAIN]);
    writer.end();
    await waitFor(() => readFileSync(file, 'utf8').split('\n').length > 6, 'six lines');
    const lines = readFileSync(file, 'utf8').trimEnd().split('\n');
    assert.equal(lines.length, 6);
    for (const line of lines) assert.equal((JSON.parse(line) as { time: number }).time, 1_700_000_000_000.5);
    assert.equal(sink.commits, 0);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('Tunnel Closed: the line written to the sink is the line pino writes, in both formats; none with the log off', () => {
  const tunnels: TunnelFacts[] = [
    { durationMs: 1234.5678, bytesFromClient: 50_003, bytesFromUpstream: 70_001, closedBy: 'client', errorFrom: undefined, error: undefined },
    { durationMs: 0.004, bytesFromClient: 0, bytesFromUpstream: 12, closedBy: 'upstream', errorFrom: undefined, error: undefined },
    { durationMs: 8, bytesFromClient: 3, bytesFromUpstream: 0, closedBy: 'shutdown', errorFrom: undefined, error: undefined },
    {
      durationMs: 25.5,
      bytesFromClient: 7,
      bytesFromUpstream: 9,
      closedBy: 'error',
      errorFrom: 'client',
      error: Object.assign(new Error('read ECONNRESET from 10.0.0.9'), { code: 'ECONNRESET' }),
    },
  ];
  const requests = [PLAIN, { ...PLAIN, traceId: '4bf92f3577b34da6a3ce929d0e0e4736', route: 'r\u00e9sum\u00e9s', service: 'svc"x' }];
  for (const format of ['events', 'single'] as AccessLogFormat[]) {
    const sunk: string[] = [];
    const viaPino: string[] = [];
    const pinoLogger = pino({ level: 'info', base: { service: 'portcullis' } }, { write: (line: string) => viaPino.push(line) });
    const fast = new AccessLog(logger, { write: (line: string) => sunk.push(line) }, true, format);
    const slow = new AccessLog(pinoLogger, undefined, true, format);
    for (const c of requests) {
      for (const tunnel of tunnels) {
        fast.tunnelClosed(facts(c), tunnel);
        slow.tunnelClosed(facts(c), tunnel);
      }
    }
    assert.deepEqual(withoutTime(sunk.join('')), withoutTime(viaPino.join('')));
    const first = JSON.parse(sunk[0]!) as Record<string, unknown>;
    assert.deepEqual(Object.keys(first), [
      'level', 'time', 'service', 'request_id', 'route', 'upstream_service', 'upstream', 'duration_ms', 'bytes_from_client',
      'bytes_from_upstream', 'closed_by', 'client', 'msg',
    ]);
    assert.equal(first.duration_ms, 1234.57);
    const failed = JSON.parse(sunk[3]!) as Record<string, unknown>;
    assert.equal(failed.error_from, 'client');
    assert.equal(failed.cause, 'Error(ECONNRESET)'); // class and code, never the message
  }
  const off: string[] = [];
  new AccessLog(logger, { write: (line: string) => off.push(line) }, false).tunnelClosed(facts(PLAIN), tunnels[0]!);
  assert.deepEqual(off, []);
});

test('logging.level: Request Completed and Tunnel Closed at any level but silent, the detail lines at info and below', () => {
  const tunnel: TunnelFacts = { durationMs: 1, bytesFromClient: 1, bytesFromUpstream: 1, closedBy: 'client', errorFrom: undefined, error: undefined };
  /** The msg of each line one request (and its tunnel) writes, by sink and through pino. */
  const written = (level: string, enabled: boolean, format: AccessLogFormat): { sunk: string[]; viaPino: string[] } => {
    const sunk: string[] = [];
    const viaPino: string[] = [];
    const leveled = pino({ level, base: { service: 'portcullis' } }, { write: (line: string) => viaPino.push(line) });
    for (const access of [
      new AccessLog(leveled, { write: (line: string) => sunk.push(line) }, enabled, format),
      new AccessLog(leveled, undefined, enabled, format),
    ]) {
      access.requestStart(facts(PLAIN));
      access.selectUpstream(facts(PLAIN));
      access.requestCompleted(facts(PLAIN));
      access.tunnelClosed(facts(PLAIN), tunnel);
    }
    const msgs = (lines: string[]) => lines.map((l) => (JSON.parse(l) as { msg: string; level: number }).msg);
    return { sunk: msgs(sunk), viaPino: msgs(viaPino) };
  };
  const all = ['Request Start', 'Select Upstream', 'Request Completed', 'Tunnel Closed'];
  const completion = ['Request Completed', 'Tunnel Closed'];
  for (const level of ['trace', 'debug', 'info']) assert.deepEqual(written(level, true, 'events'), { sunk: all, viaPino: all }, level);
  for (const level of ['warn', 'error', 'fatal']) {
    assert.deepEqual(written(level, true, 'events'), { sunk: completion, viaPino: completion }, level);
    assert.deepEqual(written(level, true, 'single'), { sunk: completion, viaPino: completion }, level);
    assert.deepEqual(written(level, false, 'events'), { sunk: [], viaPino: [] }, `${level}, access_log off`);
  }
  assert.deepEqual(written('silent', true, 'events'), { sunk: [], viaPino: [] }, 'silent: no output at all');
});

test('a reload to another level applies from the next request on (the logger\'s level set first, as server.ts does)', () => {
  const viaPino: string[] = [];
  const leveled = pino({ level: 'info', base: { service: 'portcullis' } }, { write: (line: string) => viaPino.push(line) });
  const access = new AccessLog(leveled, undefined, true, 'events');
  leveled.level = 'error';
  access.configure(true, 'events');
  access.requestStart(facts(PLAIN));
  access.requestCompleted(facts(PLAIN));
  leveled.level = 'info';
  access.configure(true, 'events');
  access.requestStart(facts(PLAIN));
  assert.deepEqual(viaPino.map((l) => (JSON.parse(l) as { msg: string; level: number }).msg), ['Request Completed', 'Request Start']);
  // Still an info line, whatever the level that let it through.
  assert.equal((JSON.parse(viaPino[0]!) as { level: number }).level, 30);
});
