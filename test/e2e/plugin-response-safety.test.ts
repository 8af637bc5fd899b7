// Nothing a response hook, a plugin's respond() or an upstream's response head does may end the gateway process: a
// hook failing on a gRPC error reply, a header name or value node refuses (a control character, CR/LF, beyond
// Latin-1, HTTP2-Settings over HTTP/2, two values of a single-value header), a 204 with a body. The client gets the
// catalogue's error (500 plugin_failed, 502), as JSON or the gRPC way, the access log records it, and the process
// still answers /health. A gateway process in front of real backends, with real h2 and HTTPS/1.1 clients; the last
// suite holds reply.ts's own guard to the same rules with phases that bypass the plugin checks.
import { after, afterEach, before, beforeEach, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type IncomingHttpHeaders } from 'node:http';
import type { ClientHttp2Session } from 'node:http2';
import { request as httpsRequest } from 'node:https';
import type { Socket } from 'node:net';
import { GatewayError } from '../../src/errors.js';
import type { Phase } from '../../src/pipeline/phase.js';
import { sendError, sendJson } from '../../src/pipeline/reply.js';
import { FAST_ARGON2, TEST_SECRET } from '../helpers/auth-gateway.js';
import { startBackend, type TestBackend } from '../helpers/backends.js';
import { spawnGateway, type ConfigInput, type GatewayProcess } from '../helpers/gateway.js';
import { h2connect, h2request } from '../helpers/h2.js';
import { startPipelineServer, type PipelineServer } from '../helpers/pipeline-server.js';
import { freePort } from '../helpers/ports.js';
import { createTestCa, pkiDir, type IssuedCertificate, type TestCa } from '../helpers/tls.js';
import { waitFor } from '../helpers/wait.js';

const MISUSE = new URL('../plugins/fixtures/misuse.mjs', import.meta.url).pathname;

/** The fixture's bad values by kind (misuse.mjs), to check that no error message quotes one. */
const VALUES: Readonly<Record<string, string>> = {
  ctl: 'a\u0001b',
  euro: 'caf\u00e9\u20ac',
  crlf: 'a\r\nb',
  lf: 'a\nb',
  nul: 'a\u0000b',
  del: 'a\u007fb',
};
const NAME_KINDS = ['space', 'paren', 'colon', 'empty', 'accent', 'h2settings'] as const;
/** Headers node's HTTP/2 layer sends with one value only. */
const SINGLE_VALUE = ['etag', 'content-type', 'date', 'location'] as const;

type Transport = 'h2' | 'h1';
const TRANSPORTS: readonly Transport[] = ['h2', 'h1'];
const MODES: ReadonlyArray<{ readonly name: string; readonly headers: Readonly<Record<string, string>> }> = [
  { name: 'sync', headers: {} },
  { name: 'async', headers: { 'x-misuse-async': '1' } },
];
const GRPC = { 'content-type': 'application/grpc' } as const;

interface Reply {
  readonly transport: Transport;
  readonly status: number;
  readonly headers: IncomingHttpHeaders;
  readonly body: string;
}

/** What an access log line must say: the status, the error code when given (undefined: none), the failed hook. */
interface LogWant {
  readonly status: number;
  readonly error?: string | undefined;
  readonly hook?: 'onRequest' | 'onResponse';
}

interface Request {
  readonly method?: string;
  readonly headers?: Readonly<Record<string, string>>;
  readonly body?: Buffer;
}

/** An HTTPS/1.1 request on a connection of its own (no ALPN: the gateway's HTTP/1.1 fallback). */
function h1request(port: number, ca: Buffer, path: string, init: Request): Promise<Omit<Reply, 'transport'>> {
  return new Promise((resolve, reject) => {
    const req = httpsRequest(
      { host: '127.0.0.1', port, path, method: init.method ?? 'GET', ca, servername: 'a.test', agent: false, headers: init.headers },
      (res) => {
        let body = '';
        res.setEncoding('latin1');
        res.on('data', (d: string) => (body += d));
        res.on('error', reject);
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
      },
    );
    req.setTimeout(15_000, () => req.destroy(new Error(`HTTPS/1.1 request ${path} timed out`)));
    req.on('error', reject);
    req.end(init.body);
  });
}

/** h2 and HTTPS/1.1 clients of one server, the h2 session opened again when it was lost. */
class Clients {
  #session: ClientHttp2Session | undefined;

  constructor(
    readonly port: () => number,
    readonly ca: Buffer,
  ) {}

  async call(transport: Transport, path: string, init: Request = {}): Promise<Reply> {
    if (transport === 'h1') return { transport, ...(await h1request(this.port(), this.ca, path, init)) };
    const session = await this.#h2();
    const headers = { ':method': init.method ?? 'GET', ':path': path, ...init.headers };
    const res = await h2request(session, headers, init.body);
    return { transport, status: res.status, headers: res.headers, body: res.body.toString('latin1') };
  }

  close(): void {
    this.#session?.destroy();
    this.#session = undefined;
  }

  async #h2(): Promise<ClientHttp2Session> {
    if (this.#session === undefined || this.#session.closed || this.#session.destroyed) {
      const session = await h2connect(this.port(), this.ca);
      session.on('error', () => undefined); // a crashed server: the request in flight says so
      this.#session = session;
    }
    return this.#session;
  }
}

/** What a test names a reply by in its assertion messages. */
function what(reply: Reply, label: string): string {
  return `${label} over ${reply.transport}: ${reply.status} ${reply.body.slice(0, 200)}`;
}

/** The catalogue's 500 for a plugin failure, as JSON. */
function assertPluginFailedJson(reply: Reply, label: string): void {
  assert.equal(reply.status, 500, what(reply, label));
  const body = JSON.parse(reply.body) as Record<string, unknown>;
  assert.equal(body.code, 'plugin_failed', what(reply, label));
  assert.equal(body.error, 'Internal Server Error');
  assert.equal(body.request_id, reply.headers['x-request-id']);
}

/** A gateway-made gRPC error: HTTP 200 trailers-only (over HTTP/1.1 an empty 200) with grpc-status. */
function assertGrpcError(reply: Reply, grpcStatus: string, label: string): void {
  assert.equal(reply.status, 200, what(reply, label));
  assert.equal(reply.headers['content-type'], 'application/grpc', what(reply, label));
  assert.equal(reply.headers['grpc-status'], grpcStatus, what(reply, label));
  assert.equal(reply.body, '');
}

/** An HTTP/1.1 backend whose answers carry headers node's HTTP/2 layer refuses on a response. */
async function startOddBackend(): Promise<{ port: number; close(): Promise<void> }> {
  const sockets = new Set<Socket>();
  const server = createServer((req, res) => {
    req.resume();
    const path = new URL(req.url ?? '/', 'http://x').pathname;
    if (path.endsWith('/h2settings-grpc')) {
      // An upstream's own gRPC answer, trailers-only: relayed as one HEADERS frame to an h2 client.
      res.writeHead(200, { 'content-type': 'application/grpc', 'grpc-status': '5', 'grpc-message': 'nope', 'http2-settings': 'AAA', 'content-length': 0 });
      res.end();
    } else if (path.endsWith('/h2settings')) {
      res.writeHead(200, { 'content-type': 'text/plain', 'http2-settings': 'AAA' });
      res.end('ok');
    } else if (path.endsWith('/locations')) {
      // Two different Locations: legal lines in HTTP/1.1; joined they would be one nonsense URL, and node's HTTP/2
      // layer refuses them.
      res.setHeader('location', ['/a', '/b']);
      res.setHeader('content-type', 'text/plain');
      res.end('locations');
    } else {
      // Two ETags and two Dates: legal lines in HTTP/1.1; node's HTTP/2 layer sends each once (joined by the gateway).
      const date = new Date().toUTCString();
      res.setHeader('etag', ['"a"', '"b"']);
      res.setHeader('date', [date, date]);
      res.setHeader('content-type', 'text/plain');
      res.end('twice');
    }
  });
  server.on('connection', (s: Socket) => {
    sockets.add(s);
    s.once('close', () => sockets.delete(s));
  });
  const port = await freePort();
  await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
  return {
    port,
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}

describe('response safety: a gateway process with a misbehaving plugin', () => {
  const pki = pkiDir();
  let ca: TestCa;
  let cert: IssuedCertificate;
  let echo: TestBackend;
  let odd: { port: number; close(): Promise<void> };
  let config: ConfigInput;
  let gw: GatewayProcess | undefined;
  let clients: Clients;

  const start = async (): Promise<void> => {
    gw = await spawnGateway(config, { timeoutMs: 30_000 });
  };
  const exited = (): boolean => gw === undefined || gw.child.exitCode !== null || gw.child.signalCode !== null;
  const call = (transport: Transport, path: string, init?: Request): Promise<Reply> => clients.call(transport, path, init);

  before(async () => {
    ca = createTestCa('Response Safety CA', pki.path);
    cert = ca.issue('a.test', { san: ['DNS:a.test', 'IP:127.0.0.1'] });
    echo = await startBackend('echo');
    odd = await startOddBackend();
    const deadPort = await freePort(); // kept closed: connections are refused (502)
    const service = (port: number, extra: ConfigInput = {}): ConfigInput => ({
      upstreams: [{ name: `u${port}`, address: '127.0.0.1', port }],
      health_check: { enabled: false },
      ...extra,
    });
    const route = (name: string, prefix: string, service: string, extra: ConfigInput = {}): ConfigInput => ({
      name,
      match: { path_prefix: prefix },
      service,
      auth: 'off',
      ...extra,
    });
    config = {
      server: { tls: { cert_file: cert.certFile, key_file: cert.keyFile } },
      jwt: { secret: TEST_SECRET },
      middleware: {
        auth: { enabled: true, argon2: FAST_ARGON2 },
        rate_limit: { enabled: false, policies: { tiny: { requests_per_minute: 1, burst_size: 1 } } },
        plugins: ['misuse'],
      },
      plugins: [{ name: 'misuse', module: MISUSE }],
      services: { echo: service(echo.port), dead: service(deadPort, { retries: 0 }), odd: service(odd.port) },
      routes: [
        route('dead', '/dead', 'dead'),
        route('slow', '/slow', 'echo', { timeouts: { upstream_response: '300ms' } }),
        route('small', '/small', 'echo', { max_body_size: '16B' }),
        { name: 'private', match: { path_prefix: '/private' }, service: 'echo' },
        route('limited', '/limited', 'echo', { rate_limit: 'tiny' }),
        route('odd', '/odd', 'odd'),
        route('echo', '/', 'echo'),
      ],
    };
    await start();
    clients = new Clients(() => gw!.port, ca.ca);
  });

  // A crash fails the test that caused it (its request, or the liveness check); the next test gets a new process.
  // The crashed one may not have exited yet: /health decides.
  afterEach(async () => {
    const healthy = !exited() && (await call('h1', '/health').then((r) => r.status === 200, () => false));
    if (healthy) return;
    clients.close();
    await gw?.cleanup();
    await start();
  });

  after(async () => {
    clients?.close();
    await gw?.cleanup();
    await echo?.stop();
    await odd?.close();
    pki.remove();
  });

  /** What the access log must say of each reply of the running test: checked together by finish(). */
  const expected: Array<{ reply: Reply; label: string; want: LogWant }> = [];
  beforeEach(() => {
    expected.length = 0;
  });

  function expectLogged(reply: Reply, label: string, want: LogWant): void {
    assert.equal(typeof reply.headers['x-request-id'], 'string', `${what(reply, label)}: the reply carries its request id`);
    expected.push({ reply, label, want });
  }

  /**
   * The end of every test: the access log's Request Completed line of each reply (by its X-Request-ID) says what
   * the test expected (the writer flushes in batches, so they are awaited together), and the process is running
   * and answers /health over both protocols.
   */
  async function finish(): Promise<void> {
    const find = (msg: string, id: unknown) => gw!.logs.find((l) => l.msg === msg && l.request_id === id);
    const idOf = (e: (typeof expected)[number]) => e.reply.headers['x-request-id'];
    await waitFor(() => expected.every((e) => find('Request Completed', idOf(e)) !== undefined), 'the access log lines');
    for (const e of expected) {
      const line = find('Request Completed', idOf(e))!;
      assert.equal(line.status, e.want.status, `${e.label}: logged status`);
      if ('error' in e.want) assert.equal(line.error, e.want.error, `${e.label}: logged error`);
      if (e.want.hook !== undefined) {
        const failed = find('Plugin Failed', idOf(e));
        assert.equal(failed?.hook, e.want.hook, `${e.label}: Plugin Failed names the hook`);
        assert.equal(failed?.plugin, 'misuse');
      }
    }
    assert.ok(!exited(), `the gateway process ended: ${gw?.stderr().slice(-1500)}`);
    for (const transport of TRANSPORTS) assert.equal((await call(transport, '/health')).status, 200, `/health over ${transport}`);
  }

  /** A 500 plugin_failed as JSON, to be logged as such, with the failed hook named in the Plugin Failed line. */
  function assertPluginFailed(reply: Reply, label: string, hook: 'onRequest' | 'onResponse'): void {
    assertPluginFailedJson(reply, label);
    expectLogged(reply, label, { status: 500, error: 'PLUGIN_FAILED', hook });
  }

  /** Sends plain requests to the limited route until one is refused: its bucket is empty afterwards. */
  async function drainLimited(): Promise<void> {
    for (let i = 0; i < 5; i++) if ((await call('h1', '/limited/drain')).status === 429) return;
    assert.fail('the tiny policy never answered 429');
  }

  const grpcErrors = [
    { name: '502 (dead upstream)', path: '/dead/portcullis.test.Echo/Unary', grpcStatus: '14' },
    { name: '504 (upstream timeout)', path: '/slow?ms=3000', grpcStatus: '4' },
    { name: '413 (max_body_size)', path: '/small/portcullis.test.Echo/Unary', grpcStatus: '8', body: Buffer.alloc(64) },
    { name: '401 (no token)', path: '/private/portcullis.test.Echo/Unary', grpcStatus: '16' },
    { name: '429 (rate limited)', path: '/limited/portcullis.test.Echo/Unary', grpcStatus: '14', drain: true },
  ] as const;

  for (const c of grpcErrors) {
    test(`a response hook failing on a gRPC ${c.name}: grpc-status UNKNOWN, logged as 500 plugin_failed (sync and async, h2 and HTTP/1.1)`, async () => {
      const body: { body?: Buffer; length: Record<string, string> } =
        'body' in c ? { body: c.body, length: { 'content-length': String(c.body.length) } } : { length: {} };
      const one = async (transport: Transport, mode: (typeof MODES)[number]): Promise<void> => {
        const label = `${c.name} ${mode.name}`;
        const send = (headers: Record<string, string>) =>
          call(transport, c.path, { method: 'POST', headers: { ...GRPC, ...body.length, ...headers, ...mode.headers }, ...(body.body ? { body: body.body } : {}) });
        if ('drain' in c) await drainLimited();
        const reply = await send({ 'x-misuse': 'throw' });
        assertGrpcError(reply, '2', label);
        assert.equal(reply.headers['grpc-message'], 'Internal Server Error');
        expectLogged(reply, label, { status: 500, error: 'PLUGIN_FAILED', hook: 'onResponse' });
        // Without the failure, the same request gets the error's own gRPC status.
        if ('drain' in c) await drainLimited();
        assertGrpcError(await send({}), c.grpcStatus, `${label} without the failure`);
      };
      const combos = TRANSPORTS.flatMap((transport) => MODES.map((mode) => () => one(transport, mode)));
      // At once (the timeouts take their time), except where each request must find the bucket empty.
      if ('drain' in c) for (const run of combos) await run();
      else await Promise.all(combos.map((run) => run()));
      await finish();
    });
  }

  test("an async response hook on a gRPC error reply is awaited: its header goes out with the error, and it saw the error's status", async () => {
    for (const transport of TRANSPORTS) {
      for (const mode of MODES) {
        const reply = await call(transport, '/dead/portcullis.test.Echo/Unary', { method: 'POST', headers: { ...GRPC, 'x-misuse': 'tag', ...mode.headers } });
        assertGrpcError(reply, '14', `tag ${mode.name}`);
        assert.equal(reply.headers['x-misuse-tag'], 'seen 502', `${transport} ${mode.name}`);
        expectLogged(reply, `tag ${mode.name}`, { status: 502, error: 'UPSTREAM_UNREACHABLE' });
      }
    }
    await finish();
  });

  // Proxied responses and the gateway's own (a 502): the same hooks, the same answer.
  for (const [where, path] of [
    ['a proxied response', '/echo/x'],
    ["the gateway's own 502", '/dead/x'],
  ] as const) {
    test(`response hooks setting a header value node refuses, on ${where}: 500 plugin_failed (sync and async, h2 and HTTP/1.1)`, async () => {
      for (const kind of Object.keys(VALUES)) {
        for (const verb of ['set-value', 'set-values']) {
          for (const transport of TRANSPORTS) {
            for (const mode of MODES) {
              const reply = await call(transport, path, { headers: { 'x-misuse': `${verb}:${kind}`, ...mode.headers } });
              assertPluginFailed(reply, `${verb}:${kind} ${mode.name} on ${path}`, 'onResponse');
            }
          }
        }
      }
      await finish();
    });

    test(`response hooks setting a header name node refuses, HTTP2-Settings or two values of a single-value header, on ${where}: 500 plugin_failed`, async () => {
      const actions = [...NAME_KINDS.map((k) => `set-name:${k}`), ...SINGLE_VALUE.map((h) => `set-multi:${h}`)];
      for (const action of actions) {
        for (const transport of TRANSPORTS) {
          for (const mode of MODES) {
            const reply = await call(transport, path, { headers: { 'x-misuse': action, ...mode.headers } });
            assertPluginFailed(reply, `${action} ${mode.name} on ${path}`, 'onResponse');
          }
        }
      }
      await finish();
    });
  }

  test('ctx.responseHeaders.set throws at once, naming the header and never quoting the value', async () => {
    for (const transport of TRANSPORTS) {
      for (const [kind, value] of Object.entries(VALUES)) {
        const reply = await call(transport, '/echo/x', { headers: { 'x-misuse': `try-set-value:${kind}` } });
        assert.equal(reply.status, 200, what(reply, kind));
        const message = String(reply.headers['x-misuse-error']);
        assert.match(message, /^TypeError: header x-bad: /, `${kind}: ${message}`);
        assert.ok(!message.includes(value) && !message.includes('caf'), `${kind}: the message quotes the value: ${message}`);
      }
      const named = await call(transport, '/echo/x', { headers: { 'x-misuse': 'try-set-name:space' } });
      assert.match(String(named.headers['x-misuse-error']), /^TypeError: invalid header name "bad name"/);
      const owned = await call(transport, '/echo/x', { headers: { 'x-misuse': 'try-set-name:h2settings' } });
      assert.equal(owned.headers['x-misuse-error'], 'TypeError: header http2-settings is owned by the gateway');
    }
    await finish();
  });

  test('respond() with a header name or value node refuses, or HTTP2-Settings: 500 plugin_failed from onRequest (sync and async)', async () => {
    const actions = [...Object.keys(VALUES).map((k) => `respond-value:${k}`), ...NAME_KINDS.map((k) => `respond-name:${k}`)];
    for (const action of actions) {
      for (const transport of TRANSPORTS) {
        for (const mode of MODES) {
          const reply = await call(transport, '/echo/x', { headers: { 'x-misuse': action, ...mode.headers } });
          assertPluginFailed(reply, `${action} ${mode.name}`, 'onRequest');
        }
      }
    }
    await finish();
  });

  test("respond()'s error names the header and never quotes the value", async () => {
    for (const [kind, value] of Object.entries(VALUES)) {
      const reply = await call('h1', '/echo/x', { headers: { 'x-misuse': `try-respond-value:${kind}` } });
      assert.equal(reply.status, 200, what(reply, kind));
      const message = (JSON.parse(reply.body) as { error: string }).error;
      assert.match(message, /^TypeError: header x-bad: /, `${kind}: ${message}`);
      assert.ok(!message.includes(value) && !message.includes('caf'), `${kind}: the message quotes the value: ${message}`);
    }
    const named = await call('h2', '/echo/x', { headers: { 'x-misuse': 'try-respond-name:space' } });
    assert.match((JSON.parse(named.body) as { error: string }).error, /^TypeError: invalid header name "bad name"/);
    await finish();
  });

  test('respond(204, body) is a 204 without body or Content-Length, over h2 as over HTTP/1.1', async () => {
    for (const transport of TRANSPORTS) {
      for (const mode of MODES) {
        const reply = await call(transport, '/echo/x', { headers: { 'x-misuse': 'respond-204', ...mode.headers } });
        assert.equal(reply.status, 204, what(reply, `respond-204 ${mode.name}`));
        assert.equal(reply.body, '');
        assert.equal(reply.headers['content-length'], undefined);
        expectLogged(reply, `respond-204 ${mode.name}`, { status: 204, error: undefined });
      }
    }
    await finish();
  });

  test("an upstream's HTTP2-Settings never reaches an h2 client, whatever the response hooks (a gRPC trailers-only answer too)", async () => {
    for (const transport of TRANSPORTS) {
      for (const mode of MODES) {
        const reply = await call(transport, '/odd/h2settings', { headers: { 'x-misuse': 'tag', ...mode.headers } });
        assert.equal(reply.status, 200, what(reply, `h2settings ${mode.name}`));
        assert.equal(reply.body, 'ok');
        assert.equal(reply.headers['x-misuse-tag'], 'seen 200');
        assert.equal(reply.headers['http2-settings'], undefined);
        const grpc = await call(transport, '/odd/h2settings-grpc', { method: 'POST', headers: { ...GRPC, 'x-misuse': 'tag', ...mode.headers } });
        assert.equal(grpc.status, 200, what(grpc, `h2settings-grpc ${mode.name}`));
        assert.equal(grpc.headers['grpc-status'], '5');
        assert.equal(grpc.headers['http2-settings'], undefined);
      }
    }
    await finish();
  });

  test('an upstream sending two ETags and two Dates: both clients get the response, an h2 one each header once', async () => {
    for (const mode of MODES) {
      const h2 = await call('h2', '/odd/twice', { headers: { 'x-misuse': 'tag', ...mode.headers } });
      assert.equal(h2.status, 200, what(h2, `twice ${mode.name}`));
      assert.equal(h2.body, 'twice');
      assert.equal(h2.headers.etag, '"a", "b"');
      assert.equal(typeof h2.headers.date, 'string');
      expectLogged(h2, `twice ${mode.name}`, { status: 200 });
      const h1 = await call('h1', '/odd/twice', { headers: { 'x-misuse': 'tag', ...mode.headers } });
      assert.equal(h1.status, 200, what(h1, `twice ${mode.name}`));
      assert.equal(h1.body, 'twice');
    }
    await finish();
  });

  test('an upstream sending two different Locations: an h2 client still gets an answer (502), HTTP/1.1 the response', async () => {
    for (const mode of MODES) {
      const h2 = await call('h2', '/odd/locations', { headers: { 'x-misuse': 'tag', ...mode.headers } });
      assert.equal(h2.status, 502, what(h2, `locations ${mode.name}`));
      expectLogged(h2, `locations ${mode.name}`, { status: 502 });
      const h1 = await call('h1', '/odd/locations', { headers: { 'x-misuse': 'tag', ...mode.headers } });
      assert.equal(h1.status, 200, what(h1, `locations ${mode.name}`));
      assert.equal(h1.body, 'locations');
    }
    await finish();
  });
});

// reply.ts's own guard, under the checks above: phases of the engine write what the plugin contract refuses straight
// into the header record, and a response filter that fails on every call.
describe('response safety: reply.ts never lets a refused head or a failing filter escape', () => {
  const pki = pkiDir();
  let server: PipelineServer;
  let clients: Clients;
  /** status and error code of each request, by request id, from the logging phase. */
  const outcomes = new Map<string, { status: number; error: string | undefined }>();

  const raw: Phase = {
    name: 'raw',
    onRequest(ctx) {
      const answer = ctx.req.headers['x-answer'];
      if (answer === 'ok') return sendJson(ctx, 200, { ok: true });
      if (answer === 'error') return sendError(ctx, new GatewayError('UPSTREAM_UNREACHABLE'));
      return 'continue';
    },
    onResponse(ctx, headers) {
      switch (ctx.req.headers['x-raw']) {
        case 'ctl': // refused over HTTP/1.1
          headers['x-raw'] = 'a\u0001b';
          break;
        case 'h2settings': // refused over HTTP/2
          headers['http2-settings'] = 'v';
          break;
        case 'etags': // refused over HTTP/2
          (headers as Record<string, string[]>).etag = ['"a"', '"b"'];
          break;
        case 'fail': // on every call, the error reply's included
          throw new GatewayError('PLUGIN_FAILED');
        default:
      }
    },
    onLogging(ctx) {
      outcomes.set(ctx.id, { status: ctx.status, error: ctx.error?.code });
    },
  };

  before(async () => {
    const ca = createTestCa('Reply Guard CA', pki.path);
    const cert = ca.issue('a.test', { san: ['DNS:a.test', 'IP:127.0.0.1'] });
    server = await startPipelineServer({
      routes: { raw: { name: 'raw', phases: [raw], upstream: 'echo' } },
      match: (_ctx, routes) => routes.raw!,
      tls: { key: cert.key, cert: cert.cert },
    });
    clients = new Clients(() => Number(new URL(server.url).port), ca.ca);
  });

  after(async () => {
    clients?.close();
    await server?.close();
    pki.remove();
  });

  async function outcome(reply: Reply): Promise<{ status: number; error: string | undefined }> {
    const id = String(reply.headers['x-request-id']);
    await waitFor(() => outcomes.has(id), `the logging phase of ${id}`);
    return outcomes.get(id)!;
  }

  const refused = [
    { transport: 'h1', raw: 'ctl' },
    { transport: 'h2', raw: 'h2settings' },
    { transport: 'h2', raw: 'etags' },
  ] as const;

  test('a header node refuses on a gateway-made reply: 500 internal with headers of its own, not a throw', async () => {
    for (const c of refused) {
      for (const answer of ['ok', 'error']) {
        const reply = await clients.call(c.transport, '/x', { headers: { 'x-raw': c.raw, 'x-answer': answer } });
        assert.equal(reply.status, 500, what(reply, `${c.raw} ${answer}`));
        assert.equal((JSON.parse(reply.body) as { code: string }).code, 'internal');
        assert.equal(reply.headers['x-raw'] ?? reply.headers['http2-settings'] ?? reply.headers.etag, undefined);
        assert.deepEqual(await outcome(reply), { status: 500, error: 'INTERNAL' });
      }
    }
    assert.equal((await clients.call('h2', '/x', { headers: { 'x-answer': 'ok' } })).status, 200);
  });

  test('the same on a gRPC error reply: a trailers-only grpc-status UNKNOWN', async () => {
    for (const c of refused) {
      const reply = await clients.call(c.transport, '/x', { method: 'POST', headers: { ...GRPC, 'x-raw': c.raw, 'x-answer': 'error' } });
      assertGrpcError(reply, '2', `${c.raw} gRPC`);
      assert.deepEqual(await outcome(reply), { status: 500, error: 'INTERNAL' });
    }
  });

  test('a response filter that fails on every call: its error goes out once, without it, instead of looping', async () => {
    for (const transport of TRANSPORTS) {
      const reply = await clients.call(transport, '/x', { headers: { 'x-raw': 'fail', 'x-answer': 'ok' } });
      assertPluginFailedJson(reply, 'fail');
      assert.deepEqual(await outcome(reply), { status: 500, error: 'PLUGIN_FAILED' });
      const grpc = await clients.call(transport, '/x', { method: 'POST', headers: { ...GRPC, 'x-raw': 'fail', 'x-answer': 'error' } });
      assertGrpcError(grpc, '2', 'fail gRPC');
      assert.deepEqual(await outcome(grpc), { status: 500, error: 'PLUGIN_FAILED' });
    }
  });
});
