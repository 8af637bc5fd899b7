// LOG_LEVEL, which wins over `logging.level` at start-up and at every reload (README): read in any case, spaces
// around it ignored. `LOG_LEVEL=WARN` used to be ignored without a word, the gateway logging at info.
import type { LevelWithSilent } from 'pino';

const LEVELS: ReadonlySet<string> = new Set(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']);

/** The level LOG_LEVEL names; undefined when it is unset or names none (the config's level applies). */
export function logLevelFromEnv(value: string | undefined): LevelWithSilent | undefined {
  const level = value?.trim().toLowerCase();
  return level !== undefined && LEVELS.has(level) ? (level as LevelWithSilent) : undefined;
}
