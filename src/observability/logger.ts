// The pino root logger: JSON by default, readable on a terminal, level from config or LOG_LEVEL; and the access-log
// destination (stdout, or its own file).
import { fstatSync } from 'node:fs';
import { isatty } from 'node:tty';
import { pino, type DestinationStream, type Logger, type LevelWithSilent } from 'pino';
import type { Config } from '../config/schema.js';
import { END_BOUND_MS, LineWriter, countDroppedLine } from './line-writer.js';
import { prettySafeLine } from './pretty-line.js';
import { EVENTS } from './events.js';
import { AccessLogFile } from './access-log-file.js';
import { accessLogEpisodes } from './access-log-episodes.js';
import { flushAtExit } from './exit-flush.js';
import { logLevelFromEnv, warnIfNotALevel } from '../config/log-level.js';

export type { Logger };

/** The root logger, and the raw sinks behind it when lines are JSON (the access log writes there directly). */
export interface LoggerHandle {
  readonly logger: Logger;
  /** The stdout writer in JSON mode; undefined when pretty (pino-pretty owns stdout). */
  readonly sink: LineWriter | undefined;
  /** The pretty transport's bounded front, when pretty. */
  readonly pretty?: BoundedTransport;
  /**
   * Where the per-request access lines go as JSON: the `logging.access_log_file` writer, else `sink`. Undefined
   * means through pino (pretty output, no file).
   */
  readonly accessSink: LineWriter | undefined;
  /** Reopens the access-log file after a rotation (SIGUSR1); nothing to do without a file. */
  reopenAccessLog(): void;
}

/**
 * The base fields of every line (pino's `base`, so no pid or hostname), which every line has as it has level, time
 * and msg. A log call must not pass a field of these names: the line would hold the key twice, which strict JSON
 * ingesters refuse (and lenient ones resolve either way). A field naming a service of the config is
 * `upstream_service`.
 */
export const LOG_BASE = { service: 'portcullis' } as const;

/**
 * Builds the root logger once at start-up. JSON lines go through an asynchronous buffered destination (the
 * per-request lines are on the hot path), flushed at least every 250 ms; `flushLogger` must run before exit. On a
 * terminal, or with format "pretty", lines are rendered by pino-pretty in a worker thread. An access-log file is
 * always JSON lines, whatever the format (it is for shipping). Throws AccessLogFileError when it cannot be opened.
 */
export function createLogger(
  config: Config['logging'],
  options: {
    readonly env?: NodeJS.ProcessEnv;
    /** Open `access_log_file` (default true; not in a cluster primary). */
    readonly accessLog?: boolean;
    /** Other processes write to the same stdout (a cluster's primary and workers): see LineWriterOptions.shared. */
    readonly sharedStdout?: boolean;
    /**
     * A cluster worker's id (node:cluster's, as the primary's Worker Exited lines name it): every operational line of
     * the worker carries it as `worker`, so a worker's Uncaught Exception, Gateway Stopping or Config Rejected reads as
     * that worker's and not the whole gateway's. (The JSON per-request access lines, written by hand, do not.)
     */
    readonly workerId?: number | undefined;
  } = {},
): LoggerHandle {
  const env = options.env ?? process.env;
  // An unknown LOG_LEVEL is not fatal: the config's level applies, and the first line says so.
  const fromEnv = logLevelFromEnv(env.LOG_LEVEL);
  const level = fromEnv ?? (config.level as LevelWithSilent);
  // isatty(1), not process.stdout.isTTY: creating process.stdout would switch a piped fd 1 to non-blocking mode.
  const pretty = config.format === 'pretty' || (config.format === 'auto' && isatty(1));
  const base = options.workerId === undefined ? LOG_BASE : { ...LOG_BASE, worker: options.workerId };
  const file = config.access_log_file === '' || options.accessLog === false ? undefined : new AccessLogFile(config.access_log_file);
  const withFile = (logger: Logger, sink: LineWriter | undefined, pretty?: BoundedTransport): LoggerHandle => {
    // A full disk or a failing device under the file: said on the process log, once per episode (the drop report
    // the writer appends goes to the failing file itself). The path is the operator's own config value.
    file?.writer.watchFailures(accessLogEpisodes(logger, config.access_log_file));
    warnIfNotALevel(logger, env, level);
    return handleOf(logger, sink, pretty);
  };
  const handleOf = (logger: Logger, sink: LineWriter | undefined, pretty?: BoundedTransport): LoggerHandle => ({
    logger,
    sink,
    pretty,
    accessSink: file?.writer ?? sink,
    // A failed reopen leaves the lines going to the renamed file, which logrotate may compress or delete: say so.
    reopenAccessLog: () => file?.reopen((code) => logger.warn({ path: config.access_log_file, code }, EVENTS.accessLogReopenFailed)),
  });
  if (pretty) {
    const transport = pino.transport({
      target: 'pino-pretty',
      options: { translateTime: 'SYS:HH:MM:ss.l', ignore: 'pid,hostname,service' },
      // No exit hook of pino's: it flushes the worker synchronously at process.exit() and, when the worker's stdout
      // takes nothing, blocks the main thread 10 s and then throws out of process.exit(): a forced stop (a second
      // SIGTERM) never exited. BoundedTransport has its own, bounded one.
      worker: { autoEnd: false },
    }) as unknown as PrettyTransport;
    const bounded = new BoundedTransport(transport);
    const logger = pino(
      {
        level,
        base,
        // pino-pretty parses each line and prints its values on the terminal: a control character escaped in the JSON
        // (as LineWriter does) would be printed raw again, so it goes as visible text; and a line break in the message
        // or a field name, which it prints as text, too (pretty-line.ts).
        hooks: { streamWrite: prettySafeLine },
      },
      bounded,
    );
    return withFile(logger, undefined, bounded);
  }
  // One ordered, buffered stream for pino's lines and the access log's; flushed at least every 200 ms so an idle
  // gateway does not hold its last lines. Time is epoch milliseconds (pino's default), the cheapest.
  const sink = new LineWriter(1, { shared: (options.sharedStdout ?? false) && isPipe(1) });
  return withFile(pino({ level, base }, sink), sink);
}

/** The most the pretty transport holds in the main thread beyond its 4 MiB shared with the worker. */
const PRETTY_HELD_BYTES = 12 * 1024 * 1024;

/**
 * Whether thread-stream's worker has read everything put in the memory it shares with the main thread (its read index
 * at its write index; thread-stream's lib/indexes.js). Read from the stream's internal state, which thread-stream does
 * not expose: false when it is not found (another version), so the exit never waits on a guess.
 */
function workerCaughtUp(stream: PrettyTransport): boolean {
  const key = Object.getOwnPropertySymbols(stream).find((k) => k.description === 'kImpl');
  const state = key === undefined ? undefined : (stream as unknown as Record<symbol, { state?: unknown }>)[key]?.state;
  if (!(state instanceof Int32Array) || state.length <= THREAD_STREAM_READ_INDEX) return false;
  return Atomics.load(state, THREAD_STREAM_READ_INDEX) === Atomics.load(state, THREAD_STREAM_WRITE_INDEX);
}
const THREAD_STREAM_WRITE_INDEX = 4;
const THREAD_STREAM_READ_INDEX = 8;

/** What BoundedTransport uses of pino's transport stream (thread-stream). */
interface PrettyTransport {
  write(line: string): boolean;
  on(event: 'drain' | 'close', listener: () => void): unknown;
  on(event: 'error', listener: (err: unknown) => void): unknown;
  /** Calls back once the worker has written out what it was handed (an error when the worker is gone). */
  flush(done: (err?: unknown) => void): void;
  /** Hands the worker what is held and waits until it has read it: up to 10 s, then throws. */
  flushSync(): void;
  readonly destroyed: boolean;
  readonly worker: { terminate(): Promise<number> };
}

/**
 * The pretty transport with a bound. pino-pretty runs in a worker thread that stops taking lines while its stdout
 * takes none (a terminal paused with Ctrl-S, a pipe nobody reads); thread-stream then keeps every line the main thread
 * writes, without limit (up to V8's longest string, 512 MiB, before it blocks the event loop). Lines are dropped and
 * counted once it holds PRETTY_HELD_BYTES beyond its 4 MiB of shared memory, until it takes lines again: 16 MiB in
 * all, as the JSON writer drops past its 16 MiB.
 *
 * Not at its first write() false: thread-stream's shared buffer is linear, its write index back at 0 only once it
 * reached the 4 MiB end and the worker read all of it, so write() answers false after every 4 MiB written however
 * fast the worker reads, and whenever a burst outruns the worker for a moment. Dropping from there lost a third of
 * the lines of a busy gateway whose terminal kept up (review9-output-pretty-reading).
 */
class BoundedTransport implements DestinationStream {
  /** Bytes handed to the transport since its write() last answered true or it drained (0: it takes lines). */
  #held = 0;
  /** end() ran and the worker has not yet written out its lines, nor been given up. */
  #ending = false;

  constructor(private readonly inner: PrettyTransport) {
    flushAtExit(this); // as pino's own hook did, but bounded: see flushAtExit below
    inner.on('drain', () => (this.#held = 0));
    inner.on('close', () => (this.#ending = false));
    // The worker gone (given up at the stop, or crashed): its lines are counted as dropped (write() below) rather
    // than the stream's error ending the gateway.
    inner.on('error', () => undefined);
  }

  write(line: string): void {
    if (this.inner.destroyed) {
      countDroppedLine('stdout');
      return;
    }
    if (this.#held === 0) {
      // The usual case: one write, no length taken.
      if (!this.inner.write(line)) this.#held = line.length;
      return;
    }
    // Behind: held in the main thread, up to the bound. Bytes, not UTF-16 units, for what is held.
    const bytes = Buffer.byteLength(line);
    if (this.#held + bytes > PRETTY_HELD_BYTES) countDroppedLine('stdout');
    else this.#held = this.inner.write(line) ? 0 : this.#held + bytes;
  }

  /**
   * At the stop: the worker writes out what it holds, for at most `boundMs`; a worker whose stdout takes nothing is
   * then ended. Left to itself, pino flushes the transport synchronously as the process exits: against a stalled
   * stdout that waited 10 s on the main thread, then threw out of process.exit(), and the process never exited.
   */
  end(boundMs: number): void {
    if (this.#ending || this.inner.destroyed) return;
    this.#ending = true;
    const giveUp = setTimeout(() => void this.inner.worker.terminate().catch(() => undefined), boundMs);
    giveUp.unref();
    this.inner.flush((err) => {
      clearTimeout(giveUp);
      if (err === undefined || err === null) this.#ending = false; // else: the worker is gone, 'close' follows
    });
  }

  /**
   * The process exits now (after a stop, or at once: a forced stop, a failed start): the lines not yet handed to the
   * worker are, and it gets to print them, as pino's own exit hook did; but only while the worker has read all it was
   * handed before. One that has not is behind a stdout that takes nothing, and thread-stream's synchronous flush
   * would block the exit 10 s, then throw out of it. Its lines are then left, as they would be at 5 s anyway.
   */
  flushAtExit(): void {
    if (this.inner.destroyed || !workerCaughtUp(this.inner)) return;
    try {
      this.inner.flushSync();
    } catch {
      // the worker went away meanwhile: nothing more to print
    }
  }

  /** Nothing held for the worker at the stop: its lines are written, or it was given up (and is closed). */
  get settled(): boolean {
    return !this.#ending;
  }

  /** The worker has printed every line handed to it so far: its stdout takes lines. */
  get caughtUp(): boolean {
    return !this.inner.destroyed && workerCaughtUp(this.inner);
  }
}

/** Writes out buffered log lines; call before the process exits. */
export function flushLogger(handle: LoggerHandle): void {
  handle.pretty?.end(END_BOUND_MS);
  handle.sink?.end();
  if (handle.accessSink !== handle.sink) handle.accessSink?.end();
}

/**
 * Whether the pretty format's worker has printed every line so far (false without one). Asked before a forced stop's
 * last line: a worker that keeps up gets a moment to print it; one behind a stdout that takes nothing is not waited for.
 */
export function prettyCaughtUp(handle: LoggerHandle): boolean {
  return handle.pretty?.caughtUp ?? false;
}

/** After flushLogger: whether the writers are done, every line written or given up (at most END_BOUND_MS). */
export function loggerSettled(handle: LoggerHandle): boolean {
  return (handle.pretty?.settled ?? true) && (handle.sink?.settled ?? true) && (handle.accessSink?.settled ?? true);
}

/**
 * flushLogger for a logger whose process goes on (an embedded gateway's close()): the access-log file's descriptor
 * is closed too, once its last lines are written. stdout is flushed, never closed.
 */
export async function closeLogger(handle: LoggerHandle): Promise<void> {
  handle.sink?.end();
  if (handle.accessSink !== handle.sink) await handle.accessSink?.close();
}

/**
 * Whether `fd` is a pipe or a socket, where a write of more than PIPE_BUF bytes can reach the reader in pieces with
 * other writers' bytes between them. Writes to a regular file through one shared file description (stdout
 * inherited by the workers) do not interleave: the kernel serialises them on its offset. So those keep large writes.
 */
function isPipe(fd: number): boolean {
  try {
    const stat = fstatSync(fd);
    return stat.isFIFO() || stat.isSocket();
  } catch {
    return false; // closed: nothing will be read anyway
  }
}
