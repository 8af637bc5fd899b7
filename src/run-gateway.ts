// Process lifecycle around a gateway: config, logger, signals (SIGTERM/SIGINT drain, SIGHUP reload), workers.
import cluster from 'node:cluster';
import type { Config } from './config/schema.js';
import { loadConfigFile, workerCount } from './config/load.js';
import { createLogger, flushLogger, type Logger } from './observability/logger.js';
import { reloadFromFile, startGateway, type Gateway } from './server.js';
import { releaseYoungGeneration } from './startup-heap.js';

/** Worker → primary: the admin /reload succeeded in this worker, reload the others. */
const RELOAD_OTHERS = 'reload-others';

/** Runs until SIGTERM/SIGINT; resolves to the exit code. Throws ConfigError before listening on a bad config. */
export async function runGateway(configPath: string, dataDir: string): Promise<number> {
  const config = loadConfigFile(configPath);
  const workers = workerCount(config);
  if (workers > 1 && cluster.isPrimary) return runPrimary(config, workers);
  const log = createLogger(config.logging);
  const { logger, sink } = log;
  let gateway: Gateway;
  try {
    gateway = await startGateway(config, {
      logger,
      logSink: sink,
      dataDir,
      adminEnabled: cluster.isPrimary || cluster.worker?.id === 1,
      configPath,
      // The admin port lives in worker 1 only: its /reload must reach the other workers too.
      onAdminReload: cluster.isWorker ? () => process.send?.(RELOAD_OTHERS) : undefined,
    });
  } catch (err) {
    flushLogger(log);
    throw err;
  }
  releaseYoungGeneration();
  process.on('SIGHUP', () => void reload(gateway, configPath, logger));
  process.on('message', (message) => {
    if (message === 'reload') void reload(gateway, configPath, logger);
  });
  await new Promise<void>((resolve) => {
    const stop = () => resolve();
    process.once('SIGTERM', stop);
    process.once('SIGINT', stop);
    if (cluster.isWorker) process.once('disconnect', stop);
  });
  await gateway.close();
  flushLogger(log);
  return 0;
}

/** Re-reads the config file and applies it; a bad file is logged and the running config stays. */
export async function reload(gateway: Gateway, configPath: string, logger: Logger): Promise<boolean> {
  try {
    return (await reloadFromFile(gateway, configPath, logger)).ok;
  } catch {
    return false; // already logged by reloadFromFile
  }
}

/** The primary of a multi-worker gateway: forks workers, restarts crashed ones, relays signals. */
async function runPrimary(config: Config, workers: number): Promise<number> {
  const log = createLogger(config.logging);
  const { logger } = log;
  let stopping = false;
  for (let i = 0; i < workers; i++) cluster.fork();
  cluster.on('exit', (worker, code) => {
    if (stopping) return;
    logger.warn({ worker: worker.id, code }, 'Worker Exited');
    cluster.fork();
  });
  process.on('SIGHUP', () => {
    for (const worker of Object.values(cluster.workers ?? {})) worker?.send('reload');
  });
  cluster.on('message', (from, message) => {
    if (message !== RELOAD_OTHERS) return;
    for (const worker of Object.values(cluster.workers ?? {})) if (worker && worker !== from) worker.send('reload');
  });
  await new Promise<void>((resolve) => {
    process.once('SIGTERM', resolve);
    process.once('SIGINT', resolve);
  });
  stopping = true;
  const exits = Object.values(cluster.workers ?? {}).map(
    (worker) => new Promise<void>((resolve) => (worker ? worker.once('exit', () => resolve()) : resolve())),
  );
  for (const worker of Object.values(cluster.workers ?? {})) worker?.process.kill('SIGTERM');
  await Promise.all(exits);
  flushLogger(log);
  return 0;
}

/** `portcullis migrate`: applies the user store's migrations and exits. */
export async function runMigrations(config: Config, dataDir: string): Promise<number> {
  const { openUserStore } = await import('./features.js');
  const log = createLogger(config.logging);
  const store = await openUserStore(config.database, dataDir, log.logger);
  try {
    await store.migrate();
  } finally {
    await store.close();
    flushLogger(log);
  }
  process.stdout.write('migrations applied\n');
  return 0;
}
