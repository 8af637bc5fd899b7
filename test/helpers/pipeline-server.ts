// The real driver (Pipeline) with a route table made by the test, on a real HTTP server, in front of a real echo
// backend. For unit-level tests of phases (auth, rate limit) that want the engine's order without the whole gateway.
import { createServer } from 'node:http';
import { createSecureServer } from 'node:http2';
import type { AddressInfo, Socket } from 'node:net';
import { pino, type Logger } from 'pino';
import { TrustedProxies } from '../../src/pipeline/client-address.js';
import { Pipeline } from '../../src/pipeline/run.js';
import { compileRoute, type Route, type RouteSpec, type RouteTable } from '../../src/pipeline/route.js';
import type { RequestContext } from '../../src/pipeline/context.js';
import { AccessLog } from '../../src/observability/access-log.js';
import { Service } from '../../src/balancer/service.js';
import { startBackend, type TestBackend } from './backends.js';

export interface PipelineServer {
  readonly url: string;
  /** The echo backend behind every proxied route (`/anything` answers {backend, method, url, headers}). */
  readonly backend: TestBackend;
  close(): Promise<void>;
}

export interface PipelineServerOptions {
  /** Picks the route of a request among the routes built by `routes`. */
  readonly match: (ctx: RequestContext, routes: Readonly<Record<string, Route>>) => Route;
  /** Route specs by name; `upstream: 'echo'` sends the route's requests to the echo backend. */
  readonly routes: Readonly<Record<string, Omit<RouteSpec, 'upstream'> & { readonly upstream?: 'echo' }>>;
  readonly trustedProxies?: readonly string[];
  readonly logger?: Logger;
  /** HTTPS with HTTP/2 and HTTP/1.1 by ALPN, as the proxy listener serves with TLS; default cleartext HTTP/1.1. */
  readonly tls?: { readonly key: Buffer; readonly cert: Buffer };
}

export async function startPipelineServer(options: PipelineServerOptions): Promise<PipelineServer> {
  const logger = options.logger ?? pino({ level: 'silent' });
  const backend = await startBackend('echo');
  const echo = new Service(
    {
      name: 'echo',
      strategy: 'round_robin',
      upstreams: [{ name: 'echo', address: '127.0.0.1', port: backend.port, weight: 1 }],
      retries: 0,
      connectionsPerUpstream: 8,
      queueLimit: 64,
      queueTimeoutMs: 5_000,
      healthCheck: { enabled: false, path: '/', host: '', interval: 5000, timeout: 2000, healthy_threshold: 2, unhealthy_threshold: 2, passive_cooldown: 1000 },
      connectTimeoutMs: 2000,
      responseTimeoutMs: 5000,
      bodyTimeoutMs: 5000,
      tls: { enabled: false, ca_file: '', servername: '', verify: true, cert_file: '', key_file: '' },
      http2: false,
      keyPath: 'services.echo',
    },
    logger,
  );
  const routes: Record<string, Route> = {};
  for (const [name, spec] of Object.entries(options.routes)) {
    routes[name] = compileRoute({ ...spec, name: spec.name, ...(spec.upstream === 'echo' ? { upstream: echo } : { upstream: undefined }) } as RouteSpec);
  }
  const fallback = compileRoute({ name: 'none', phases: [] });
  const table: RouteTable = { match: (ctx) => options.match(ctx, routes), fallback };
  const pipeline = new Pipeline(
    { table, trusted: new TrustedProxies(options.trustedProxies ?? []), proxyBy: 'Portcullis' },
    logger,
    new AccessLog(logger, undefined, false),
  );
  // Over HTTP/2 the 'request' event passes node's compat objects in place of IncomingMessage and ServerResponse,
  // which the pipeline handles as the proxy listener's do.
  const server = options.tls === undefined ? createServer(pipeline.handleRequest) : createSecureServer({ ...options.tls, allowHTTP1: true });
  if (options.tls !== undefined) server.on('request', pipeline.handleRequest as (...args: unknown[]) => void);
  // Every connection, to cut at close (an HTTP/2 server has no closeAllConnections).
  const sockets = new Set<Socket>();
  server.on('connection', (socket: Socket) => {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `${options.tls === undefined ? 'http' : 'https'}://127.0.0.1:${port}`,
    backend,
    async close() {
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await echo.close();
      await backend.stop();
    },
  };
}
