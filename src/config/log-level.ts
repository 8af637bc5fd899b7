// LOG_LEVEL, which wins over `logging.level` at start-up and at every reload (README): read in any case, spaces
// around it ignored. `LOG_LEVEL=WARN` used to be ignored without a word, the gateway logging at info.
import type { LevelWithSilent, Logger } from 'pino';

const LEVELS: ReadonlySet<string> = new Set(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']);

/** The level LOG_LEVEL names; undefined when it is unset or names none (the config's level applies). */
export function logLevelFromEnv(value: string | undefined): LevelWithSilent | undefined {
  const level = value?.trim().toLowerCase();
  return level !== undefined && LEVELS.has(level) ? (level as LevelWithSilent) : undefined;
}

/**
 * Warns when LOG_LEVEL is set to something that is no level (the config's `level_used` then applies): at start-up, and
 * after every reload that applied a config, since each reload reads .env again and a typo there (`LOG_LEVEL=wrn`) put
 * the gateway back on the file's level without a word.
 */
export function warnIfNotALevel(logger: Pick<Logger, 'warn'>, env: NodeJS.ProcessEnv, levelUsed: string): void {
  const value = env.LOG_LEVEL;
  if (value === undefined || value.trim() === '' || logLevelFromEnv(value) !== undefined) return;
  logger.warn({ level_used: levelUsed }, "LOG_LEVEL is not a level (fatal, error, warn, info, debug, trace or silent): the config's logging.level applies");
}
