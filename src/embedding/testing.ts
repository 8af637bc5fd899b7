// The test kit: createTestGateway(config) and inject(), for plugin authors and embedders testing without ports to manage.
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startEchoUpstream, type EchoUpstream } from './echo-upstream.js';
import { startEmbedded, type EmbeddedWithInject, type GatewayConfig } from './start.js';

/**
 * A request to inject. `url` is the request target exactly as a client puts it on the request line: a path with an
 * optional query ("/users/1?x=y"). It is never normalised: the gateway's checks see it as written and answer as they
 * do on the port ("/a/../b", "/a/%2E%2E/b", "http://host/a", "a", "/a#f", "/a\\b": 400).
 */
export interface InjectRequest {
  readonly method?: string;
  readonly url: string;
  /**
   * Header lines as sent: an array sends the header once per value, undefined leaves it out. Without a Host, the
   * request carries `Host: localhost:80`; `host: undefined` sends none (400, as HTTP/1.1 asks).
   */
  readonly headers?: Readonly<Record<string, string | readonly string[] | undefined>>;
  /** A string or bytes as they are; any other value is sent as JSON (with content-type application/json). */
  readonly body?: string | Uint8Array | Record<string, unknown> | readonly unknown[];
}

/** The gateway's answer. */
export interface InjectResponse {
  readonly status: number;
  /** Lower-case names. */
  readonly headers: Readonly<Record<string, string | string[] | undefined>>;
  /** The body as text. */
  readonly body: string;
  /** The body parsed as JSON (throws when it is not JSON). */
  json<T = any>(): T;
}

/** A gateway for tests, with its upstream (an echo server unless the config names upstreams) and captured logs. */
export interface TestGateway {
  inject(request: InjectRequest): Promise<InjectResponse>;
  /** Every log line the gateway wrote, parsed (nothing is printed). */
  readonly logs: ReadonlyArray<Record<string, unknown>>;
  /** The proxy's URL, for a client of your own. */
  readonly url: string;
  reload(config: TestGatewayConfig): Promise<void>;
  close(): Promise<void>;
}

/** Options of the test kit; every field has a default. */
export interface TestGatewayOptions {
  /** Where relative plugin module paths start. Default: the working directory. */
  readonly baseDir?: string;
}

type ConfigObject = Record<string, any>;

/** A gateway config whose `load_balancing` may be left out (the kit's echo upstream then answers). */
export type TestGatewayConfig = Omit<GatewayConfig, 'load_balancing'> & { load_balancing?: GatewayConfig['load_balancing'] };

/**
 * Starts a gateway for a test: inject() drives its pipeline in-process (fastify's inject; no client socket, and
 * `url` stays available for a real client; the request head is parsed by node's HTTP/1 parser as on the port, so the
 * target and Host checks answer as the gateway does), listeners on 127.0.0.1 (port 0), admin off, active health checks off, a temporary
 * data directory, logs captured in `logs`. Without `load_balancing`, an echo upstream is started: each response's
 * JSON is the request as the upstream got it (method, url, headers, body), so a test sees what the plugins changed.
 */
export async function createTestGateway(config: TestGatewayConfig = {}, options: TestGatewayOptions = {}): Promise<TestGateway> {
  const logs: Array<Record<string, unknown>> = [];
  const sink = new Writable({
    decodeStrings: true,
    write(chunk: Buffer, _encoding, done) {
      for (const line of chunk.toString('utf8').split('\n')) if (line) logs.push(JSON.parse(line) as Record<string, unknown>);
      done();
    },
  });
  let echo: EchoUpstream | undefined;
  const dataDir = mkdtempSync(join(tmpdir(), 'portcullis-test-gateway-'));
  const withDefaults = (input: ConfigObject): ConfigObject => {
    // Without upstreams of its own, the echo upstream (when the kit started one; else the schema says what is missing).
    const lb = input.load_balancing ?? (echo ? { upstreams: [{ name: 'echo', address: '127.0.0.1', port: echo.port }] } : undefined);
    return {
      ...input,
      server: { listen_host: '127.0.0.1', ...input.server, listen_port: 0 },
      admin: { enabled: false, ...input.admin, listen_port: 0 },
      logging: { level: 'info', ...input.logging, format: 'json' },
      ...(lb === undefined ? {} : { load_balancing: { ...lb, health_check: { enabled: false, ...lb.health_check } } }),
    };
  };
  let gateway: EmbeddedWithInject;
  try {
    if ((config as ConfigObject).load_balancing === undefined) echo = await startEchoUpstream();
    const level = ((config as ConfigObject).logging?.level as string | undefined) ?? 'info';
    const logger = pino({ level, base: { service: 'portcullis' } }, sink);
    gateway = await startEmbedded(withDefaults(config as ConfigObject) as GatewayConfig, { logger, logSink: sink, dataDir, baseDir: options.baseDir });
  } catch (err) {
    await echo?.close();
    rmSync(dataDir, { recursive: true, force: true });
    throw err;
  }
  let closing: Promise<void> | undefined;
  return {
    logs,
    url: gateway.url,
    /** Runs the request through the gateway's pipeline in-process (no client socket); the upstream is real. */
    async inject(req: InjectRequest): Promise<InjectResponse> {
      const body = req.body instanceof Uint8Array && !Buffer.isBuffer(req.body) ? Buffer.from(req.body) : req.body;
      const res = await gateway.inject({ method: (req.method ?? 'GET').toUpperCase(), url: req.url, headers: req.headers, body: body as never });
      const headers: Record<string, string | string[] | undefined> = {};
      for (const [name, value] of Object.entries(res.headers)) headers[name] = typeof value === 'number' ? String(value) : value;
      return { status: res.status, headers, body: res.body, json: () => JSON.parse(res.body) };
    },
    reload: (next) => gateway.reload(withDefaults(next as ConfigObject) as GatewayConfig),
    close() {
      closing ??= (async () => {
        await gateway.close();
        await echo?.close();
        rmSync(dataDir, { recursive: true, force: true });
      })();
      return closing;
    },
  };
}
