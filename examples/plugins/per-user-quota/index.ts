// Example plugin: a daily request quota per user (or API consumer), counted in the gateway's store.
//
//   plugins:                  # in config/proxy.yaml: module paths start at the config file's directory
//     - { name: quota, module: ../examples/plugins/per-user-quota/index.ts, config: { daily_limit: 1000 } }
//   middleware:
//     plugins: [quota]
//
// Callers that are neither (no token on a public path) are not counted. The count lives in api.store, so with
// redis.url every gateway process shares it; the day is the UTC day.
import type { Plugin, PluginContext } from 'portcullis';

export interface QuotaConfig {
  /** Requests a user may make per UTC day. */
  readonly daily_limit: number;
  /** The 429's message. */
  readonly message?: string;
}

const DAY_MS = 86_400_000;
const REMAINING = 'x-quota-remaining';

/** Who is counted: the API consumer, else the user, else nobody. */
function callerKey(ctx: PluginContext): string | undefined {
  if (ctx.consumer) return `consumer:${ctx.consumer.id}`;
  if (ctx.user) return `user:${ctx.user.id}`;
  return undefined;
}

const plugin: Plugin<QuotaConfig> = {
  name: 'per-user-quota',

  validate(config) {
    const c = config as Partial<QuotaConfig> | undefined;
    if (!Number.isInteger(c?.daily_limit) || c!.daily_limit! < 1) throw new Error('daily_limit must be a positive integer');
    if (c!.message !== undefined && typeof c!.message !== 'string') throw new Error('message must be a string');
  },

  create(config, api) {
    const message = config.message ?? 'Daily quota exceeded';
    const refused = api.metrics.counter({ name: 'quota_refused_total', help: 'Requests refused by the daily quota' });
    return {
      async onRequest(ctx) {
        const who = callerKey(ctx);
        if (who === undefined) return;
        const now = Date.now();
        const day = new Date(now).toISOString().slice(0, 10);
        const untilMidnight = DAY_MS - (now % DAY_MS);
        // The counter expires a minute after the day ends (clock skew between gateways), never mid-day.
        const used = await api.store.incr(`${who}:${day}`, untilMidnight + 60_000);
        const remaining = Math.max(0, config.daily_limit - used);
        ctx.state.set(REMAINING, remaining);
        if (used > config.daily_limit) {
          refused.inc();
          ctx.respond(
            429,
            { error: message, limit: config.daily_limit, request_id: ctx.requestId },
            { 'retry-after': String(Math.ceil(untilMidnight / 1000)) },
          );
        }
      },
      onResponse(ctx) {
        const remaining = ctx.state.get(REMAINING);
        if (typeof remaining === 'number') ctx.responseHeaders.set(REMAINING, String(remaining));
      },
    };
  },
};

export default plugin;
