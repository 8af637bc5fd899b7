// Process lifecycle around a gateway: config, logger, signals (SIGTERM/SIGINT drain, SIGHUP reload, SIGUSR1 access-log
// reopen: each listened for from the start), workers.
import cluster from 'node:cluster';
import type { Config } from './config/schema.js';
import { loadConfigFile, workerCount } from './config/load.js';
import { createLogger, flushLogger } from './observability/logger.js';
import { startGateway, type Gateway } from './server.js';
import { EVENTS } from './observability/events.js';
import { WorkerRestarts } from './worker-restarts.js';
import { endStartupMode } from './startup-mode.js';

/** Worker → primary: the admin /reload succeeded in this worker, reload the others. */
const RELOAD_OTHERS = 'reload-others';

/** What a signal does, set once that can run; a signal before then is remembered and acted on (once) when it is. */
class SignalAction {
  #action: (() => void) | undefined;
  #missed = false;

  /** A signal came before the action was set. */
  get missed(): boolean {
    return this.#missed;
  }

  fire(): void {
    if (this.#action === undefined) this.#missed = true;
    else this.#action();
  }

  /** Sets the action, and runs it now if a signal came before. */
  set(action: () => void): void {
    this.#action = action;
    if (this.#missed) action();
    this.#missed = false;
  }
}

/**
 * Listens for the reload requests (SIGHUP; in a worker, its primary's "reload") and SIGUSR1 before anything else:
 * without a listener SIGHUP ends the process (code 129) and SIGUSR1 opens Node's inspector, which a gateway should
 * never do, starting or not. Listening also keeps SIGUSR1 from Node's inspector after start-up.
 */
function listenForSignals(): { reload: SignalAction; reopen: SignalAction } {
  const reload = new SignalAction();
  const reopen = new SignalAction();
  process.on('SIGHUP', () => reload.fire());
  process.on('SIGUSR1', () => reopen.fire());
  if (cluster.isWorker) {
    process.on('message', (message) => {
      if (message === 'reload') reload.fire();
    });
  }
  return { reload, reopen };
}

/** Runs until SIGTERM/SIGINT; resolves to the exit code. Throws ConfigError before listening on a bad config. */
export async function runGateway(configPath: string, dataDir: string): Promise<number> {
  const signals = listenForSignals();
  const config = loadConfigFile(configPath);
  const workers = workerCount(config);
  if (workers > 1 && cluster.isPrimary) return runPrimary(config, workers, signals);
  const log = createLogger(config.logging, { sharedStdout: cluster.isWorker });
  const { logger } = log;
  // logrotate's convention (nginx): the file was renamed, create it again; the file is open from here on.
  signals.reopen.set(() => log.reopenAccessLog());
  let gateway: Gateway;
  try {
    gateway = await startGateway(config, {
      logger,
      logSink: log.accessSink,
      dataDir,
      adminEnabled: cluster.isPrimary || cluster.worker?.id === 1,
      configPath,
      // The admin port lives in worker 1 only: its /reload must reach the other workers too.
      onAdminReload: cluster.isWorker ? () => process.send?.(RELOAD_OTHERS) : undefined,
    });
  } catch (err) {
    flushLogger(log);
    // A worker that cannot start must end (its IPC channel would keep it alive), so the primary sees the crash.
    if (cluster.isWorker) process.disconnect();
    throw err;
  }
  endStartupMode();
  // A reload asked for during start-up is applied now, once: start-up may have read the file before it changed,
  // and ignoring the request would leave that older config running with no sign of it.
  if (signals.reload.missed) logger.info({ reason: 'asked for during start-up: reloading now that the gateway runs' }, EVENTS.reloadQueued);
  signals.reload.set(() => void reload(gateway));
  await new Promise<void>((resolve) => {
    const stop = () => resolve();
    process.once('SIGTERM', stop);
    process.once('SIGINT', stop);
    if (cluster.isWorker) process.once('disconnect', stop);
  });
  await gateway.close();
  flushLogger(log);
  // A worker's IPC channel to the primary keeps its event loop alive: without this it never exits, and the primary,
  // which waits for every worker's exit, hangs on SIGTERM until something kills both.
  if (cluster.isWorker && process.connected) process.disconnect();
  return 0;
}

/** Re-reads the config file and applies it; a bad file is logged and the running config stays. */
async function reload(gateway: Gateway): Promise<void> {
  await gateway.reloadFile?.().catch(() => undefined); // logged as "Config Rejected" by the gateway
}

/**
 * The primary of a multi-worker gateway: forks workers, restarts crashed ones with exponential backoff (see
 * worker-restarts.ts), relays signals. Resolves 0 after a signal, or 1 when workers keep dying before they listen.
 */
async function runPrimary(config: Config, workers: number, signals: { reload: SignalAction; reopen: SignalAction }): Promise<number> {
  const log = createLogger(config.logging, { accessLog: false, sharedStdout: true });
  const { logger } = log;
  const restarts = new WorkerRestarts();
  const forkedAt = new Map<number, number>();
  const listened = new Set<number>();
  let stopping = false;
  let giveUp: (() => void) | undefined;
  const gaveUp = new Promise<void>((resolve) => (giveUp = resolve));
  const fork = (): void => {
    if (stopping) return;
    forkedAt.set(cluster.fork().id, Date.now());
  };
  for (let i = 0; i < workers; i++) fork();
  // The primary's own start-up is over: it hands out connections from here on.
  endStartupMode();
  cluster.on('listening', (worker) => {
    listened.add(worker.id);
    restarts.listening();
  });
  cluster.on('exit', (worker, code, signal) => {
    if (stopping) return;
    const uptimeMs = Date.now() - (forkedAt.get(worker.id) ?? Date.now());
    const decision = restarts.exited(listened.has(worker.id), uptimeMs);
    forkedAt.delete(worker.id);
    listened.delete(worker.id);
    if (decision.action === 'give-up') {
      logger.error(
        { worker: worker.id, code, signal, crashes: decision.crashes },
        'Workers Failing At Start-up: giving up (see the workers\' errors above)',
      );
      stopping = true;
      giveUp?.();
      return;
    }
    logger.warn({ worker: worker.id, code, signal, uptime_ms: uptimeMs, restart_in_ms: decision.delayMs }, 'Worker Exited');
    setTimeout(fork, decision.delayMs);
  });
  signals.reload.set(() => {
    for (const worker of Object.values(cluster.workers ?? {})) worker?.send('reload');
  });
  // Each worker appends to the access-log file itself: a rotation signal sent to the primary is passed on.
  signals.reopen.set(() => {
    for (const worker of Object.values(cluster.workers ?? {})) worker?.process.kill('SIGUSR1');
  });
  cluster.on('message', (from, message) => {
    if (message !== RELOAD_OTHERS) return;
    for (const worker of Object.values(cluster.workers ?? {})) if (worker && worker !== from) worker.send('reload');
  });
  const signalled = new Promise<void>((resolve) => {
    process.once('SIGTERM', resolve);
    process.once('SIGINT', resolve);
  });
  const outcome = await Promise.race([signalled.then(() => 0), gaveUp.then(() => 1)]);
  stopping = true;
  const exits = Object.values(cluster.workers ?? {}).map(
    (worker) => new Promise<void>((resolve) => (worker ? worker.once('exit', () => resolve()) : resolve())),
  );
  for (const worker of Object.values(cluster.workers ?? {})) worker?.process.kill('SIGTERM');
  await Promise.all(exits);
  flushLogger(log);
  return outcome;
}

/** `portcullis migrate`: applies the user store's migrations and exits. */
export async function runMigrations(config: Config, dataDir: string): Promise<number> {
  const { openUserStore } = await import('./features.js');
  const log = createLogger(config.logging, { accessLog: false });
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
