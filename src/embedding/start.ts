// Embedding: `startGateway(config)` runs a gateway inside the caller's process from a config object.
import type * as z from 'zod';
import type { Logger } from 'pino';
import { ConfigError, parseConfigObject, resolveDataDir, workerCount } from '../config/load.js';
import type { configSchema } from '../config/schema.js';
import { closeLogger, createLogger, type LoggerHandle } from '../observability/logger.js';
import type { LineSink } from '../observability/access-log.js';
import { startGateway as startServer, type Gateway } from '../server.js';

/** A config object in the config file's shape (YAML keys, durations as "10s" or seconds); defaults as in the file. */
export type GatewayConfig = z.input<typeof configSchema>;

/** How an embedded gateway runs; every field has a default. */
export interface StartOptions {
  /** Where relative `plugins[].module` paths start. Default: the working directory. */
  readonly baseDir?: string;
  /** Embedded state (SQLite file, generated JWT secret). Default: $PORTCULLIS_DATA_DIR or ./data. */
  readonly dataDir?: string;
  /** A pino logger to write to. Default: one built from `logging` (JSON lines on stdout). */
  readonly logger?: Logger;
  /** With `logger`: its raw JSON sink, so the access log skips pino (optional). */
  readonly logSink?: LineSink;
}

/** A gateway running in this process. */
export interface EmbeddedGateway {
  /** http://host:port of the proxy listener (127.0.0.1 when it listens on every address). */
  readonly url: string;
  /** The admin listener's URL, or undefined when `admin.enabled` is false. */
  readonly adminUrl: string | undefined;
  /** Applies a new config object (validated by the same schema) as SIGHUP applies a changed file. */
  reload(config: GatewayConfig): Promise<void>;
  /** Drains and stops everything it started (listeners, pools, timers, stores, plugins): node can then exit. */
  close(): Promise<void>;
}

function urlOf(host: string, port: number): string {
  const local = host === '0.0.0.0' || host === '' ? '127.0.0.1' : host === '::' ? '::1' : host;
  return `http://${local.includes(':') ? `[${local}]` : local}:${port}`;
}

/**
 * Starts a gateway from `config`. Rejects with a ConfigError ("key.path: reason") for a config the CLI would
 * refuse, before listening. One process, one gateway: `server.workers` above 1 is refused here.
 */
export async function startGateway(config: GatewayConfig, options: StartOptions = {}): Promise<EmbeddedGateway> {
  const { url, adminUrl, reload, close } = await startEmbedded(config, options);
  return { url, adminUrl, reload, close };
}

/** startGateway plus in-process requests, for the test kit (not a public entry point). */
export interface EmbeddedWithInject extends EmbeddedGateway {
  inject: Gateway['inject'];
}

export async function startEmbedded(config: GatewayConfig, options: StartOptions = {}): Promise<EmbeddedWithInject> {
  const parsed = parseConfigObject(config);
  if (workerCount(parsed) > 1) throw new ConfigError('server.workers: an embedded gateway runs in the calling process (use 1)');
  let handle: LoggerHandle | undefined;
  let logger = options.logger;
  let sink = options.logSink;
  if (logger === undefined) {
    handle = createLogger(parsed.logging);
    logger = handle.logger;
    // The access lines' own sink: the access_log_file's writer when one is set (it was opened, then left empty while
    // the lines went to stdout), else stdout's.
    sink = handle.accessSink;
  }
  let gateway: Gateway;
  try {
    gateway = await startServer(parsed, {
      logger,
      logSink: sink,
      dataDir: options.dataDir ?? resolveDataDir(),
      pluginBaseDir: options.baseDir ?? process.cwd(),
    });
  } catch (err) {
    if (handle !== undefined) await closeLogger(handle);
    throw err;
  }
  let closing: Promise<void> | undefined;
  // For inject's answer to a request head node's parser refuses: the port's X-Proxy-By, as of the last reload.
  let proxyBy = parsed.server.proxy_by;
  return {
    url: urlOf(parsed.server.listen_host, gateway.port),
    adminUrl: gateway.adminPort === undefined ? undefined : urlOf(parsed.admin.listen_host, gateway.adminPort),
    async reload(next) {
      const config = parseConfigObject(next);
      await gateway.reload(config);
      proxyBy = config.server.proxy_by;
    },
    inject: (request) => gateway.inject({ ...request, proxyBy }),
    close() {
      // The access-log file is closed once its last write is done: close() resolves after that.
      closing ??= gateway.close().finally(() => (handle !== undefined ? closeLogger(handle) : undefined));
      return closing;
    },
  };
}
