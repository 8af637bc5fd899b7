// The pino root logger: JSON by default, readable on a terminal, level from config or LOG_LEVEL.
import { pino, type Logger, type LevelWithSilent } from 'pino';
import type { Config } from '../config/schema.js';

export type { Logger };

/**
 * Builds the root logger once at start-up. JSON lines go through an asynchronous buffered destination (the
 * per-request lines are on the hot path); `flushLogger` must run before exit. On a terminal, or with
 * format "pretty", lines are rendered by pino-pretty in a worker thread.
 */
export function createLogger(config: Config['logging'], env: NodeJS.ProcessEnv = process.env): Logger {
  const level = (env.LOG_LEVEL as LevelWithSilent | undefined) ?? config.level;
  const pretty = config.format === 'pretty' || (config.format === 'auto' && process.stdout.isTTY === true);
  const base = { service: 'portcullis' };
  if (pretty) {
    return pino({
      level,
      base,
      transport: { target: 'pino-pretty', options: { translateTime: 'SYS:HH:MM:ss.l', ignore: 'pid,hostname,service' } },
    });
  }
  return pino(
    { level, base, timestamp: pino.stdTimeFunctions.isoTime },
    pino.destination({ dest: 1, sync: false, minLength: 4096 }),
  );
}

/** Writes out buffered log lines; call before the process exits. */
export function flushLogger(logger: Logger): void {
  try {
    logger.flush();
  } catch {
    // a logger whose destination is not ready yet has nothing to flush
  }
}
