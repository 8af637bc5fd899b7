// The pino root logger: JSON by default, readable on a terminal, level from config or LOG_LEVEL.
import { isatty } from 'node:tty';
import { pino, type Logger, type LevelWithSilent } from 'pino';
import type { Config } from '../config/schema.js';
import { LineWriter } from './line-writer.js';

export type { Logger };

/** The root logger, and the raw sink behind it when lines are JSON (the access log writes there directly). */
export interface LoggerHandle {
  readonly logger: Logger;
  readonly sink: LineWriter | undefined;
}

const LEVELS: ReadonlySet<string> = new Set(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']);

/**
 * Builds the root logger once at start-up. JSON lines go through an asynchronous buffered destination (the
 * per-request lines are on the hot path), flushed at least every 250 ms; `flushLogger` must run before exit. On a
 * terminal, or with format "pretty", lines are rendered by pino-pretty in a worker thread.
 */
export function createLogger(config: Config['logging'], env: NodeJS.ProcessEnv = process.env): LoggerHandle {
  // An unknown LOG_LEVEL is ignored rather than fatal: the config's level still applies.
  const level = (env.LOG_LEVEL !== undefined && LEVELS.has(env.LOG_LEVEL) ? env.LOG_LEVEL : config.level) as LevelWithSilent;
  // isatty(1), not process.stdout.isTTY: creating process.stdout would switch a piped fd 1 to non-blocking mode.
  const pretty = config.format === 'pretty' || (config.format === 'auto' && isatty(1));
  const base = { service: 'portcullis' };
  if (pretty) {
    const logger = pino({
      level,
      base,
      transport: { target: 'pino-pretty', options: { translateTime: 'SYS:HH:MM:ss.l', ignore: 'pid,hostname,service' } },
    });
    return { logger, sink: undefined };
  }
  // One ordered, buffered stream for pino's lines and the access log's; flushed at least every 200 ms so an idle
  // gateway does not hold its last lines. Time is epoch milliseconds (pino's default), the cheapest.
  const sink = new LineWriter(1);
  return { logger: pino({ level, base }, sink), sink };
}

/** Writes out buffered log lines; call before the process exits. */
export function flushLogger(handle: LoggerHandle): void {
  handle.sink?.end();
}
