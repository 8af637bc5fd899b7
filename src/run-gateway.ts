// Process lifecycle around a gateway: config, logger, signals (SIGTERM/SIGINT drain, stop-signal.ts; SIGHUP reload,
// SIGUSR1 access-log reopen: each listened for from the start), workers (the primary, its workers, and the admin listener's one holder).
import cluster, { type Worker } from 'node:cluster';
import { dirname } from 'node:path';
import type { Config } from './config/schema.js';
import { resolveDataDir, workerCount } from './config/load.js';
import { createLogger, flushLogger, loggerSettled, prettyCaughtUp, type LoggerHandle } from './observability/logger.js';
import { startGateway, type Gateway, type GatewayOptions } from './server.js';
import { EVENTS } from './observability/events.js';
import { localResources } from './observability/resource-episodes.js';
import { WorkerRestarts } from './worker-restarts.js';
import { WorkerWatchdog } from './worker-watchdog.js';
import { WORKER_KEYS_ENV } from './auth/worker-keys-env.js';
import { startDeadlineMs, stopDeadlineMs } from './worker-deadlines.js';
import { migrateBeforeFork } from './primary-migration.js';
import { endStartupMode } from './startup-mode.js';
import { takeEarlySignals } from './early-signals.js';
import { StopSignal } from './stop-signal.js';
import { watchProcessFaults, type ProcessFaults } from './process-faults.js';
import { ConfigOwner, PrimaryLink, readConfigSnapshot, type CheckedConfig, type FailedStart } from './cluster-config.js';
import { ConfigError } from './config/config-error.js';
import { PluginCreateFailed } from './plugins/host.js';
import { PluginImportTimedOut } from './plugins/load.js';
import { shownOnTerminal } from './terminal-text.js';
import { failureLine } from './commands/failure-line.js';
import { whenFlushed } from './stream-flushed.js';

/**
 * Set by the primary in each worker's environment at fork: "1" for the one worker that runs the admin listener, "0"
 * for the others (always set, so a value inherited from the primary's own environment never counts).
 */
const ADMIN_ROLE_ENV = 'PORTCULLIS_ADMIN_WORKER';

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

interface Signals {
  readonly reload: SignalAction;
  readonly reopen: SignalAction;
  readonly stop: StopSignal;
}

/**
 * Listens for SIGHUP and SIGUSR1 before anything else: without a listener SIGHUP ends the process (code 129) and
 * SIGUSR1 opens Node's inspector, which a gateway should never do, starting or not. Listening also keeps SIGUSR1 from
 * Node's inspector after start-up.
 */
function listenForSignals(): Signals {
  const stop = new StopSignal();
  const reload = new SignalAction();
  const reopen = new SignalAction();
  process.on('SIGHUP', () => reload.fire());
  process.on('SIGUSR1', () => reopen.fire());
  // Those that came while the command line loaded (bin/portcullis.js caught them): acted on as if they came now.
  const early = takeEarlySignals();
  if (early.has('SIGHUP')) reload.fire();
  if (early.has('SIGUSR1')) reopen.fire();
  return { reload, reopen, stop };
}

/**
 * startGateway's hooks for a stop signal during start-up (stop-signal.ts): kept once the proxy port accepts; once
 * start-up fails, it ends the process at once, printing first the line the command would have printed.
 */
function stopDuringStartUp(stop: StopSignal): Pick<GatewayOptions, 'onProxyListening' | 'onStartFailing'> {
  return {
    onProxyListening: () => stop.listening(),
    onStartFailing: (err) => stop.startFailing(() => process.stderr.write(failureLine(err))),
  };
}

/** Runs until SIGTERM/SIGINT; resolves to the exit code. Throws ConfigError before listening on a bad config. */
export async function runGateway(configPath: string, dataDir: string): Promise<number> {
  // First: a worker's primary passes SIGUSR1 on once the worker has asked for its config (runWorker), never before.
  const signals = listenForSignals();
  if (cluster.isWorker) return runWorker(configPath, dataDir, signals);
  // Read as loadConfigFile reads it; the text is kept for a cluster's workers (cluster-config.ts).
  const checked = readConfigSnapshot(configPath);
  const workers = workerCount(checked.config);
  if (workers > 1) return runPrimary(configPath, checked, workers, signals);
  return runSingle(checked.config, configPath, dataDir, signals);
}

/** The one process of a single-process gateway: it owns its config file, and reloads re-read it. */
async function runSingle(config: Config, configPath: string, dataDir: string, signals: Signals): Promise<number> {
  const log = createLogger(config.logging, { sharedStdout: false });
  const faults = watchProcessFaults(log);
  // logrotate's convention (nginx): the file was renamed, create it again; the file is open from here on.
  signals.reopen.set(() => log.reopenAccessLog());
  let gateway: Gateway;
  try {
    gateway = await startGateway(config, {
      logger: log.logger,
      logSink: log.accessSink,
      dataDir,
      configPath,
      ...stopDuringStartUp(signals.stop),
    });
  } catch (err) {
    if (signals.stop.startFailed()) return endingBySignal();
    flushLogger(log);
    // A start-up that failed after the proxy port was bound (the admin port taken, say) must not leave a process
    // serving requests without its admin listener, which no supervisor would notice: end it, code 1.
    endFailedStart();
    throw err;
  }
  // Re-reads the file; a bad one is logged as "Config Rejected" by the gateway and the running config stays.
  return serveUntilStopped(gateway, log, signals, faults, () => void gateway.reloadFile?.().catch(() => undefined));
}

/**
 * A worker of a multi-worker gateway. It runs the config its primary hands it, never the file (cluster-config.ts),
 * and the admin listener only if the primary gave it that role at fork.
 */
async function runWorker(configPath: string, dataDir: string, signals: Signals): Promise<number> {
  const primary = new PrimaryLink(configPath); // first: the primary's messages are lost until it listens
  let log: LoggerHandle | undefined;
  let faults: ProcessFaults;
  let gateway: Gateway;
  try {
    const config = await primary.startConfig();
    log = createLogger(config.logging, { sharedStdout: true, workerId: cluster.worker?.id });
    faults = watchProcessFaults(log);
    const opened = log;
    signals.reopen.set(() => opened.reopenAccessLog());
    const options: GatewayOptions = {
      logger: log.logger,
      logSink: log.accessSink,
      dataDir,
      adminEnabled: process.env[ADMIN_ROLE_ENV] === '1',
      // No configPath: this worker never reads the file. Its POST /reload asks the primary to reload every worker.
      pluginBaseDir: dirname(configPath),
      adminReload: () => primary.requestReload(),
      ...stopDuringStartUp(signals.stop),
    };
    gateway = await startGateway(config, options);
  } catch (err) {
    if (signals.stop.startFailed()) return endingBySignal();
    if (log !== undefined) flushLogger(log);
    // A config error is the primary's to print (cluster-config.ts): it prints one that every start would fail on
    // once, and ends the gateway, instead of each worker printing it at each of its restarts. The report exits.
    // (A stop signal kept during start-up ends the worker first, its failure printed by itself: startFailed above.)
    if (err instanceof ConfigError && primary.reportFailedStart(failedStartOf(err))) return 1;
    endFailedStart();
    throw err; // cli.ts prints it ("portcullis: config error: ...") and exits 1
  }
  primary.serve(gateway, log.logger);
  // SIGHUP sent to a worker (a signal to the whole process group) asks the primary, as POST /reload does: a worker
  // reloading on its own would leave its siblings on another config.
  return serveUntilStopped(gateway, log, signals, faults, () => void primary.requestReload().catch(() => undefined));
}

/** What a worker tells its primary about the config error its start failed on. */
function failedStartOf(err: ConfigError): FailedStart {
  // Every config error but a plugin's create() or an import that timed out depends on the config and its files
  // alone: the next start fails alike.
  return { reason: err.message, repeats: !(err instanceof PluginCreateFailed || err instanceof PluginImportTimedOut) };
}

/**
 * A process whose gateway failed to start must exit, and with a non-zero code, whatever its start-up left open: a
 * single process may hold its proxy listener (the admin port was taken), and would go on serving with no admin
 * listener; a worker's IPC channel alone would keep it alive, and the primary, which never saw it exit, would neither
 * restart it nor give up. Not by disconnecting: node:cluster then ends a worker with code 0. The exit waits for the turn of the event loop after this one, by which
 * the error has been printed (cli.ts, in the promise chain this throw goes up), and for stderr to take it (a pipe,
 * unlike a file or a terminal, is written asynchronously: at most a second), whatever a failed start-up left open (a
 * store connection, a timer).
 */
function endFailedStart(): void {
  setImmediate(() => whenFlushed(process.stderr, () => process.exit(1), 1000));
}

/** A stop signal is ending the process (stop-signal.ts), its failure printed: nothing to resolve to. */
function endingBySignal(): Promise<number> {
  return new Promise(() => undefined);
}

/**
 * Serves until SIGTERM/SIGINT (or, in a worker, the primary's disconnect), then drains and resolves 0; after an
 * uncaught exception (process-faults.ts), drains alike and resolves 1.
 */
async function serveUntilStopped(
  gateway: Gateway,
  log: LoggerHandle,
  signals: Signals,
  faults: ProcessFaults,
  reload: () => void,
): Promise<number> {
  const { logger } = log;
  endStartupMode();
  // A reload asked for during start-up is applied now, once: start-up may have read the file before it changed,
  // and ignoring the request would leave that older config running with no sign of it.
  if (signals.reload.missed) logger.info({ reason: 'asked for during start-up: reloading now that the gateway runs' }, EVENTS.reloadQueued);
  signals.reload.set(reload);
  await new Promise<void>((resolve) => {
    let stopping = false;
    const stop = (): void => {
      stopping = true;
      resolve();
    };
    // Until the process exits: a signal that came after the proxy port opened runs this now (stop-signal.ts).
    signals.stop.set(() => (stopping ? repeatedStop(log) : stop()));
    faults.stopWith(stop);
    if (cluster.isWorker) {
      process.once('disconnect', stop);
      // A disconnect during start-up came before this listener. When the primary dies, node:cluster's own listener
      // ends the worker at once (exit 0, whatever ours would do), so this is about a disconnect the primary asks
      // for (worker.disconnect()), which node leaves to the worker: missed, it would leave the worker running with
      // nobody to stop it.
      if (!process.connected) stop();
    }
  });
  await gateway.close();
  flushLogger(log);
  exitOnceStopped(log, faults.fatal ? 1 : 0);
  if (faults.fatal) {
    // Ended with code 1 whatever holds the event loop: its state is unknown; and in a worker, a disconnect would end
    // it with code 0, which the primary would not count as a crash.
    if (cluster.isWorker) endFailedStart();
    return 1;
  }
  // A worker's IPC channel to the primary keeps its event loop alive: without this it never exits, and the primary,
  // which waits for every worker's exit, would kill it at the stop deadline and exit 1 (a stop that was not clean).
  // Through cluster.worker.disconnect(), not process.disconnect(): node:cluster ends a worker whose channel closes
  // without it at once (process.exit(0) on 'disconnect'), and with it the log lines still waiting for a full stdout
  // pipe (flushLogger goes on asynchronously then): a worker's last Request Completed and its Gateway Stopped were
  // lost whenever the reader of a shared stdout was slower than the stop.
  if (cluster.isWorker && process.connected) cluster.worker?.disconnect();
  return 0;
}

/** How long a stopped process may wait for its last log lines before it exits anyway (a log writer gives up at 5 s). */
const STOPPED_EXIT_BOUND_MS = 6_000;
/** How long after a fork that failed (the primary's descriptors or processes used up) it is tried again. */
const FORK_RETRY_MS = 1_000;
/** The fork failures of a shortage that passes (descriptors, processes, memory), retried at FORK_RETRY_MS. */
const FORK_SHORTAGE_CODES: ReadonlySet<string> = new Set(['EMFILE', 'ENFILE', 'EAGAIN', 'ENOMEM']);
/** How long after its stop a process is first looked at: one that has nothing left open has exited by then. */
const STOPPED_EXIT_GRACE_MS = 1_000;

/**
 * Once stopped, the process exits, whatever is still open. Node exits by itself once nothing is left, but what consumes
 * the gateway's output can hold it: a collector trickling its answer to an export of spans (the exporter's timeout is
 * a socket idle timeout, which every byte resets), a log write to a reader that never reads. The stop's own bounds
 * are over by then (the drain, the tracer's 5 s), and waiting on serves nobody: the supervisor's stop would end in
 * SIGKILL. On an unref'd timer, so a process that empties its event loop exits as before; one that does not exits
 * once its log lines are written or given up (LineWriter's own bound), and within STOPPED_EXIT_BOUND_MS whatever.
 */
function exitOnceStopped(log: LoggerHandle, code: number): void {
  if (forcing) return;
  exitOnceLogged(log, code, { firstLookMs: STOPPED_EXIT_GRACE_MS, boundMs: STOPPED_EXIT_BOUND_MS, everyMs: 100 });
}

/**
 * How long a forced stop (a second signal) waits for the pretty format's worker thread to print its last lines, Stop
 * Forced among them. process.exit() ends that thread wherever it is: exiting at once lost the Stop Forced line
 * whenever the thread was a moment behind (a loaded machine), though the terminal read.
 */
const FORCED_EXIT_BOUND_MS = 500;

/** A forced stop is under way: the signals after it, and the end of the drain it cut short, change nothing. */
let forcing = false;

/**
 * Logs a forced stop and exits 1: at once; with the pretty format, when its worker had printed everything before
 * this line (its terminal reads), after it has printed this one too, FORCED_EXIT_BOUND_MS at most. One behind a
 * terminal that takes nothing is not waited for (review9-output-pretty-forced-exit). The wait's timers hold the event
 * loop, so the process cannot end by itself meanwhile (with another code) as the drain ends.
 */
function exitForced(log: LoggerHandle, reason: string): void {
  forcing = true;
  const waitForPretty = prettyCaughtUp(log);
  log.logger.warn({ reason }, 'Stop Forced');
  flushLogger(log);
  if (!waitForPretty) process.exit(1);
  exitOnceLogged(log, 1, { firstLookMs: 0, boundMs: FORCED_EXIT_BOUND_MS, everyMs: 10, holdLoop: true });
}

/** Exits with `code` once the log writers are settled (loggerSettled) or `boundMs` has passed, whichever is first. */
function exitOnceLogged(
  log: LoggerHandle,
  code: number,
  timing: { firstLookMs: number; boundMs: number; everyMs: number; holdLoop?: boolean },
): void {
  // Monotonic: a wall clock stepped back during the stop (NTP, a restored snapshot) must not hold the exit that long.
  const deadline = performance.now() + timing.boundMs;
  const later = (ms: number): void => {
    const timer = setTimeout(look, ms);
    if (timing.holdLoop !== true) timer.unref();
  };
  const look = (): void => {
    if (loggerSettled(log) || performance.now() >= deadline) process.exit(code);
    later(timing.everyMs);
  };
  later(timing.firstLookMs);
}

/**
 * A stop signal while the gateway already stops. A worker gets one whenever the whole process group is signalled
 * (systemd's default KillMode=control-group, `kill -TERM -<pgid>`, Ctrl-C): from the sender, then relayed by its
 * primary, which bounds the worker's stop itself (its stop deadline; a second signal to it kills the workers), so the
 * worker drains on. A single process stops at once, as a primary does: logged, its buffered lines written, exit 1.
 */
function repeatedStop(log: LoggerHandle): void {
  if (cluster.isWorker || forcing) return;
  exitForced(log, 'a second stop signal while draining: exiting now');
}

/**
 * The primary of a multi-worker gateway: owns the config (cluster-config.ts), forks workers, restarts crashed ones
 * with exponential backoff (see worker-restarts.ts), kills a worker that has not started within its deadline (a failed
 * start: worker-deadlines.ts), hands the admin listener to one worker at a time, relays signals. Resolves 0 after a
 * signal, or 1 when workers keep failing to start, or when a worker had to be killed because it did not stop.
 */
async function runPrimary(configPath: string, checked: CheckedConfig, workers: number, signals: Signals): Promise<number> {
  const log = createLogger(checked.config.logging, { accessLog: false, sharedStdout: true });
  const faults = watchProcessFaults(log);
  const { logger } = log;
  // The data dir of the gateway's whole life, as a single process's (a reload never moves it): the one migrated here
  // and handed to every worker, restarted ones included. From the accepted environment, a reload's .env could name
  // another, and a worker restarted on it created and served an empty store beside its siblings'.
  const dataDir = resolveDataDir(checked.snapshot.env);
  // Before any fork: a SQLite migration has no bound a worker's start deadline could count (primary-migration.ts).
  try {
    await migrateBeforeFork(checked.config, dataDir, logger);
  } catch (err) {
    flushLogger(log);
    throw err; // cli.ts prints it as a single process's start would ("portcullis: user store unavailable: ...")
  }
  // Workers not serving yet, by id: the timer that kills one still starting at its deadline. A worker stopped or stuck
  // in a synchronous loop (a plugin's import or create() that never yields) would otherwise be waited for forever,
  // leaving the gateway a worker short, or never ready at all. SIGKILL: its event loop, which would act on SIGTERM,
  // is what does not run.
  const starting = new Map<number, NodeJS.Timeout>();
  // Workers killed at their start-up deadline: failed starts, even if one had opened its listener before it stuck.
  const timedOut = new Set<number>();
  const startOver = (worker: Worker): void => {
    clearTimeout(starting.get(worker.id));
    starting.delete(worker.id);
  };
  // Workers whose gateway runs (READY: every listener open, the admin one included). Not node:cluster's 'listening',
  // which fires for a worker's first listener: one that then failed to open the admin port would count as started,
  // and a port taken for good would restart workers forever instead of giving up.
  const ready = new Set<number>();
  // Some worker has served: start-up works with this config, and a config error a worker meets from now on (a
  // certificate file gone since) is restarted with backoff, as any crash is.
  let served = false;
  // Every worker has run at once: the gateway started complete, all its listeners open (see keepServing).
  let startedComplete = false;
  // The JWT keys' fingerprint the first serving worker started with: every worker forked from then on must load the
  // same keys (auth/setup.ts refuses to start on others: key files rewritten on disk since).
  let keysFingerprint: string | undefined;
  const started = (worker: Worker, keys?: string): void => {
    // node:cluster can emit a worker's exit before its last messages are read: a READY read after the exit (or from a
    // worker killed at its start deadline) left a dead id in `ready`, which then passed for a serving worker for good.
    if (worker.isDead() || timedOut.has(worker.id)) return;
    startOver(worker);
    ready.add(worker.id);
    keysFingerprint ??= keys;
    watchdog.watch(worker);
    served = true;
    if (ready.size >= workers) startedComplete = true;
    restarts.listening();
  };
  // Whether a start-up failure is met by restarting for as long as it takes (WorkerRestarts.exited): the gateway
  // started complete once and a worker other than `except` serves now.
  const keepServing = (except: number | undefined): boolean => {
    if (!startedComplete) return false;
    for (const id of ready) if (id !== except && !timedOut.has(id)) return true;
    return false;
  };
  // The config error the gateway gives up on at once: every worker would fail on it at every start.
  let fatalStart: ConfigError | undefined;
  // A worker's config error, which it left to the primary to print (cluster-config.ts): while no worker has served,
  // one that every start fails on ends the gateway now (printed once, by cli.ts, as a single process's would be;
  // the workers still starting are stopped); any other is printed as the worker would have, and its exit restarts
  // it as usual.
  const failedStart = (worker: Worker, failure: FailedStart): void => {
    if (stopping) return;
    if (failure.repeats && !served) {
      logger.error(
        { worker: worker.id, pid: worker.process.pid, reason: failure.reason },
        'Workers Failing At Start-up: giving up (a config error every start fails on)',
      );
      fatalStart = new ConfigError(failure.reason);
      stopping = true;
      giveUp?.();
      return;
    }
    process.stderr.write(`portcullis: config error: ${shownOnTerminal(failure.reason)}\n`);
  };
  // A worker the owner gives up on (cluster-config.ts) is ended here; its exit below starts its replacement, which
  // starts from the accepted config. One that stopped answering gets SIGKILL: a Node process acts on SIGTERM from
  // its event loop, the very thing that is not running, and the primary keeps handing it connections meanwhile
  // (round-robin), each of which hangs. (nginx's master never kills a worker that does not exit on reload: it leaves
  // the old worker to finish its connections, bounded only by worker_shutdown_timeout, which the worker itself
  // enforces. An old nginx worker has closed its listening sockets, so new connections never reach it.) One that
  // answers but cannot run the accepted config gets SIGTERM and drains its requests as on any stop.
  const owner = new ConfigOwner(
    configPath,
    checked,
    logger,
    (worker, why) => {
      worker.process.kill(why === 'unresponsive' ? 'SIGKILL' : 'SIGTERM');
    },
    started,
    failedStart,
  );
  const restarts = new WorkerRestarts();
  // A serving worker whose event loop stopped (worker-watchdog.ts): SIGKILL, for the reason above; its exit restarts
  // it as any crash is (it had served: no start-up failure).
  const watchdog = new WorkerWatchdog((worker, silentMs) => {
    if (stopping || worker.isDead()) return;
    logger.error(
      {
        worker: worker.id,
        pid: worker.process.pid,
        silent_ms: silentMs,
        reason: `worker ${worker.id} (pid ${worker.process.pid}) has not answered the primary for ${silentMs} ms: its event loop is stuck; killed (SIGKILL) and restarted`,
      },
      'Worker Stalled',
    );
    worker.process.kill('SIGKILL');
  }, (worker) => owner.awaitsAnswerFrom(worker.id));
  // Restarts waiting out their backoff: cancelled by a stop, which would otherwise wait for them (up to 10 s) to exit.
  const restarting = new Set<NodeJS.Timeout>();
  // performance.now() of each fork: an uptime is a duration, which a step of the wall clock (NTP, a restored
  // snapshot) must not make negative, nor make a crash-looping worker look stable.
  const forkedAt = new Map<number, number>();
  // The worker that runs the admin listener. Only the primary can tell which one that is after restarts (cluster
  // ids grow: the replacement of worker 1 is 3), and it frees the role only once that worker has exited, so two
  // workers never both listen on the admin port (in a cluster both would succeed, sharing the port by turns).
  let adminWorker: number | undefined;
  let stopping = false;
  let giveUp: (() => void) | undefined;
  const gaveUp = new Promise<void>((resolve) => (giveUp = resolve));
  const fork = (): void => {
    if (stopping) return;
    const admin = adminWorker === undefined;
    let worker: Worker;
    try {
      const own: Record<string, string> = { [ADMIN_ROLE_ENV]: admin ? '1' : '0', PORTCULLIS_DATA_DIR: dataDir };
      if (keysFingerprint !== undefined) own[WORKER_KEYS_ENV] = keysFingerprint;
      worker = cluster.fork(forkEnvironment(owner.environment, own));
    } catch (err) {
      // node throws the spawn failures it has no 'error' event for (ENOMEM, E2BIG...): from a restart's timer, an
      // uncaught exception that stopped the gateway. Nothing was registered in cluster.workers.
      forkError(err as NodeJS.ErrnoException);
      return;
    }
    if (worker.process.pid === undefined) {
      forkFailed(worker);
      return;
    }
    // An error of a running worker's process (a signal or message it could not be sent): its exit, if it comes, is
    // handled below; unheard, the event was an uncaught exception that stopped the primary and every worker.
    worker.on('error', () => undefined);
    if (admin) adminWorker = worker.id;
    forkedAt.set(worker.id, performance.now());
    // From the config accepted now: the one this worker is handed when it asks (cluster-config.ts).
    const deadlineMs = startDeadlineMs(owner.config);
    const timer = setTimeout(() => {
      starting.delete(worker.id);
      if (stopping || worker.isDead()) return;
      timedOut.add(worker.id);
      logger.error(
        {
          worker: worker.id,
          pid: worker.process.pid,
          deadline_ms: deadlineMs,
          reason: `worker ${worker.id} (pid ${worker.process.pid}) has not started within ${deadlineMs} ms: killed (SIGKILL) as a failed start`,
        },
        'Worker Start Timed Out',
      );
      worker.process.kill('SIGKILL');
    }, deadlineMs);
    starting.set(worker.id, timer);
  };
  /**
   * A fork that failed: node reports it as an 'error' event on the next tick, and never an 'exit', leaving the worker
   * in cluster.workers. Unheard, the event stopped the whole gateway. For want of the primary's descriptors or
   * processes (FORK_SHORTAGE_CODES): logged once per episode, tried again after FORK_RETRY_MS until it succeeds, not
   * a failed start (its config was never tried), so never counted towards giving up. Any other code can never
   * succeed by waiting (node's binary removed or replaced under the primary: ENOENT, EACCES; an environment too large
   * to exec: E2BIG): retried every second, that ran a worker short for ever under a line calling it a shortage. It is
   * a worker that never started, as the restart policy counts one: logged, backoff, and the primary gives up.
   */
  const forkFailed = (worker: Worker): void => {
    delete cluster.workers?.[worker.id];
    worker.once('error', forkError);
  };
  const forkError = (err: NodeJS.ErrnoException): void => {
    const code = err.code ?? 'unknown';
    if (FORK_SHORTAGE_CODES.has(code)) {
      localResources.report(logger, code, 'worker_fork');
      forkLater(FORK_RETRY_MS);
      return;
    }
    if (stopping) return;
    const decision = restarts.exited(false, 0, keepServing(undefined));
    if (decision.action === 'give-up') {
      logger.error({ code, crashes: decision.crashes }, "Workers Failing At Start-up: giving up (see the workers' errors above)");
      stopping = true;
      giveUp?.();
      return;
    }
    logger.error({ code, restart_in_ms: decision.delayMs }, 'Worker Fork Failed'); // an error either way (failing or not)
    forkLater(decision.delayMs);
  };
  const forkLater = (delayMs: number): void => {
    if (stopping) return;
    const timer = setTimeout(() => {
      restarting.delete(timer);
      fork();
    }, delayMs);
    restarting.add(timer);
  };
  // Before the first fork: a worker's first message asks for its config.
  cluster.on('message', (worker, message) => {
    if (!watchdog.onMessage(worker, message)) owner.onMessage(worker, message);
  });
  for (let i = 0; i < workers; i++) fork();
  // The primary's own start-up is over: it hands out connections from here on.
  endStartupMode();
  cluster.on('exit', (worker, code, signal) => {
    owner.onExit(worker);
    watchdog.forget(worker.id);
    startOver(worker);
    if (worker.id === adminWorker) adminWorker = undefined; // the next worker forked takes the admin listener
    if (stopping) return;
    const uptimeMs = Math.round(performance.now() - (forkedAt.get(worker.id) ?? performance.now()));
    const decision = restarts.exited(ready.has(worker.id) && !timedOut.has(worker.id), uptimeMs, keepServing(worker.id));
    forkedAt.delete(worker.id);
    ready.delete(worker.id);
    timedOut.delete(worker.id);
    if (decision.action === 'give-up') {
      logger.error(
        { worker: worker.id, code, signal, crashes: decision.crashes },
        'Workers Failing At Start-up: giving up (see the workers\' errors above)',
      );
      stopping = true;
      giveUp?.();
      return;
    }
    const exited = { worker: worker.id, code, signal, uptime_ms: uptimeMs, restart_in_ms: decision.delayMs };
    // Replacements keep failing at start while the others serve: an error, as the give-up was, for the operator
    // alerting on errors (the reason is the worker's own line above); the gateway runs a worker short meanwhile.
    if (decision.failing) logger.error(exited, 'Worker Failing At Start-up: restarting it while the other workers serve');
    else logger.warn(exited, 'Worker Exited');
    const timer = setTimeout(() => {
      restarting.delete(timer);
      fork();
    }, decision.delayMs);
    restarting.add(timer);
  });
  // The primary reads and checks the file, then every worker applies it; a refusal is logged as "Config Rejected".
  if (signals.reload.missed) logger.info({ reason: 'asked for during start-up: reloading now that the workers are forked' }, EVENTS.reloadQueued);
  signals.reload.set(() => void owner.reload().catch(() => undefined));
  // Each worker appends to the access-log file itself: a rotation signal sent to the primary is passed on, to the
  // workers listening for it. One still loading its code (a restart) would open Node's inspector, or die; it has not
  // opened the file yet, and opens it by name after the rotation.
  signals.reopen.set(() => {
    for (const worker of Object.values(cluster.workers ?? {})) {
      if (worker !== undefined && owner.listensForSignals(worker)) worker.process.kill('SIGUSR1');
    }
  });
  // A second SIGTERM or SIGINT while the workers drain (an impatient operator, a supervisor's escalation) runs
  // forceStop, set below: stop now, without leaving a worker behind.
  let forceStop: (() => void) | undefined;
  const signalled = new Promise<void>((resolve) => {
    signals.stop.set(() => (forceStop ?? resolve)());
    faults.stopWith(resolve);
  });
  const outcome = await Promise.race([signalled.then(() => 0), gaveUp.then(() => 1)]);
  stopping = true;
  owner.stop();
  watchdog.stop();
  for (const timer of starting.values()) clearTimeout(timer);
  starting.clear();
  for (const timer of restarting) clearTimeout(timer);
  restarting.clear();
  // The primary alone ending by Node's default action would leave a stopped or stuck worker to outlive it.
  forceStop = (): void => {
    if (forcing) return;
    for (const worker of Object.values(cluster.workers ?? {})) worker?.process.kill('SIGKILL');
    exitForced(log, 'a second stop signal while the workers drain: killing them (SIGKILL)');
  };
  const { killed, failed } = await stopWorkers(stopDeadlineMs(owner.config), logger, (worker) => ready.has(worker.id));
  flushLogger(log);
  if (fatalStart !== undefined) throw fatalStart; // cli.ts prints it ("portcullis: config error: ...") and exits 1
  const code = killed > 0 || failed > 0 || faults.fatal ? 1 : outcome;
  exitOnceStopped(log, code);
  return code;
}

/**
 * A worker's environment: the one the accepted config was read with, not the primary's as it is now. Every reload
 * reads .env into the primary's environment before the config is checked, so after a refused reload the primary's
 * environment holds the refused .env's values: a worker restarted on it ran them (its LOG_LEVEL, what its plugins
 * read) beside siblings on the accepted ones. node:cluster lays `env` over process.env, and a variable given as
 * undefined is left out of the child's environment, so one the refused .env added is unset. `own` goes over it all
 * (PORTCULLIS_DATA_DIR, fixed at start; the admin role). A worker never reads .env itself (cli.ts).
 */
function forkEnvironment(accepted: Readonly<Record<string, string>>, own: Record<string, string>): Record<string, string | undefined> {
  const env: Record<string, string | undefined> = {};
  for (const name of Object.keys(process.env)) if (!Object.hasOwn(accepted, name)) env[name] = undefined;
  return { ...env, ...accepted, ...own };
}

/**
 * Sends every worker SIGTERM (each drains and exits) and resolves once all have exited, with the number of those
 * that had not after `deadlineMs` and were killed (SIGKILL, logged): a worker stopped or stuck in a synchronous loop
 * never acts on SIGTERM, and the primary would wait for it forever. And with the number of serving workers that
 * ended otherwise than by their drain while it ran (killed by someone else, or a fatal error: `Worker Exited`, an
 * error): the requests one still held were cut, so the stop fails (exit 1) as a single process's would. A drained
 * worker exits 0; one still starting (a failed start stops the gateway) has its own line and cut nothing.
 */
async function stopWorkers(
  deadlineMs: number,
  logger: LoggerHandle['logger'],
  serving: (worker: Worker) => boolean,
): Promise<{ killed: number; failed: number }> {
  const workers = Object.values(cluster.workers ?? {}).filter((worker): worker is Worker => worker !== undefined);
  let failed = 0;
  let killing = false;
  const exited = Promise.all(
    workers.map(
      (worker) =>
        new Promise<void>((resolve) => {
          if (worker.isDead()) return resolve();
          worker.once('exit', (code: number | null, signal: NodeJS.Signals | null) => {
            // As things stood at the exit: a worker that ended before the deadline is judged so, whenever its channel
            // closes (the deadline may pass during that wait).
            const killedByUs = killing;
            let judged = false;
            const judge = (): void => {
              if (judged) return; // once: the bound's, or the disconnect's that came after it
              judged = true;
              if ((code !== 0 || signal !== null) && !killedByUs && serving(worker) && !drainedBeforeSignal(worker, signal)) {
                failed++;
                logger.error({ worker: worker.id, pid: worker.process.pid, code, signal, reason: 'ended while the gateway was stopping, before its drain was done' }, 'Worker Exited');
              }
              resolve();
            };
            // Its last messages (the disconnect that says it drained) are read by the time its channel is closed,
            // which may come a moment after its exit; bounded, as a channel that never closes tells nothing more.
            if (!worker.isConnected()) return judge();
            const bound = setTimeout(judge, CHANNEL_CLOSE_WAIT_MS);
            worker.once('disconnect', () => {
              clearTimeout(bound);
              judge();
            });
          });
        }),
    ),
  );
  for (const worker of workers) worker.process.kill('SIGTERM');
  let timer: NodeJS.Timeout | undefined;
  const inTime = await Promise.race([
    exited.then(() => true),
    new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(false), deadlineMs))),
  ]);
  clearTimeout(timer);
  if (inTime) return { killed: 0, failed };
  const stuck = workers.filter((worker) => !worker.isDead());
  if (stuck.length === 0) {
    // Every worker exited in time; a judgement still waits on a channel's close (at most CHANNEL_CLOSE_WAIT_MS).
    await exited;
    return { killed: 0, failed };
  }
  killing = true;
  logger.error(
    {
      workers: stuck.map((worker) => ({ worker: worker.id, pid: worker.process.pid })),
      deadline_ms: deadlineMs,
      reason: `${stuck.length} worker(s) had not exited ${deadlineMs} ms after SIGTERM: killed (SIGKILL)`,
    },
    'Workers Killed At Shutdown',
  );
  for (const worker of stuck) worker.process.kill('SIGKILL');
  await exited;
  return { killed: stuck.length, failed };
}

/** How long the stop waits, after a worker's exit, for its channel to close and its last messages to be read. */
const CHANNEL_CLOSE_WAIT_MS = 1_000;

/**
 * A worker that had drained and disconnected (run-gateway's serveUntilStopped: cluster.worker.disconnect() once its
 * gateway closed) and was then ended by SIGTERM: the primary's relayed signal, which reaches a worker that already
 * had one from a signal to the whole process group, landed as the worker was exiting. Node restores a signal's
 * default action as it tears the process down, so a SIGTERM in that moment ends the process by the signal, its
 * listener gone (measured: 40 of 40 exits so hit). Nothing was cut: its drain was done. Counted a failure, it made a
 * clean stop of a loaded gateway exit 1 now and then.
 */
function drainedBeforeSignal(worker: Worker, signal: NodeJS.Signals | null): boolean {
  return signal === 'SIGTERM' && worker.exitedAfterDisconnect;
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
