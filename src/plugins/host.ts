// The plugin instances of a gateway: created at start-up, re-created by a reload only where module or config
// changed, closed on shutdown. An instance a reload retires is closed once no request that started on it is still
// running (its onLog hooks included; drain.ts counts them), or after server.timeouts.shutdown_drain at most; a
// shutdown abandons a reload still preparing. Builds the chains (Phases) the composition root wires in.
import type { Logger } from 'pino';
import type { Registry } from 'prom-client';
import type { Config } from '../config/schema.js';
import { ConfigError } from '../config/load.js';
import { DEFAULT_OWNED_HEADERS } from '../proxy/owned-headers.js';
import type { KvStore } from '../kv/kv-store.js';
import { EVENTS } from '../observability/events.js';
import type { Phase } from '../pipeline/phase.js';
import type { Route, RouteTable } from '../pipeline/route.js';
import { createPluginChain, type PluginInstance } from './chain.js';
import type { PluginHooks } from './contract.js';
import { RequestCount } from '../pipeline/request-count.js';
import { CountingTable } from './drain.js';
import { loadPlugins, type LoadedPlugin } from './load.js';
import { errorClassOf } from './plugin-error.js';
import { PluginMetricCache } from './metrics.js';
import { createPluginStore } from './store.js';
import { pluginLogger } from './logger.js';
import { ownedByConfig, type OwnedByConfig } from './owned-headers.js';

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
  /** Its token as a user of api.metrics' metrics (PluginMetricCache). */
  readonly metricsUser: object;
  /** Its close(), once called: an instance is closed once, whoever asks. */
  closing: Promise<void> | undefined;
}

/** The time limits of a generation, from its config. */
interface Limits {
  /** middleware.plugin_timeout: each request hook. */
  readonly hookMs: number;
  /** middleware.plugin_load_timeout: each import, create() and close(). */
  readonly lifecycleMs: number;
  /** server.timeouts.shutdown_drain: the longest a retired instance waits for the requests that may still call it. */
  readonly drainMs: number;
}

const DEFAULT_LIMITS: Limits = { hookMs: 5_000, lifecycleMs: 30_000, drainMs: 10_000 };
const DEFAULT_OWNED: OwnedByConfig = { request: DEFAULT_OWNED_HEADERS, traceHeader: '' };

function limitsOf(config: Config): Limits {
  const { plugin_timeout: hookMs, plugin_load_timeout: lifecycleMs } = config.middleware;
  return { hookMs, lifecycleMs, drainMs: config.server.timeouts.shutdown_drain };
}

/** The instances a config needs, built beside the running ones until `commit` or `discard`. */
export class PluginGeneration {
  /** Requests on this generation's routes that run instances (CountingTable, and the chains' onLogsDone). */
  readonly requests = new RequestCount();
  /** The plugin phases built for its routes that run instances: the routes whose requests are counted. */
  readonly phases = new Set<Phase>();

  constructor(
    readonly instances: ReadonlyMap<string, LiveInstance>,
    /** The instances this generation created (the others are carried over from the running one). */
    readonly created: readonly LiveInstance[],
    /** The running generation's instances this one does not keep. */
    readonly retired: readonly LiveInstance[],
    readonly limits: Limits,
    /** The headers its config makes the gateway's (identity, consumer, and the trace headers while tracing is on). */
    readonly owned: OwnedByConfig,
    /** What its instances' create() made metrics as (PluginMetricCache.forget on discard). */
    readonly metricsMaker: object = {},
  ) {}
}

/**
 * A plugin's create() that failed or did not finish in time: a config error, but one that may not happen again
 * (create() may reach out to something that is down now). A cluster's primary restarts a worker that failed on it;
 * a config error that will fail identically every time (validate(), a module that cannot load) ends start-up at once.
 */
export class PluginCreateFailed extends ConfigError {}

/** A reload given up because the gateway started stopping while it prepared: nothing of it was applied. */
export class ReloadAbandoned extends Error {
  constructor() {
    super('the gateway is stopping: the reload was abandoned');
    this.name = 'ReloadAbandoned';
  }
}

const HOOKS = ['onRequest', 'onUpstreamRequest', 'onResponse', 'onLog', 'close'] as const;

/** Where a chain sits: the route's service, for ctx.service before an upstream is chosen. */
export interface ChainPlacement {
  readonly service: string | undefined;
}

export class PluginHost {
  readonly #deps: PluginHostDeps;
  readonly #metrics: PluginMetricCache;
  /** Until the first commit: none of its instances, nor its chains, ever run a request. */
  #current = new PluginGeneration(new Map(), [], [], DEFAULT_LIMITS, DEFAULT_OWNED);
  /** Older generations with requests still running (each with its bound's timer). */
  readonly #draining = new Map<PluginGeneration, NodeJS.Timeout>();
  /** Retired instances not closed yet: some generation in #draining still has them. */
  readonly #retiring = new Set<LiveInstance>();
  /** close() calls under way (retired instances, late create() results), so that shutdown waits for them. */
  readonly #closes = new Set<Promise<void>>();
  /** The prepare() running, if any: shutdown waits for it to close what it created. */
  #preparing: Promise<unknown> | undefined;
  /**
   * Generations prepared and neither committed nor discarded yet (a cluster worker holds one until its primary
   * decides): shutdown closes the instances they created.
   */
  readonly #pending = new Set<PluginGeneration>();
  /** Rejects the waits of a prepare() that a shutdown abandons. */
  readonly #onStop = new Set<() => void>();
  #stopping = false;
  #closed: Promise<void> | undefined;

  constructor(deps: PluginHostDeps) {
    this.#deps = deps;
    this.#metrics = new PluginMetricCache(deps.registry);
  }

  /**
   * Loads and validates every module of `config` and creates the instances that are new or changed; unchanged
   * ones are carried over. Nothing running is touched. Throws ConfigError (after closing what it created), or
   * ReloadAbandoned when a shutdown starts meanwhile (an import is then no longer waited for; a create() running is,
   * and its instance closed).
   */
  async prepare(config: Config): Promise<PluginGeneration> {
    if (this.#stopping) throw new ReloadAbandoned();
    const preparing = this.#prepare(config);
    this.#preparing = preparing;
    try {
      const generation = await preparing;
      this.#pending.add(generation);
      return generation;
    } finally {
      if (this.#preparing === preparing) this.#preparing = undefined;
    }
  }

  async #prepare(config: Config): Promise<PluginGeneration> {
    const loaded = await this.#unlessStopping(loadPlugins(config, this.#deps.baseDir));
    const limits = limitsOf(config);
    const instances = new Map<string, LiveInstance>();
    const created: LiveInstance[] = [];
    // The metrics this preparation's create() calls register: removed again if the reload does not happen.
    const metricsMaker = {};
    const keyOf = (plugin: LoadedPlugin) => `${plugin.moduleKey}\0${configText(plugin.config)}`;
    // The running instances this config keeps, known before any create(): a metric one of them uses is this
    // config's too, so asking for it otherwise is a conflict no restart frees.
    const keptUsers = new Set<object>();
    for (const plugin of loaded) {
      const running = this.#current.instances.get(plugin.name);
      if (running !== undefined && running.key === keyOf(plugin)) keptUsers.add(running.metricsUser);
    }
    const inUse = (user: object) => keptUsers.has(user);
    try {
      for (const plugin of loaded) {
        if (this.#stopping) throw new ReloadAbandoned();
        const key = keyOf(plugin);
        const running = this.#current.instances.get(plugin.name);
        if (running !== undefined && running.key === key) {
          instances.set(plugin.name, running);
          continue;
        }
        const instance = await this.#create(plugin, key, limits.lifecycleMs, metricsMaker, inUse);
        created.push(instance);
        instances.set(plugin.name, instance);
      }
      if (this.#stopping) throw new ReloadAbandoned();
    } catch (err) {
      await Promise.all(created.map((instance) => this.#closeInstance(instance, limits.lifecycleMs)));
      this.#metrics.forget(metricsMaker, this.#runningUsers());
      throw err;
    }
    const kept = new Set(instances.values());
    const retired = [...this.#current.instances.values()].filter((instance) => !kept.has(instance));
    return new PluginGeneration(instances, created, retired, limits, ownedByConfig(config), metricsMaker);
  }

  /**
   * Makes `generation` the running one. The instances it retired are closed once the requests still running on an
   * older generation that has them have ended (onLog included), or after the new config's
   * server.timeouts.shutdown_drain, whichever comes first (logged "Plugin Drain Timed Out"). Throws ReloadAbandoned
   * once a shutdown has started.
   */
  commit(generation: PluginGeneration): void {
    if (this.#stopping) throw new ReloadAbandoned();
    this.#pending.delete(generation);
    const previous = this.#current;
    this.#current = generation;
    for (const instance of generation.retired) this.#retiring.add(instance);
    this.#metrics.retainUsers(new Set([...generation.instances.values()].map((instance) => instance.metricsUser)));
    if (previous.instances.size > 0 && previous.requests.running > 0) {
      const { drainMs } = generation.limits;
      const timer = setTimeout(() => this.#drainTimedOut(previous, drainMs), drainMs);
      // Unref'd, unlike bounded()'s: nothing awaits this bound. While the gateway runs its listener keeps the
      // process alive; a stop clears it (#closeAll) and closes every instance itself, under bounded().
      timer.unref();
      this.#draining.set(previous, timer);
      previous.requests.whenIdle(() => this.#drained(previous));
    }
    this.#sweep();
  }

  /**
   * Drops a prepared generation that will not be used (the rest of a reload failed, or a cluster's primary said so):
   * closes what it created. Its metrics are forgotten at once, before the close()s end: a reload prepared meanwhile
   * may make them again. Shutdown waits for the close()s still running (#closes).
   */
  discard(generation: PluginGeneration): Promise<void> {
    this.#pending.delete(generation);
    this.#metrics.forget(generation.metricsMaker, this.#runningUsers());
    return Promise.all(generation.created.map((instance) => this.#closeInstance(instance, generation.limits.lifecycleMs))).then(() => undefined);
  }

  /**
   * The Phase running, in order, the first-party instances `builtIn` (a route's header rewrites) and then the
   * instances `names` of `generation` (default: the running one); undefined when there are none. A phase that runs
   * instances also ends each request's count (track()) once its onLog hooks have all run.
   */
  chain(names: readonly string[], placement: ChainPlacement, builtIn: readonly PluginInstance[] = [], generation = this.#current): Phase | undefined {
    if (names.length === 0 && builtIn.length === 0) return undefined;
    const instances: PluginInstance[] = [...builtIn, ...names.map((name) => generation.instances.get(name)!)];
    const options = {
      timeoutMs: generation.limits.hookMs,
      logger: this.#deps.logger,
      scope: { service: placement.service, owned: generation.owned },
      firstParty: builtIn.length,
    };
    if (names.length === 0) return createPluginChain({ ...options, instances }); // first-party only: nothing to close
    // The request is done with the instances once its onLog hooks have run (or been abandoned at plugin_timeout).
    const phase = createPluginChain({ ...options, instances, onLogsDone: generation.requests.leave });
    generation.phases.add(phase);
    return phase;
  }

  /**
   * `table` (built with this generation's chains), counting the requests of `routes` that run its instances: the
   * table to give the pipeline. Unchanged when no route runs an instance.
   */
  track(generation: PluginGeneration, table: RouteTable, routes: readonly Route[]): RouteTable {
    const counted = new Set(routes.filter((route) => route.loggers.some((hook) => generation.phases.has(hook))));
    return counted.size === 0 ? table : new CountingTable(table, counted, generation.requests);
  }

  /**
   * A shutdown has started: a reload preparing is abandoned (it closes what it created and throws ReloadAbandoned),
   * and none is prepared or committed any more. Instances keep running until close().
   */
  abandonReloads(): void {
    this.#stopping = true;
    for (const abandon of this.#onStop) abandon();
    this.#onStop.clear();
  }

  /**
   * Closes every instance once (shutdown): the running ones, the retired ones still waiting for requests, after the
   * reload being abandoned has closed its own; resolves once every close() under way has ended.
   */
  close(): Promise<void> {
    this.abandonReloads();
    this.#closed ??= this.#closeAll();
    return this.#closed;
  }

  async #closeAll(): Promise<void> {
    // The abandoned reload (its running create() finishes, bounded, then what it created is closed) meanwhile.
    const abandoned = this.#preparing?.catch(() => undefined);
    for (const [generation, timer] of this.#draining) {
      clearTimeout(timer);
      generation.requests.whenIdle(undefined);
    }
    this.#draining.clear();
    const { lifecycleMs } = this.#current.limits;
    const all = new Set([...this.#current.instances.values(), ...this.#retiring]);
    this.#retiring.clear();
    // A held generation's instances, each within its own config's bound.
    const held = [...this.#pending].flatMap((g) => g.created.map((instance) => this.#closeInstance(instance, g.limits.lifecycleMs)));
    this.#pending.clear();
    await Promise.all([abandoned, ...held, ...[...all].map((instance) => this.#closeInstance(instance, lifecycleMs))]);
    await Promise.all([...this.#closes]);
  }

  /** The metrics tokens of the instances requests may still run: the running generation's and the retiring ones. */
  #runningUsers(): Set<object> {
    return new Set([...this.#current.instances.values(), ...this.#retiring].map((instance) => instance.metricsUser));
  }

  /** Closes the retired instances no draining generation has any more. */
  #sweep(): void {
    const { lifecycleMs } = this.#current.limits;
    for (const instance of this.#retiring) {
      if (this.#stillUsed(instance)) continue;
      this.#retiring.delete(instance);
      void this.#closeInstance(instance, lifecycleMs);
    }
  }

  #stillUsed(instance: LiveInstance): boolean {
    for (const generation of this.#draining.keys()) if (generation.instances.get(instance.name) === instance) return true;
    return false;
  }

  #drained(generation: PluginGeneration): void {
    generation.requests.whenIdle(undefined);
    const timer = this.#draining.get(generation);
    if (timer === undefined) return;
    clearTimeout(timer);
    this.#draining.delete(generation);
    this.#sweep();
  }

  #drainTimedOut(generation: PluginGeneration, timeoutMs: number): void {
    const plugins = [...this.#retiring].filter((instance) => generation.instances.get(instance.name) === instance).map((instance) => instance.name);
    this.#deps.logger.warn({ plugins, in_flight: generation.requests.running, timeout_ms: timeoutMs }, EVENTS.pluginDrainTimedOut);
    this.#drained(generation);
  }

  /** `work`, or ReloadAbandoned as soon as a shutdown starts (work goes on, its outcome ignored). */
  #unlessStopping<T>(work: Promise<T>): Promise<T> {
    if (this.#stopping) return Promise.reject(new ReloadAbandoned());
    return new Promise<T>((resolve, reject) => {
      const abandon = (): void => reject(new ReloadAbandoned());
      this.#onStop.add(abandon);
      work.then(
        (value) => {
          this.#onStop.delete(abandon);
          resolve(value);
        },
        (err: unknown) => {
          this.#onStop.delete(abandon);
          reject(err);
        },
      );
    });
  }

  /**
   * Calls create(), bounded by `timeoutMs` (middleware.plugin_load_timeout). An instance whose create() ends after
   * that is closed as soon as it arrives: the reload or start-up it was for has failed, and nobody else has it.
   */
  async #create(plugin: LoadedPlugin, key: string, timeoutMs: number, metricsMaker: object, inUse: (user: object) => boolean): Promise<LiveInstance> {
    const at = `plugins[${plugin.index}]`;
    const logger = pluginLogger(this.#deps.logger, plugin.name);
    const kv = this.#deps.kv;
    const metricsUser = {};
    const api = { logger, metrics: this.#metrics.handle(metricsMaker, metricsUser, inUse), store: createPluginStore(plugin.name, kv) };
    const creating = Promise.resolve().then(() => plugin.definition.create(plugin.config, api));
    let hooks: PluginHooks;
    try {
      hooks = (await bounded(creating, timeoutMs)) as PluginHooks;
    } catch (err) {
      if (err === TIMEOUT) {
        creating.then(
          (late: unknown) => void this.#closeUnused(plugin.name, late, timeoutMs),
          () => undefined,
        );
        throw new PluginCreateFailed(`${at}: create() did not finish within ${timeoutMs} ms (middleware.plugin_load_timeout)`);
      }
      const message = err instanceof Error ? err.message.split('\n')[0]!.slice(0, 200) : String(err);
      throw new PluginCreateFailed(`${at}: create() failed: ${message}`);
    }
    const invalid =
      hooks === null || typeof hooks !== 'object'
        ? 'create() must return an object of hooks'
        : HOOKS.filter((hook) => hooks[hook] !== undefined && typeof hooks[hook] !== 'function').map((hook) => `create() returned ${hook} that is not a function`)[0];
    if (invalid !== undefined) {
      await this.#closeUnused(plugin.name, hooks, timeoutMs);
      throw new ConfigError(`${at}: ${invalid}`);
    }
    return { name: plugin.name, hooks, key, metricsUser, closing: undefined };
  }

  /** Closes what a create() returned that will never run (too late, or not a valid set of hooks), if it can. */
  async #closeUnused(name: string, hooks: unknown, timeoutMs: number): Promise<void> {
    if (hooks === null || typeof hooks !== 'object' || typeof (hooks as PluginHooks).close !== 'function') return;
    await this.#closeInstance({ name, hooks: hooks as PluginHooks, key: '', metricsUser: {}, closing: undefined }, timeoutMs);
  }

  /** Calls an instance's close() once, bounded by `timeoutMs`; a failure is logged, never thrown. */
  #closeInstance(instance: LiveInstance, timeoutMs: number): Promise<void> {
    if (instance.closing === undefined) {
      const closing = this.#runClose(instance, timeoutMs);
      instance.closing = closing;
      this.#closes.add(closing);
      void closing.then(() => this.#closes.delete(closing));
    }
    return instance.closing;
  }

  async #runClose(instance: LiveInstance, timeoutMs: number): Promise<void> {
    const close = instance.hooks.close;
    if (close === undefined) return;
    try {
      await bounded(Promise.resolve().then(() => close.call(instance.hooks)), timeoutMs);
      this.#deps.logger.debug({ plugin: instance.name }, EVENTS.pluginClosed);
    } catch (err) {
      const fields = { plugin: instance.name, hook: 'close' };
      if (err === TIMEOUT) this.#deps.logger.error({ ...fields, timeout_ms: timeoutMs }, EVENTS.pluginTimedOut);
      // The class alone, as the chain logs a hook's failure: a plugin's message, code or name may hold data.
      else this.#deps.logger.error({ ...fields, error: errorClassOf(err) }, EVENTS.pluginFailed);
    }
  }
}

const TIMEOUT = Symbol('timeout');

/**
 * `promise`, or a rejection with TIMEOUT after `ms` (the promise itself goes on; its outcome is then ignored). The
 * timer is ref'd on purpose, as importWithin's (load.ts): the bound is what ends the wait when the plugin's promise
 * holds nothing open (`new Promise(() => {})`). Unref'd, nothing would keep the process alive in check-config, in a
 * start-up before the listener, or in a stop whose listeners are closed, and node would end it with exit code 13
 * ("unsettled top-level await", bin/portcullis.js awaits the command) without a word: no config error, no Plugin
 * Timed Out. Ref'd, it holds the process `ms` at most, and is cleared as soon as the promise settles.
 */
function bounded<T>(promise: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(TIMEOUT), ms);
  });
  promise.catch(() => undefined); // a late rejection after the timeout is not an unhandled one
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

/**
 * A plugin config as text, for telling a changed config from an unchanged one across reloads. JSON writes Infinity,
 * -Infinity and NaN (YAML's .inf, -.inf, .nan) all as null: a reload from `limit: .inf` to `limit: null` kept the
 * running instance, with its Infinity. They are written apart here.
 */
export function configText(config: unknown): string {
  return (
    JSON.stringify(config, (_key, value: unknown) => (typeof value === 'number' && !Number.isFinite(value) ? { '\0number': String(value) } : value)) ?? ''
  );
}
