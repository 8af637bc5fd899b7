// How long a cluster primary waits for a worker to start, to apply a reload and to stop before it counts the worker as
// stuck and kills it (SIGKILL). Each deadline is what the worker's own bounds allow (config), plus one margin. Pure.
import { usesRedis } from './kv/open.js';
import type { Config } from './config/schema.js';
import { MAX_TIMER_MS } from './config/duration.js';
import { MIGRATION_TIMEOUT_MS } from './store/migrations/types.js';

/**
 * What a worker's own bounds leave unbounded: parsing the config, reading certificate files, building the route
 * table, loading the code itself (a worker's start), closing store connections and the last trace export (5 s, a
 * worker's stop), on a machine that may be busy serving. Generous, because missing a deadline gets the worker
 * killed; short enough that a stuck worker is found and replaced within seconds, not minutes.
 */
const MARGIN_MS = 10_000;

/**
 * How long the primary waits for a serving worker to apply `config` before it counts the worker as stuck. Everything
 * slow in a worker's reload is bounded by the worker itself, each by middleware.plugin_load_timeout: each plugin's
 * import and then its create(), one plugin after the other, and on a failure the close() of those it created
 * (together). A worker whose event loop runs answers within that, even if only to refuse; one that has not answered
 * after it plus MARGIN_MS is not running its event loop (stopped, in an endless synchronous loop, swapping), so it
 * serves no requests either. A fixed 30 s would be too short for a config whose plugins legitimately take their
 * full budgets, and far too long for the usual config without plugins.
 */
export function applyDeadlineMs(config: Config): number {
  return timerBound(pluginSteps(config, 2 * config.plugins.length + 1) + MARGIN_MS);
}

/**
 * How long the primary waits, from the fork, for a worker started on `config` to serve (its gateway runs) before it
 * kills it as a failed start. A start-up does what a reload does (the plugins, bounded alike: applyDeadlineMs) and
 * opens the stores. With auth on PostgreSQL that includes the migrations, each statement bounded by
 * MIGRATION_TIMEOUT_MS, the wait for the advisory lock another worker holds while it migrates included. With auth on
 * SQLite the primary has migrated the store before forking (primary-migration.ts: an index build has no bound to
 * count here), and a worker's own migrate() only checks, but it takes the write lock for that, waiting up to
 * MIGRATION_TIMEOUT_MS while another connection holds it (a sibling's start, another gateway or `portcullis migrate`
 * on the file). A start-up waits for its Redis connection for redis.command_timeout at most (a Redis that is down
 * does not hold it longer: connecting goes on in the background). 10 s with the defaults and no plugins or Redis.
 */
export function startDeadlineMs(config: Config): number {
  const migrations = config.middleware.auth.enabled ? MIGRATION_TIMEOUT_MS : 0;
  const redis = usesRedis(config.redis) ? config.redis.command_timeout : 0;
  return timerBound(applyDeadlineMs(config) + migrations + redis);
}

/**
 * How long the primary waits, from its SIGTERM, for a worker running `config` to exit before it kills it. A worker's
 * stop lets its requests finish for at most server.timeouts.shutdown_drain, waits for a reload's create() under way
 * (a stop abandons the reload once it returns), then closes its plugins (all together), each within
 * middleware.plugin_load_timeout; then its stores and its tracing. 20 s with the defaults and no plugins.
 */
export function stopDeadlineMs(config: Config): number {
  return timerBound(config.server.timeouts.shutdown_drain + pluginSteps(config, 2) + MARGIN_MS);
}

/**
 * A deadline as a setTimeout delay. Each sums or multiplies durations the config caps at a timer's longest delay, so
 * a long plugin_load_timeout or shutdown_drain would add up past it, and Node fires such a timer after 1 ms: every
 * worker killed at once as stuck. Past the cap, the deadline means "wait", which is what those settings asked for.
 */
function timerBound(ms: number): number {
  return Math.min(ms, MAX_TIMER_MS);
}

/** `steps` plugin_load_timeout budgets (an import, a create() or the close()s), when the config has plugins at all. */
function pluginSteps(config: Config, steps: number): number {
  return config.plugins.length === 0 ? 0 : steps * config.middleware.plugin_load_timeout;
}
