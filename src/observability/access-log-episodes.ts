// Failed writes to the access-log file as episodes on the process log: one warning when writes begin to fail, one line
// once they have succeeded again and none has failed for QUIET_MS, as the local-resource episodes are told
// (resource-episodes.ts). LineWriter tells each failure after a success and each success after a failure: on a disk
// hovering at full (a log shipper freeing space as the gateway fills it) that is a pair of lines per flush, five a
// second, the very flood an episode is there to spare the process log.
import type { Logger } from 'pino';
import type { FailureWatch } from './line-writer.js';
import { EVENTS } from './events.js';
import { QUIET_MS } from './resource-episodes.js';

interface Episode {
  /** The code of the episode's first failure: ENOSPC, EIO, EFBIG... */
  readonly code: string;
  readonly startedAt: number;
  lastFailureAt: number;
  /** Failures the writer told of (each a run of failed writes between two that succeeded). */
  failures: number;
  /** Lines dropped during the episode, summed over the writer's recoveries. */
  dropped: number;
  /** A write succeeded since the last failure. */
  succeeded: boolean;
}

/**
 * The FailureWatch of the access-log file `path` (the operator's config value), telling `logger`. `quietMs` is the
 * time with no failure, and a write that succeeded, that ends an episode.
 */
export function accessLogEpisodes(logger: Pick<Logger, 'warn' | 'info'>, path: string, quietMs = QUIET_MS): FailureWatch {
  let episode: Episode | undefined;
  let timer: NodeJS.Timeout | undefined;
  const closeIfQuiet = (): void => {
    if (episode === undefined) return;
    const now = performance.now();
    if (!episode.succeeded || now - episode.lastFailureAt < quietMs) return;
    const { code, failures, dropped, startedAt, lastFailureAt } = episode;
    episode = undefined;
    clearInterval(timer);
    timer = undefined;
    const fields = { event: EVENTS.accessLogWriteRecovered, path, code, failures, dropped, lasted_ms: Math.round(lastFailureAt - startedAt) };
    logger.info(fields, EVENTS.accessLogWriteRecovered);
  };
  return {
    failed(code: string): void {
      const now = performance.now();
      if (episode !== undefined) {
        episode.failures++;
        episode.lastFailureAt = now;
        episode.succeeded = false;
        return;
      }
      episode = { code, startedAt: now, lastFailureAt: now, failures: 1, dropped: 0, succeeded: false };
      logger.warn({ event: EVENTS.accessLogWriteFailed, path, code }, EVENTS.accessLogWriteFailed);
      // Unref'd: an episode still open never holds a stopping process.
      timer = setInterval(closeIfQuiet, Math.max(1, Math.floor(quietMs / 5))).unref();
    },
    recovered(dropped: number): void {
      if (episode === undefined) return;
      episode.dropped += dropped;
      episode.succeeded = true;
    },
  };
}
