// The plugin instances of a gateway: created at start-up, re-created by a reload only where module or config
// changed (old ones closed), closed on shutdown. Builds the chains (Phases) the composition root wires in.
import type { Logger } from 'pino';
import type { Registry } from 'prom-client';
import type { Config } from '../config/schema.js';
import { ConfigError } from '../config/load.js';
import { describeCause } from '../errors.js';
import type { KvStore } from '../kv/kv-store.js';
import { EVENTS } from '../observability/events.js';
import type { Phase } from '../pipeline/phase.js';
import { createPluginChain, type PluginInstance } from './chain.js';
import type { PluginHooks } from './contract.js';
import { loadPlugins, type LoadedPlugin } from './load.js';
import { PluginMetricCache } from './metrics.js';
import { createPluginStore } from './store.js';

export interface PluginHostDeps {
  readonly logger: Logger;
  /** The gateway's KvStore, resolved per call. */
  readonly kv: () => KvStore;
  /** The registry /metrics serves (undefined: plugin metrics are kept but not exported). */
  readonly registry: Registry | undefined;
  /** Where relative module paths start: the config file's directory. */
  readonly baseDir: string;
}

/** A created instance and what it was made from. */
interface LiveInstance extends PluginInstance {
  /** Module identity + config: equal keys mean a reload keeps the instance. */
  readonly key: string;
}

/** The instances a config needs, built beside the running ones until `commit` or `discard`. */
export interface PluginGeneration {
  readonly instances: ReadonlyMap<string, LiveInstance>;
  readonly created: readonly LiveInstance[];
  readonly retired: readonly LiveInstance[];
  readonly timeoutMs: number;
  readonly identityHeaders: ReadonlySet<string>;
}

const HOOKS = ['onRequest', 'onUpstreamRequest', 'onResponse', 'onLog', 'close'] as const;

/** Where a chain sits: the route's service, for ctx.service before an upstream is chosen. */
export interface ChainPlacement {
  readonly service: string | undefined;
}

export class PluginHost {
  readonly #deps: PluginHostDeps;
  readonly #metrics: PluginMetricCache;
  #current: PluginGeneration = { instances: new Map(), created: [], retired: [], timeoutMs: 5_000, identityHeaders: new Set() };
  #closed = false;

  constructor(deps: PluginHostDeps) {
    this.#deps = deps;
    this.#metrics = new PluginMetricCache(deps.registry);
  }

  /**
   * Loads and validates every module of `config` and creates the instances that are new or changed; unchanged
   * ones are carried over. Nothing running is touched. Throws ConfigError (after closing what it created).
   */
  async prepare(config: Config): Promise<PluginGeneration> {
    const loaded = await loadPlugins(config, this.#deps.baseDir);
    const instances = new Map<string, LiveInstance>();
    const created: LiveInstance[] = [];
    const timeoutMs = config.middleware.plugin_timeout;
    try {
      for (const plugin of loaded) {
        const key = `${plugin.moduleKey}\0${JSON.stringify(plugin.config) ?? ''}`;
        const running = this.#current.instances.get(plugin.name);
        if (running !== undefined && running.key === key) {
          instances.set(plugin.name, running);
          continue;
        }
        const instance = await this.#create(plugin, key, timeoutMs);
        created.push(instance);
        instances.set(plugin.name, instance);
      }
    } catch (err) {
      await Promise.all(created.map((instance) => this.#closeInstance(instance, timeoutMs)));
      throw err;
    }
    const kept = new Set(instances.values());
    const retired = [...this.#current.instances.values()].filter((instance) => !kept.has(instance));
    const auth = config.middleware.auth;
    const identityHeaders = new Set([auth.user_id_header.toLowerCase(), auth.user_email_header.toLowerCase()]);
    return { instances, created, retired, timeoutMs, identityHeaders };
  }

  /** Makes `generation` the running one and closes the instances it retired (in the background, logged). */
  commit(generation: PluginGeneration): void {
    this.#current = generation;
    for (const instance of generation.retired) void this.#closeInstance(instance, generation.timeoutMs);
  }

  /** Drops a prepared generation that will not be used (the rest of a reload failed): closes what it created. */
  async discard(generation: PluginGeneration): Promise<void> {
    await Promise.all(generation.created.map((instance) => this.#closeInstance(instance, generation.timeoutMs)));
  }

  /**
   * The Phase running, in order, the first-party instances `builtIn` (a route's header rewrites) and then the
   * instances `names` of `generation` (default: the running one); undefined when there are none.
   */
  chain(names: readonly string[], placement: ChainPlacement, builtIn: readonly PluginInstance[] = [], generation = this.#current): Phase | undefined {
    if (names.length === 0 && builtIn.length === 0) return undefined;
    return createPluginChain({
      instances: [...builtIn, ...names.map((name) => generation.instances.get(name)!)],
      timeoutMs: generation.timeoutMs,
      logger: this.#deps.logger,
      scope: { service: placement.service, identityHeaders: generation.identityHeaders },
    });
  }

  /** Closes every running instance (shutdown). */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    const { instances, timeoutMs } = this.#current;
    await Promise.all([...instances.values()].map((instance) => this.#closeInstance(instance, timeoutMs)));
  }

  async #create(plugin: LoadedPlugin, key: string, timeoutMs: number): Promise<LiveInstance> {
    const at = `plugins[${plugin.index}]`;
    const logger = this.#deps.logger.child({ plugin: plugin.name });
    const kv = this.#deps.kv;
    const api = { logger, metrics: this.#metrics.handle(), store: createPluginStore(plugin.name, kv) };
    let hooks: PluginHooks;
    try {
      hooks = (await bounded(Promise.resolve().then(() => plugin.definition.create(plugin.config, api)), timeoutMs)) as PluginHooks;
    } catch (err) {
      if (err === TIMEOUT) throw new ConfigError(`${at}: create() did not finish within ${timeoutMs} ms`);
      const message = err instanceof Error ? err.message.split('\n')[0]!.slice(0, 200) : String(err);
      throw new ConfigError(`${at}: create() failed: ${message}`);
    }
    if (hooks === null || typeof hooks !== 'object') throw new ConfigError(`${at}: create() must return an object of hooks`);
    for (const hook of HOOKS) {
      if (hooks[hook] !== undefined && typeof hooks[hook] !== 'function') throw new ConfigError(`${at}: create() returned ${hook} that is not a function`);
    }
    return { name: plugin.name, hooks, key };
  }

  /** Calls an instance's close(), bounded by the plugin timeout; a failure is logged, never thrown. */
  async #closeInstance(instance: LiveInstance, timeoutMs: number): Promise<void> {
    const close = instance.hooks.close;
    if (close === undefined) return;
    try {
      await bounded(Promise.resolve().then(() => close.call(instance.hooks)), timeoutMs);
      this.#deps.logger.debug({ plugin: instance.name }, EVENTS.pluginClosed);
    } catch (err) {
      const fields = { plugin: instance.name, hook: 'close' };
      if (err === TIMEOUT) this.#deps.logger.error({ ...fields, timeout_ms: timeoutMs }, EVENTS.pluginTimedOut);
      else this.#deps.logger.error({ ...fields, error: describeCause(err) }, EVENTS.pluginFailed);
    }
  }
}

const TIMEOUT = Symbol('timeout');

/** `promise`, or a rejection with TIMEOUT after `ms` (the promise itself goes on; its outcome is then ignored). */
function bounded<T>(promise: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(TIMEOUT), ms);
    timer.unref();
  });
  promise.catch(() => undefined); // a late rejection after the timeout is not an unhandled one
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}
