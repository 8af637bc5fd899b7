// What a gateway process does with an error nothing caught. Node's default prints the stack to stderr and ends the
// process at once, dropping every request in flight, for one plugin's stray timer or forgotten promise:
// - a rejection nobody handled is logged (rate-bounded) and the process goes on: a promise that rejected has run
//   its course, and nothing else is left half done by it;
// - an exception thrown from a callback nobody guarded (a timer, an event listener) may have left any state half
//   updated, so Node's own advice holds (do not resume normal operation): it is logged, and the gateway stops as on
//   SIGTERM, draining its requests, then exits 1 for its supervisor to start a fresh one (the cluster primary, a
//   systemd unit or Docker's restart policy). During start-up, with nothing to drain, it exits 1 at once.
// Neither line carries the error's message or stack: plugin code throws its own words, which may hold data. What it
// carries is the error's class, a Node-style code, and the first stack frame outside Node (file:line:column, the
// column because the bundle's chunks are one line each), which names the plugin or module to look at.
import { fileURLToPath } from 'node:url';
import { relative, sep } from 'node:path';
import type { Logger } from 'pino';
import { flushLogger, type LoggerHandle } from './observability/logger.js';
import { packageRoot } from './package-version.js';

/** At most one "Unhandled Rejection" line per window; the others are counted into the next line. */
const REJECTION_LOG_WINDOW_MS = 10_000;

/** A code as Node and libc spell theirs (ERR_STREAM_DESTROYED, ECONNRESET): a name, not data. */
const NODE_CODE = /^(ERR_[A-Z0-9_]{1,60}|E[A-Z]{2,15})$/;

/** The class of a thrown value, and its code when that is a Node-style one; never its message. */
export function faultClass(thrown: unknown): string {
  if (!(thrown instanceof Error)) return thrown === null ? 'null' : typeof thrown;
  const name = thrown.constructor?.name || 'Error';
  const code = (thrown as { code?: unknown }).code;
  return typeof code === 'string' && NODE_CODE.test(code) ? `${name}(${code})` : name;
}

/**
 * The first frame of `thrown`'s stack outside Node's own modules, as `file:line:column`: relative to the installation
 * when it is Portcullis's own code, without the query a plugin's URL carries (its version). Undefined without a stack.
 */
export function faultOrigin(thrown: unknown): string | undefined {
  const stack = thrown instanceof Error && typeof thrown.stack === 'string' ? thrown.stack : undefined;
  if (stack === undefined) return undefined;
  for (const line of stack.split('\n')) {
    const match = /^\s+at (?:.*\()?(.+?):(\d+:\d+)\)?$/.exec(line);
    if (match === null) continue;
    let file = match[1]!;
    if (file.startsWith('node:') || file === 'native' || file.startsWith('<')) continue;
    file = file.replace(/\?[^:]*$/, '');
    if (file.startsWith('file://')) {
      try {
        file = fileURLToPath(file);
      } catch {
        // not a local file URL: shown as written
      }
    }
    const root = packageRoot();
    if (root !== undefined && file.startsWith(root)) file = relative(root, file).split(sep).join('/');
    return `${file.slice(-200)}:${match[2]!}`;
  }
  return undefined;
}

/** The process's fault handling, installed once a logger exists (watchProcessFaults). */
export interface ProcessFaults {
  /**
   * What an uncaught exception does from now on: stop the gateway (drain, exit 1). Called at once when one already
   * came. Before it is set, an uncaught exception ends the process at once (start-up: nothing to drain).
   */
  stopWith(stop: () => void): void;
  /** An uncaught exception came: the process must exit non-zero. */
  readonly fatal: boolean;
}

/** Installs the handlers for the rest of the process's life (the `start` command only). */
export function watchProcessFaults(log: LoggerHandle): ProcessFaults {
  const logger: Logger = log.logger;
  let stop: (() => void) | undefined;
  let fatal = false;
  let windowEnds = 0;
  let suppressed = 0;
  process.on('unhandledRejection', (reason) => {
    // Monotonic: on the wall clock a step back of 10 minutes (NTP, a restored snapshot) silenced every line for 10
    // minutes plus the window.
    const now = performance.now();
    if (now < windowEnds) {
      suppressed++;
      return;
    }
    windowEnds = now + REJECTION_LOG_WINDOW_MS;
    logger.error(
      { error: faultClass(reason), origin: faultOrigin(reason), suppressed, reason: 'a promise rejected and nothing handled it; the gateway goes on' },
      'Unhandled Rejection',
    );
    suppressed = 0;
  });
  process.on('uncaughtException', (err) => {
    const first = !fatal;
    fatal = true;
    logger.fatal(
      {
        error: faultClass(err),
        origin: faultOrigin(err),
        reason: first
          ? stop === undefined
            ? 'an exception nothing caught, during start-up: exiting'
            : 'an exception nothing caught: the process state is unknown, so the gateway drains its requests and exits 1'
          : 'another exception nothing caught, while stopping',
      },
      'Uncaught Exception',
    );
    if (stop === undefined) {
      flushLogger(log);
      process.exit(1);
    }
    if (first) stop();
  });
  return {
    stopWith(action) {
      stop = action;
      if (fatal) action();
    },
    get fatal() {
      return fatal;
    },
  };
}
