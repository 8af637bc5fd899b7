// Composition root: config → stores → phases → pipeline → listeners, and the graceful stop. The only file that
// knows every concrete adapter.
import type { Socket } from 'node:net';
import type { Logger } from 'pino';
import type { Config } from './config/schema.js';
import { ServiceRegistry } from './balancer/registry.js';
import { resolveServices } from './config/services.js';
import { TrustedProxies } from './pipeline/client-address.js';
import { Pipeline, type PipelineSetup } from './pipeline/run.js';
import { buildRouteTable, userRoutesOf } from './compose/route-table.js';
import { injectRequest, type InjectOptions, type InjectResponse } from './pipeline/inject.js';
import { EVENTS } from './observability/events.js';
import { AccessLog, type LineSink } from './observability/access-log.js';
import { ConfigError, loadConfigFile } from './config/load.js';
import { dotEnvCheckpoint } from './config/env.js';
import { warnIfNotALevel } from './config/log-level.js';
import { describeCause } from './errors.js';
import type { ReloadResult } from './admin/server.js';
import { openFeatures } from './features.js';
import { createTracing } from './observability/tracing/index.js';
import { createProxyListener } from './listeners/proxy-listener.js';
import { attachProxyHandlers, overCapRefusals, refusalLogger, setRefusalLog } from './listeners/proxy-events.js';
import { tlsFixedSettings, warnUnverifiedUpstreams } from './tls/setup.js';
import { misdirected } from './tls/misdirected.js';
import type { CertificateStore } from './tls/store.js';
import type { IncomingMessage } from 'node:http';
import { warnDescriptorLimit } from './descriptor-limit.js';
import { ownedHeadersOf } from './config/route-checks.js';
import { ClientConnectionLimit, type ConnectionLimitSettings } from './connection-limit.js';
import { ADMIN_ANSWER_HEADERS } from './admin/answer-headers.js';
import { ADMIN_LISTEN_KEYS, listenFailure } from './listen.js';
import { dirname } from 'node:path';
import { PluginHost, ReloadAbandoned, type PluginGeneration } from './plugins/host.js';
import { CoalescingQueue, type Turn } from './reload-queue.js';
import { routeHeaderHooks } from './plugins/first-party/route-headers.js';
import type { PluginRouteSpec } from './compose/route-table.js';
import type { Route } from './pipeline/route.js';
import { SplitRotations } from './balancer/split.js';

export interface GatewayOptions {
  readonly logger: Logger;
  /** Where the per-request access events are written as JSON lines (stdout's writer or the access-log file); without it they go through pino. */
  readonly logSink?: LineSink;
  /** Directory for embedded state (SQLite file, generated JWT secret). */
  readonly dataDir: string;
  /** Start the admin listener (only one worker of a multi-worker gateway does). Default true. */
  readonly adminEnabled?: boolean;
  /**
   * What POST /reload on the admin port runs instead of re-reading configPath: a cluster worker asks its primary,
   * which owns the config of every worker (run-gateway.ts).
   */
  readonly adminReload?: () => Promise<ReloadResult>;
  /** The config file, re-read by POST /reload on the admin port; without it (nor adminReload) /reload answers 501. */
  readonly configPath?: string;
  /** Where relative plugin module paths start; default: the config file's directory, else the working directory. */
  readonly pluginBaseDir?: string;
  /**
   * Called once the proxy port accepts connections, before start-up is over (the redirect and admin listeners open
   * after it): from then on a stop must drain what the gateway serves (run-gateway.ts keeps a stop signal until it
   * can).
   */
  readonly onProxyListening?: () => void;
  /**
   * Called when start-up fails once something has been opened, before it is closed (that can take a plugin's
   * close() budget): the gateway will not serve, so a stop from then on has nothing to wait for. `err` is what it
   * failed on, the error startGateway then throws.
   */
  readonly onStartFailing?: (err: unknown) => void;
}

/** A running gateway. */
export interface Gateway {
  /** The port the proxy listens on (useful when the config asked for port 0). */
  readonly port: number;
  /** The admin port, or undefined when the admin listener is disabled. */
  readonly adminPort: number | undefined;
  /** The fingerprint of the JWT keys loaded at start (auth/keys.ts keysFingerprint); undefined with auth off. */
  readonly keysFingerprint: string | undefined;
  /**
   * Applies a new config without dropping connections; throws ConfigError when it cannot be applied. Reloads run
   * one at a time, in the order asked for, so the last one asked for is the one left running.
   */
  reload(config: Config): Promise<void>;
  /**
   * The first half of reload(): everything that can fail is done (ConfigError, ReloadAbandoned), nothing is swapped.
   * Until the returned reload is committed or discarded, no other reload of this gateway starts: a cluster's
   * primary commits a config only once every worker has prepared it, so that none serves a config it then refuses.
   */
  prepareReload(config: Config): Promise<PreparedReload>;
  /**
   * Re-reads the config file and applies it (SIGHUP, POST /reload): see reloadFromFile. Asked for while a reload
   * runs, it runs after that one, reading the file then; undefined without a config file.
   */
  readonly reloadFile: (() => Promise<ReloadResult>) | undefined;
  /**
   * Runs one request through the pipeline in-process, without a client socket (fastify's inject): the same
   * routes, phases and upstreams as a request on the port.
   */
  inject(options: InjectOptions): Promise<InjectResponse>;
  /** Stops accepting, drains in-flight requests (bounded), closes pools and stores. */
  close(): Promise<void>;
}

/** A reload prepared (Gateway.prepareReload) and not yet swapped in. Call one of the two, once. */
export interface PreparedReload {
  /** Swaps it in; throws ReloadAbandoned (nothing swapped, what it created closed) once the gateway is stopping. */
  commit(): void;
  /**
   * Drops it: the next reload may start at once; the returned promise settles once the plugin instances it created
   * are closed. The running config is untouched.
   */
  discard(): Promise<void>;
}

/**
 * Parts of the config that a reload cannot change, each with the reason shown when a reload tries to. Routes,
 * services (pools included), limits, CORS, client timeouts and the log level are applied; these are not.
 */
const RESTART_ONLY: readonly [string, (c: Config) => unknown][] = [
  ['server.listen_host and server.listen_port (the listener is bound)', (c) => [c.server.listen_host, c.server.listen_port]],
  ['server.workers (the processes are forked)', (c) => c.server.workers],
  ['database (the user store is open)', (c) => c.database],
  ['redis (the store is connected)', (c) => c.redis],
  ['jwt (keys and algorithm are loaded)', (c) => c.jwt],
  ['middleware.auth.enabled (it opens the user store)', (c) => c.middleware.auth.enabled],
  ['middleware.auth (token and password settings)', (c) => ({ ...c.middleware.auth, public_paths: undefined })],
  ['admin (the admin listener is bound)', (c) => c.admin],
  ['logging.format', (c) => c.logging.format],
  ['logging.access_log_file (the file is open)', (c) => c.logging.access_log_file],
  ['tracing (the exporter is set up at start)', (c) => c.tracing],
  ['server.tls on/off, server.tls.http2 and server.http_redirect (they choose the listeners)', tlsFixedSettings],
];

/** The first restart-only setting that differs between two configs, or undefined. */
function restartNeededFor(current: Config, next: Config): string | undefined {
  return RESTART_ONLY.find(([, read]) => JSON.stringify(read(current)) !== JSON.stringify(read(next)))?.[0];
}

/** Why `next` cannot replace `current` by a reload (a restart-only setting changed), or undefined if it can. */
export function restartRefusal(current: Config, next: Config): ConfigError | undefined {
  const restart = restartNeededFor(current, next);
  return restart === undefined ? undefined : new ConfigError(`${restart}: cannot change on reload, these settings need a restart`);
}

/** The pipeline's setup: a route table (built from the features, services and plugins), plus engine settings. */
function buildSetup(config: Config, table: PipelineSetup['table'], trusted: TrustedProxies, certificates: CertificateStore | undefined): PipelineSetup {
  return {
    table,
    trusted,
    proxyBy: config.server.proxy_by,
    ownedHeaders: ownedHeadersOf(config),
    requestBodyChunkMs: config.server.timeouts.request_body_chunk,
    // The store's list as a reload leaves it (the store swaps it in place).
    ...(certificates === undefined ? {} : { misdirected: (req: IncomingMessage) => misdirected(certificates.certificates, req) }),
  };
}

/** Starts a gateway for `config`. Resolves once both listeners accept connections. */
export async function startGateway(initial: Config, options: GatewayOptions): Promise<Gateway> {
  const { logger } = options;
  let config = initial;
  let trusted = trustedProxiesOf(config);
  // Certificates first: a bad certificate is a config error before anything else is opened.
  const listener = createProxyListener(config, logger);
  const services = new ServiceRegistry(resolveServices(config), logger);
  const tracing = await createTracing(config.tracing, logger);
  warnUnverifiedUpstreams(config, logger);
  const features = await openFeatures(config, {
    logger,
    tracing,
    dataDir: options.dataDir,
    services: () => services,
    routes: () => userRoutes.map((r) => ({ name: r.name, ...r.info })),
    certificates: () => listener.certificates?.describe() ?? [],
    adminEnabled: options.adminEnabled ?? true,
    isDraining: () => pipeline.draining,
    reload: options.adminReload ?? (options.configPath === undefined ? undefined : () => gateway.reloadFile!()),
  });
  const plugins = new PluginHost({
    logger,
    kv: () => features.kv,
    registry: features.registry,
    baseDir: options.pluginBaseDir ?? (options.configPath === undefined ? process.cwd() : dirname(options.configPath)),
  });
  /** A route's plugin phase from a plugin generation: its header rewrites (first-party), then its instances. */
  const pluginPhase = (generation: PluginGeneration) => (route: PluginRouteSpec) => {
    const rewrites = routeHeaderHooks(route.requestHeaders, route.responseHeaders);
    return plugins.chain(route.names, { service: route.service }, rewrites ? [{ name: 'route-headers', hooks: rewrites }] : [], generation);
  };
  /** The user routes of the table running (admin status, dashboard). */
  let userRoutes: readonly Route[] = [];
  /** Each split route's rotation, carried from table to table (a reload) while its arms stay as they were. */
  const splitRotations = new SplitRotations();
  /**
   * The route table of `next` on `generation`'s plugin instances: counting the requests that run them, so that the
   * instances a later reload retires are closed once those requests have ended (plugins/drain.ts).
   */
  const routeTable = (next: Config, generation: PluginGeneration) => {
    const table = buildRouteTable({ config: next, features, services, logger, plugins: pluginPhase(generation), splitRotations });
    return { table: plugins.track(generation, table, userRoutesOf(table)), routes: userRoutesOf(table) };
  };
  let generation: PluginGeneration;
  try {
    generation = await plugins.prepare(config);
  } catch (err) {
    await Promise.allSettled([services.close(), features.close(), tracing.shutdown()]);
    throw err;
  }
  plugins.commit(generation);
  const access = new AccessLog(logger, options.logSink, config.logging.access_log, config.logging.access_log_format);
  const initialTable = routeTable(config, generation);
  userRoutes = initialTable.routes;
  const pipeline = new Pipeline(buildSetup(config, initialTable.table, trusted, listener.certificates), logger, access, tracing);

  const server = listener.server;
  const perClient = new ClientConnectionLimit(connectionLimitOf(config, trusted));
  attachProxyHandlers(server, { perClient, pipeline, proxyBy: () => config.server.proxy_by, secure: listener.certificates !== undefined });
  const redirect = listener.redirect;
  if (redirect !== undefined) {
    // The redirect port's refusals with no request behind them are logged as the proxy port's are, named as its own.
    const logRefusal = refusalLogger(logger, { listener: 'redirect' });
    setRefusalLog(redirect, logRefusal);
    // It is cleartext: a connection over the client's cap there gets the same 429, then the close.
    redirect.on('connection', perClient.listener(false, overCapRefusals(logRefusal)));
  }
  features.watch(server, () => pipeline.inFlight);
  const sockets = new Set<Socket>();
  server.on('connection', (socket: Socket) => {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
  });

  // A listen that fails leaves nothing open behind it. The proxy port kept listening when the admin port's listen
  // failed (its port taken): a process embedding the gateway (src/index.ts) got the error and no gateway to close,
  // and could never exit; its stores, health checks and plugins stayed open too.
  let proxyListening = false;
  let port: number;
  let redirectPort: number | undefined;
  let admin: number | undefined;
  // The admin port's per-client cap: the same setting, its own count. Without one, a client could hold every one of
  // the admin port's server.max_connections and /ready probes were refused until its connections timed out; counted
  // apart from the proxy port's, so a client busy there (a node's address behind a NodePort) still gets its probes in.
  const adminPerClient = new ClientConnectionLimit(connectionLimitOf(config, trusted));
  try {
    ({ port, redirectPort } = await listener.listen(() => {
      // Before the redirect port's listen: its failure leaves the proxy port, and what it accepted, to be closed below.
      proxyListening = true;
      options.onProxyListening?.();
    }));
    services.start();
    // Its 429 carries the security headers of every admin answer, as the rest of the port's answers do.
    // A listen that fails is one line naming admin.listen_host or admin.listen_port (listen.ts), as the proxy port's is.
    admin = await features
      .startAdmin(adminPerClient.listener(false, overCapRefusals(refusalLogger(logger, { listener: 'admin' })), ADMIN_ANSWER_HEADERS))
      .catch((err: unknown) => {
        throw listenFailure(err, config.admin.listen_host, config.admin.listen_port, ADMIN_LISTEN_KEYS);
      });
  } catch (err) {
    options.onStartFailing?.(err);
    if (proxyListening) {
      listener.closeAll();
      // What closeAll() does not reach: an upgraded connection (a WebSocket tunnel, which has no idle bound by
      // default) or one still in its TLS handshake. Left open, it held the close below, and the failure, for ever.
      for (const socket of sockets) socket.destroy();
      await listener.close();
    }
    await Promise.allSettled([services.close(), plugins.close(), features.close(), tracing.shutdown()]);
    throw err;
  }
  logger.info(
    {
      port,
      tls: listener.certificates !== undefined,
      redirect_port: redirectPort,
      admin_port: admin,
      services: services.all.map((s) => s.name),
      routes: config.routes.length,
      upstreams: services.backends.map((b) => b.label),
      auth: config.middleware.auth.enabled,
      rate_limit: config.middleware.rate_limit.enabled,
      tracing: tracing.enabled,
    },
    EVENTS.gatewayStarted,
  );
  warnDescriptorLimit(config.server.max_connections, logger);

  let closing: Promise<void> | undefined;
  /**
   * Applies `next`: everything that can fail is built before anything is swapped, so a refused reload changes nothing.
   * A shutdown that starts while it prepares abandons it (ReloadAbandoned): nothing is swapped after the stop began.
   */
  const prepare = async (next: Config): Promise<PreparedReload> => {
    if (closing !== undefined) throw new ReloadAbandoned();
    const refusal = restartRefusal(config, next);
    if (refusal !== undefined) throw refusal;
    // jwt's keys are restart-only like its settings: files rewritten in place (a rotation) left the config's text as
    // it was, and a reload said "reloaded" while the old keys stayed in use; in a cluster, a worker restarted later
    // loaded the new ones beside siblings on the old, and refused every other token.
    const keysChanged = await features.keysChangedOnDisk();
    if (keysChanged !== undefined) throw keysChanged;
    const nextPlugins = await plugins.prepare(next);
    if (closing !== undefined) {
      await plugins.discard(nextPlugins);
      throw new ReloadAbandoned();
    }
    let nextTrusted: TrustedProxies;
    let applyListener: () => void;
    let applyServices: ReturnType<ServiceRegistry['prepare']>;
    try {
      nextTrusted = trustedProxiesOf(next);
      applyListener = listener.prepare(next);
      // Reads each service's upstream TLS files: a file that cannot be read refuses the reload here, before any swap.
      applyServices = services.prepare(resolveServices(next));
    } catch (err) {
      await plugins.discard(nextPlugins);
      throw err;
    }
    let settled = false;
    const settle = (): void => {
      if (settled) throw new Error('a prepared reload is committed or discarded once');
      settled = true;
    };
    return {
      commit: () => {
        settle();
        // The gateway began to stop while this waited to be committed: its plugin instances are closed by then.
        if (closing !== undefined) throw new ReloadAbandoned();
        swap(next, nextPlugins, nextTrusted, applyListener, applyServices);
      },
      discard: () => {
        settle();
        return plugins.discard(nextPlugins);
      },
    };
  };
  /** The second half of a reload: nothing in it fails on the config (prepare did all of that), and nothing awaits. */
  const swap = (
    next: Config,
    nextPlugins: PluginGeneration,
    nextTrusted: TrustedProxies,
    applyListener: () => void,
    applyServices: ReturnType<ServiceRegistry['prepare']>,
  ): void => {
    features.reconfigure(next);
    const closeLeftovers = applyServices();
    applyListener();
    perClient.update(connectionLimitOf(next, nextTrusted));
    adminPerClient.update(connectionLimitOf(next, nextTrusted));
    if (next.logging.level !== config.logging.level) logger.level = next.logging.level;
    access.configure(next.logging.access_log, next.logging.access_log_format);
    config = next;
    trusted = nextTrusted;
    // One assignment: requests in flight finish on the route (and services, and plugin instances) they started with.
    const nextTable = routeTable(config, nextPlugins);
    const requestsDone = pipeline.replace(buildSetup(config, nextTable.table, trusted, listener.certificates));
    userRoutes = nextTable.routes;
    // The instances the new config dropped or changed are closed once the requests running on them have ended.
    plugins.commit(nextPlugins);
    // Series of the routes, services and upstreams that left go from /metrics (those kept carry on).
    features.retainMetrics();
    // Backends and services that left the config: their checks stop, and their pools close once the requests that
    // started before the swap are over (one may still be sent there), within server.timeouts.shutdown_drain.
    closeLeftovers(requestsDone, config.server.timeouts.shutdown_drain);
    // As at start-up: the config now running has upstreams whose certificates are not verified.
    warnUnverifiedUpstreams(config, logger);
    warnDescriptorLimit(config.server.max_connections, logger);
    logger.info(
      { services: services.all.map((s) => s.name), routes: config.routes.length, upstreams: services.backends.map((b) => `${b.label}*${b.weight}`) },
      EVENTS.configReloaded,
    );
  };
  const apply = async (next: Config): Promise<void> => (await prepare(next)).commit();
  // A reload waits in plugins.prepare (imports, create()): two at once could commit out of order, the older last,
  // and the second's restart check would compare against a config about to be replaced.
  const oneAtATime = serialized();
  /** prepare() in a turn of oneAtATime that lasts until the reload is committed or discarded. */
  const prepareReload = (next: Config): Promise<PreparedReload> =>
    new Promise((resolve, reject) => {
      void oneAtATime(
        () =>
          new Promise<void>((endTurn) => {
            prepare(next).then(
              (prepared) =>
                resolve({
                  commit: () => {
                    try {
                      prepared.commit();
                    } finally {
                      endTurn();
                    }
                  },
                  // The turn ends at once: the next reload need not wait for the dropped instances' close()s
                  // (bounded by the dropped config's plugin_load_timeout, not the next one's deadline).
                  discard: () => {
                    const closed = prepared.discard();
                    endTurn();
                    return closed;
                  },
                }),
              (err: unknown) => {
                endTurn();
                reject(err);
              },
            );
          }),
      );
    });
  const { configPath } = options;
  // The file is read inside oneAtATime: after any reload(config) of an embedder asked for before.
  const fileReloads = configPath === undefined ? undefined : coalesced(() => oneAtATime(() => reloadFromFile(configPath, apply, logger)), logger);

  const gateway: Gateway = {
    port,
    adminPort: admin,
    keysFingerprint: features.keysFingerprint,
    reload: (next) => oneAtATime(() => apply(next)),
    prepareReload,
    reloadFile: fileReloads,
    inject: (opts) => injectRequest(pipeline.handleRequest, opts),
    close(): Promise<void> {
      closing ??= (async () => {
        logger.info({ in_flight: sockets.size }, EVENTS.gatewayStopping);
        // A reload preparing now is abandoned (it closes what it created); plugins.close() below waits for that.
        plugins.abandonReloads();
        pipeline.draining = true;
        const closed = listener.close();
        listener.closeIdle();
        const drained = await settlesWithin(closed, config.server.timeouts.shutdown_drain);
        // Past the drain bound, what is still open is cut, and logged so (run.ts #closed).
        if (!drained) pipeline.cutting = true;
        if (!drained) listener.closeAll();
        for (const socket of sockets) socket.destroy();
        // The tunnels just destroyed write their Tunnel Closed lines (closed_by "shutdown") only once their upstream
        // legs have closed too, turns of the event loop from now: without this wait the stop ended first and its log
        // was flushed without them. Bounded: a destroyed socket always closes, but a stop must never hang on it.
        await settlesWithin(pipeline.tunnelsClosed(), TUNNEL_CLOSE_WAIT_MS);
        // undici's graceful close waits for connections still being opened: a connect to an upstream that never
        // answers its SYN held the stop for upstream_connect (89 s with it off), past shutdown_drain, and a cluster's
        // primary killed its workers for it. Every request is over or cut by now: what is left after a short graceful
        // close is destroyed. Not at once after a cut: the cut requests are logged as their sockets close, a turn or
        // more from now, and a destroyed pool failed them first (logged PROXY_ERROR instead of SHUTTING_DOWN).
        if (!(await settlesWithin(services.close(), POOL_CLOSE_WAIT_MS))) await services.destroy();
        // Plugins before the stores: a plugin's close() may still write to api.store. Every instance is closed once:
        // the running ones, those a reload retired (still waiting for requests or not), an abandoned reload's.
        await plugins.close();
        await features.close().catch(() => undefined);
        await tracing.shutdown(); // last: spans of the drained requests go out (bounded by the export timeout)
        logger.info({ drained }, EVENTS.gatewayStopped);
      })();
      return closing;
    },
  };
  return gateway;
}

/** How long a stop waits for the tunnels it destroyed to report their close (they do within a few turns). */
const TUNNEL_CLOSE_WAIT_MS = 1_000;
/** How long a stop lets the upstream pools close gracefully before it destroys them. */
const POOL_CLOSE_WAIT_MS = 1_000;

/** Runs tasks one at a time, in the order given: each starts once the one before has settled. */
function serialized(): <T>(task: () => Promise<T>) => Promise<T> {
  let last: Promise<unknown> = Promise.resolve();
  return (task) => {
    const result = last.then(task);
    last = result.catch(() => undefined);
    return result;
  };
}

/** What happened to a file reload asked for while another ran (its log line, and POST /reload's answer). */
const WAITED: Record<Exclude<Turn, 'started'>, string> = {
  queued: 'queued behind the reload already running: it reads the file once that one ends',
  joined: 'coalesced into the reload already queued behind the running one: that reload reads the file once the running one ends',
};

/**
 * File reloads (SIGHUP, POST /reload; a cluster primary's too), coalesced: one runs at a time, and every request
 * made while one runs is served by a single reload after it, which reads the file then. The newest file always
 * wins, and a burst of signals costs at most two reloads.
 */
export function coalesced(reloadFile: () => Promise<ReloadResult>, logger: Logger): () => Promise<ReloadResult> {
  const queue = new CoalescingQueue(reloadFile);
  return async () => {
    const { turn, result } = queue.request();
    if (turn === 'started') return result;
    logger.info({ turn, reason: WAITED[turn] }, EVENTS.reloadQueued);
    return { ...(await result), note: WAITED[turn] };
  };
}

/**
 * Reads the config file and applies it. A config that cannot be used is logged as "Config Rejected" and resolves
 * {ok:false, reason}; the running config stays, and so does process.env (the .env read with it is undone). Any
 * other failure is logged the same way and rethrown.
 */
async function reloadFromFile(configPath: string, apply: (next: Config) => Promise<void>, logger: Logger): Promise<ReloadResult> {
  // Reading the file reads .env into process.env first: a reload that is not applied takes its values back out.
  const restoreEnv = dotEnvCheckpoint();
  try {
    const next = loadConfigFile(configPath);
    await apply(next);
    warnIfNotALevel(logger, process.env, next.logging.level);
    return { ok: true };
  } catch (err) {
    restoreEnv();
    if (err instanceof ConfigError) {
      logger.error({ reason: err.message }, EVENTS.configRejected);
      return { ok: false, reason: err.message };
    }
    if (err instanceof ReloadAbandoned) {
      logger.info({ reason: err.message }, EVENTS.reloadAbandoned);
      return { ok: false, reason: err.message };
    }
    logger.error({ reason: 'reload failed', cause: describeCause(err) }, EVENTS.configRejected);
    throw err;
  }
}

function connectionLimitOf(config: Config, trusted: TrustedProxies): ConnectionLimitSettings {
  return {
    maxPerClient: config.server.max_connections_per_client,
    trusted,
    proxyBy: config.server.proxy_by,
    // Clients are counted as the rate limiter keys them: an IPv6 network of this many bits is one client.
    ipv6Prefix: config.middleware.rate_limit.ipv6_prefix,
  };
}

function trustedProxiesOf(config: Config): TrustedProxies {
  try {
    return new TrustedProxies(config.server.trusted_proxies, config.server.client_address_header);
  } catch (err) {
    throw new ConfigError(`server.trusted_proxies: ${(err as Error).message}`);
  }
}

/**
 * Whether `work` settles within `ms`. The timer holds the event loop while it runs: unref'd, a stop whose drain
 * waited on something that holds nothing (an HTTP/2 stream that never closes) left node with an empty loop and an
 * unsettled top-level await, and it exited 13 at once, without its drain or its last log lines. Cleared either way,
 * so an early end leaves no timer behind.
 */
async function settlesWithin(work: Promise<unknown>, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const bound = new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(false), ms)));
  try {
    return await Promise.race([work.then(() => true), bound]);
  } finally {
    clearTimeout(timer);
  }
}
