// Composition root: config → stores → phases → pipeline → listeners, and the graceful stop. The only file that
// knows every concrete adapter.
import { listen } from './listen.js';
import { randomUUID } from 'node:crypto';
import { createServer } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import type { Logger } from 'pino';
import type { Config } from './config/schema.js';
import { Balancer } from './balancer/balancer.js';
import { HealthChecker } from './balancer/health.js';
import { TrustedProxies } from './pipeline/client-address.js';
import { Pipeline, type PipelineSetup } from './pipeline/run.js';
import type { Phase } from './pipeline/phase.js';
import { healthRoute } from './health-route.js';
import { EVENTS } from './observability/events.js';
import { AccessLog, type LineSink } from './observability/access-log.js';
import { ConfigError, loadConfigFile } from './config/load.js';
import { describeCause } from './errors.js';
import type { ReloadResult } from './admin/server.js';
import { openFeatures, type Features } from './features.js';

export interface GatewayOptions {
  readonly logger: Logger;
  /** The raw JSON sink behind `logger`, for the per-request access events; without it they go through pino. */
  readonly logSink?: LineSink;
  /** Directory for embedded state (SQLite file, generated JWT secret). */
  readonly dataDir: string;
  /** Start the admin listener (only one worker of a multi-worker gateway does). Default true. */
  readonly adminEnabled?: boolean;
  /** Called after POST /reload succeeded here (a worker tells its siblings through the primary). */
  readonly onAdminReload?: () => void;
  /** The config file, re-read by POST /reload on the admin port; without it /reload answers 501. */
  readonly configPath?: string;
}

/** A running gateway. */
export interface Gateway {
  /** The port the proxy listens on (useful when the config asked for port 0). */
  readonly port: number;
  /** The admin port, or undefined when the admin listener is disabled. */
  readonly adminPort: number | undefined;
  /** Applies a new config without dropping connections; throws ConfigError when it cannot be applied. */
  reload(config: Config): Promise<void>;
  /** Stops accepting, drains in-flight requests (bounded), closes pools and stores. */
  close(): Promise<void>;
}

/**
 * Parts of the config that a reload cannot change; a difference is refused rather than silently ignored. Pool
 * settings are fixed because a kept upstream keeps its pool (and its keep-alive connections) across a reload.
 */
function fixedSettings(config: Config): string {
  const { listen_host, listen_port, workers, timeouts } = config.server;
  const lb = config.load_balancing;
  return JSON.stringify([
    listen_host,
    listen_port,
    workers,
    [timeouts.upstream_connect, timeouts.upstream_response, timeouts.upstream_body, lb.connections_per_upstream],
    config.database,
    config.redis,
    config.jwt,
    config.admin,
    config.logging,
    config.middleware.auth,
  ]);
}

/** Builds the pipeline's phase lists from the features that are switched on. */
function buildSetup(config: Config, features: Features, balancer: Balancer, trusted: TrustedProxies): PipelineSetup {
  const proxy: Phase[] = [...features.proxyPhases];
  const auth: Phase[] = features.authRoutes ? [...features.authPhases, features.authRoutes] : [...features.proxyPhases];
  const phases = new Set<Phase>([healthRoute, ...proxy, ...auth, ...features.observers]);
  return {
    routes: { health: [healthRoute], auth, proxy },
    phases: [...phases],
    selector: balancer,
    trusted,
    proxyBy: config.server.proxy_by,
    retries: config.load_balancing.retries,
  };
}

/** Starts a gateway for `config`. Resolves once both listeners accept connections. */
export async function startGateway(initial: Config, options: GatewayOptions): Promise<Gateway> {
  const { logger } = options;
  let config = initial;
  let trusted = trustedProxiesOf(config);
  const balancer = new Balancer(config, logger);
  const health = new HealthChecker(config.load_balancing.health_check, () => balancer.backends, logger);
  const features = await openFeatures(config, {
    logger,
    dataDir: options.dataDir,
    balancer,
    adminEnabled: options.adminEnabled ?? true,
    isDraining: () => pipeline.draining,
    reload:
      options.configPath === undefined
        ? undefined
        : async () => {
            const result = await reloadFromFile(gateway, options.configPath!, logger);
            if (result.ok) options.onAdminReload?.();
            return result;
          },
  });
  const pipeline = new Pipeline(buildSetup(config, features, balancer, trusted), logger, new AccessLog(logger, options.logSink, config.logging.access_log));

  const server = createServer({
    headersTimeout: config.server.timeouts.header,
    requestTimeout: config.server.timeouts.request,
    keepAliveTimeout: config.server.timeouts.idle,
  });
  server.maxConnections = config.server.max_connections;
  server.on('request', pipeline.handleRequest);
  server.on('upgrade', pipeline.handleUpgrade);
  server.on('clientError', clientErrorHandler(config.server.proxy_by));
  features.watch(server, () => pipeline.inFlight);
  const sockets = new Set<Socket>();
  server.on('connection', (socket: Socket) => {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
  });

  await listen(server, config.server.listen_port, config.server.listen_host);
  health.start();
  const admin = await features.startAdmin();
  const port = (server.address() as AddressInfo).port;
  logger.info(
    {
      port,
      admin_port: admin,
      strategy: config.load_balancing.strategy,
      upstreams: balancer.backends.map((b) => b.label),
      auth: config.middleware.auth.enabled,
      rate_limit: config.middleware.rate_limit.enabled,
    },
    EVENTS.gatewayStarted,
  );

  let closing: Promise<void> | undefined;
  const gateway: Gateway = {
    port,
    adminPort: admin,
    async reload(next: Config): Promise<void> {
      if (fixedSettings(next) !== fixedSettings(config)) {
        throw new ConfigError(
          'listen address, workers, upstream pool and timeout, database, redis, jwt, admin, logging and auth settings need a restart',
        );
      }
      // Everything that can fail is built before anything is swapped, so a refused reload changes nothing.
      const nextTrusted = trustedProxiesOf(next);
      features.reconfigure(next);
      const removed = balancer.apply(next);
      health.update(next.load_balancing.health_check);
      server.maxConnections = next.server.max_connections;
      server.headersTimeout = next.server.timeouts.header;
      server.requestTimeout = next.server.timeouts.request;
      server.keepAliveTimeout = next.server.timeouts.idle;
      config = next;
      trusted = nextTrusted;
      pipeline.replace(buildSetup(config, features, balancer, trusted));
      // Backends that left the config finish their running requests, then their pools close.
      for (const backend of removed) void backend.dispatcher.close().catch(() => undefined);
      logger.info(
        { strategy: config.load_balancing.strategy, upstreams: balancer.backends.map((b) => `${b.label}*${b.weight}`) },
        EVENTS.configReloaded,
      );
    },
    close(): Promise<void> {
      closing ??= (async () => {
        logger.info({ in_flight: sockets.size }, EVENTS.gatewayStopping);
        pipeline.draining = true;
        health.stop();
        const closed = new Promise<void>((resolve) => server.close(() => resolve()));
        server.closeIdleConnections();
        const drained = await Promise.race([
          closed.then(() => true),
          delay(config.server.timeouts.shutdown_drain).then(() => false),
        ]);
        if (!drained) server.closeAllConnections();
        for (const socket of sockets) socket.destroy();
        await Promise.allSettled([
          ...balancer.backends.map((b) => b.dispatcher.close()),
          health.close(),
          features.close(),
        ]);
        logger.info({ drained }, EVENTS.gatewayStopped);
      })();
      return closing;
    },
  };
  return gateway;
}

/**
 * Re-reads the config file and applies it (SIGHUP and POST /reload). A config that cannot be used is logged as
 * "Config Rejected" and resolves {ok:false, reason}; the running config stays. Any other failure is logged the
 * same way and rethrown.
 */
export async function reloadFromFile(gateway: Gateway, configPath: string, logger: Logger): Promise<ReloadResult> {
  try {
    await gateway.reload(loadConfigFile(configPath));
    return { ok: true };
  } catch (err) {
    if (err instanceof ConfigError) {
      logger.error({ reason: err.message }, EVENTS.configRejected);
      return { ok: false, reason: err.message };
    }
    logger.error({ reason: 'reload failed', cause: describeCause(err) }, EVENTS.configRejected);
    throw err;
  }
}

function trustedProxiesOf(config: Config): TrustedProxies {
  try {
    return new TrustedProxies(config.server.trusted_proxies);
  } catch (err) {
    throw new ConfigError(`server.trusted_proxies: ${(err as Error).message}`);
  }
}

/**
 * Malformed HTTP from a client (node's parser refused it before any request existed): answer 400, 408 on a header
 * timeout or 431 for oversized headers, with the gateway headers like every other answer, and close.
 */
function clientErrorHandler(proxyBy: string): (err: NodeJS.ErrnoException, socket: Socket) => void {
  return (err, socket) => {
    if (!socket.writable) {
      socket.destroy();
      return;
    }
    const status =
      err.code === 'ERR_HTTP_REQUEST_TIMEOUT'
        ? '408 Request Timeout'
        : err.code === 'HPE_HEADER_OVERFLOW'
          ? '431 Request Header Fields Too Large'
          : '400 Bad Request';
    const id = randomUUID();
    const body = JSON.stringify({ error: status.slice(4), request_id: id });
    socket.end(
      `HTTP/1.1 ${status}\r\ncontent-type: application/json\r\ncontent-length: ${body.length}\r\n` +
        `x-proxy-by: ${proxyBy}\r\nx-request-id: ${id}\r\nx-response-time: 0ms\r\nconnection: close\r\n\r\n${body}`,
    );
  };
}

function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms).unref());
}
