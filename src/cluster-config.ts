// The config of a multi-worker gateway belongs to its primary, as nginx's master owns its workers' config. The
// primary reads and checks the file at start and on every reload (SIGHUP to it; a worker's POST /reload or SIGHUP,
// relayed to it), and a worker runs only what the primary accepted: at its start (a restarted worker's included) and
// on each reload, handed over as the file's text plus the primary's environment, never by reading the file itself.
// Had each worker read the file, a worker restarted after a refused reload (a changed redis.key_prefix, jwt.secret)
// would run the refused config beside siblings running the accepted one: two rate-limit buckets per client, tokens
// one worker refuses. Here a refused reload changes nothing anywhere.
import type { Worker } from 'node:cluster';
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import type { Logger } from 'pino';
import { ConfigError, parseConfigText } from './config/load.js';
import { loadDotEnv } from './config/env.js';
import type { Config } from './config/schema.js';
import type { ReloadResult } from './admin/server.js';
import { describeCause } from './errors.js';
import { EVENTS } from './observability/events.js';
import { coalesced, restartRefusal, type Gateway } from './server.js';

/** Config text and the variables its ${VAR} placeholders expand from: the same pair gives the same config anywhere. */
export interface ConfigSnapshot {
  /** The config file's text as it was read. */
  readonly text: string;
  /**
   * The primary's environment when it read the file, .env included: the environment a worker was forked with may
   * be older (.env is read again on each reload), so a worker expands placeholders from this, not its own.
   */
  readonly env: Readonly<Record<string, string>>;
}

/** A config the primary checked, with the snapshot it came from. */
export interface CheckedConfig {
  readonly snapshot: ConfigSnapshot;
  readonly config: Config;
}

/**
 * Reads and checks a config file as loadConfigFile does (.env, then the file, then ${VAR} expansion and the schema),
 * keeping the text and environment it was checked with. Throws ConfigError naming the file or the key path at fault.
 */
export function readConfigSnapshot(path: string, env: NodeJS.ProcessEnv = process.env): CheckedConfig {
  loadDotEnv(resolve('.env'), env);
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? 'unreadable';
    throw new ConfigError(`cannot read config file ${path} (${code})`);
  }
  const vars: Record<string, string> = {};
  for (const [name, value] of Object.entries(env)) if (value !== undefined) vars[name] = value;
  return { snapshot: { text, env: vars }, config: parseConfigText(text, vars, path) };
}

// The messages between the primary and a worker (node:cluster's IPC; its own messages never reach these handlers).
const HELLO = 'portcullis:hello'; // worker → primary: which config do I start with?
const START = 'portcullis:start'; // primary → worker: this one (the answer to HELLO)
const APPLY = 'portcullis:apply'; // primary → worker: reload to this config, then answer APPLIED
const APPLIED = 'portcullis:applied'; // worker → primary: the outcome of an APPLY
const RELOAD = 'portcullis:reload'; // worker → primary: reload every worker (its POST /reload or SIGHUP)
const RELOADED = 'portcullis:reloaded'; // primary → worker: the outcome of its RELOAD

type ToPrimary =
  | { readonly type: typeof HELLO }
  | { readonly type: typeof APPLIED; readonly seq: number; readonly ok: boolean; readonly reason?: string }
  | { readonly type: typeof RELOAD; readonly id: number };

type ToWorker =
  | ({ readonly type: typeof START } & ConfigSnapshot)
  | ({ readonly type: typeof APPLY; readonly seq: number } & ConfigSnapshot)
  | { readonly type: typeof RELOADED; readonly id: number; readonly result?: ReloadResult };

function typed(message: unknown): { readonly type: unknown } | undefined {
  return typeof message === 'object' && message !== null && 'type' in message ? (message as { type: unknown }) : undefined;
}

const ignore = (): void => undefined;

/** How one worker took an APPLY. */
type Answer = { readonly outcome: 'applied' } | { readonly outcome: 'refused'; readonly reason: string } | { readonly outcome: 'gone' };

/**
 * The primary's side: the accepted config, the workers running it, and reload rounds. A reload is read and checked
 * here first (file, schema, restart-only settings: one "Config Rejected" line, nothing sent); then every running
 * worker applies it. If some worker refuses (a certificate or plugin it could not load), the workers that applied it
 * are put back on the accepted config, so all of them run one config either way.
 */
export class ConfigOwner {
  readonly #path: string;
  readonly #logger: Logger;
  #accepted: CheckedConfig;
  /** Workers handed a config (at their start): the ones a reload must reach. */
  readonly #running = new Map<number, Worker>();
  /** The round of APPLYs under way; a worker asking for its start config meanwhile waits for its outcome. */
  #round: Promise<unknown> | undefined;
  #seq = 0;
  /** Answers awaited, by worker id then APPLY sequence number. */
  readonly #awaited = new Map<number, Map<number, (answer: Answer) => void>>();
  /** Reloads every worker: one at a time, coalesced as a single gateway's file reloads are (server.ts). */
  readonly reload: () => Promise<ReloadResult>;

  constructor(path: string, accepted: CheckedConfig, logger: Logger) {
    this.#path = path;
    this.#accepted = accepted;
    this.#logger = logger;
    this.reload = coalesced(() => this.#reloadNow(), logger);
  }

  /** The config the workers run. */
  get config(): Config {
    return this.#accepted.config;
  }

  /** A worker's message (anything not ours is ignored). */
  onMessage(worker: Worker, message: unknown): void {
    const m = typed(message) as ToPrimary | undefined;
    if (m?.type === HELLO) void this.#handStart(worker);
    else if (m?.type === APPLIED) this.#answer(worker.id, m.seq, m.ok ? { outcome: 'applied' } : { outcome: 'refused', reason: m.reason ?? 'refused' });
    else if (m?.type === RELOAD) {
      this.reload().then(
        (result) => send(worker, { type: RELOADED, id: m.id, result }),
        () => send(worker, { type: RELOADED, id: m.id }), // logged by #reloadNow; the worker answers 500
      );
    }
  }

  /** A worker exited: it no longer runs anything, and the answers it owed will not come. */
  onExit(worker: Worker): void {
    this.#running.delete(worker.id);
    const awaited = this.#awaited.get(worker.id);
    this.#awaited.delete(worker.id);
    for (const settle of awaited?.values() ?? []) settle({ outcome: 'gone' });
  }

  /** Answers HELLO once no round is under way, so a worker never starts on a config that a round then replaces. */
  async #handStart(worker: Worker): Promise<void> {
    while (this.#round !== undefined) await this.#round.catch(ignore);
    if (!worker.isConnected()) return;
    this.#running.set(worker.id, worker);
    send(worker, { type: START, ...this.#accepted.snapshot });
  }

  async #reloadNow(): Promise<ReloadResult> {
    let next: CheckedConfig;
    try {
      next = readConfigSnapshot(this.#path);
      const refusal = restartRefusal(this.#accepted.config, next.config);
      if (refusal !== undefined) throw refusal;
    } catch (err) {
      if (!(err instanceof ConfigError)) {
        this.#logger.error({ reason: 'reload failed', cause: describeCause(err) }, EVENTS.configRejected);
        throw err;
      }
      this.#logger.error({ reason: err.message }, EVENTS.configRejected);
      return { ok: false, reason: err.message };
    }
    const round = this.#roundTo(next);
    this.#round = round;
    try {
      return await round;
    } finally {
      this.#round = undefined;
    }
  }

  async #roundTo(next: CheckedConfig): Promise<ReloadResult> {
    const workers = [...this.#running.values()];
    const answers = await Promise.all(workers.map((worker) => this.#apply(worker, next.snapshot)));
    const refused = answers.find((a): a is Extract<Answer, { outcome: 'refused' }> => a.outcome === 'refused');
    // No worker refused (none may have answered at all: every one died meanwhile): the new config is the one that
    // restarted workers get from now on.
    if (refused === undefined) {
      this.#accepted = next;
      return { ok: true };
    }
    const applied = workers.filter((_, i) => answers[i]!.outcome === 'applied');
    await Promise.all(applied.map((worker) => this.#apply(worker, this.#accepted.snapshot)));
    this.#logger.error(
      { reason: refused.reason, workers_refused: answers.filter((a) => a.outcome === 'refused').length, workers_put_back: applied.length },
      EVENTS.configRejected,
    );
    return { ok: false, reason: refused.reason };
  }

  /** Sends one worker an APPLY; resolves with its answer, or 'gone' if it exits (or cannot be reached) first. */
  #apply(worker: Worker, snapshot: ConfigSnapshot): Promise<Answer> {
    const seq = ++this.#seq;
    return new Promise((settle) => {
      if (!worker.isConnected()) return settle({ outcome: 'gone' });
      let awaited = this.#awaited.get(worker.id);
      if (awaited === undefined) this.#awaited.set(worker.id, (awaited = new Map()));
      awaited.set(seq, settle);
      send(worker, { type: APPLY, seq, ...snapshot }, () => this.#answer(worker.id, seq, { outcome: 'gone' }));
    });
  }

  #answer(workerId: number, seq: number, answer: Answer): void {
    const awaited = this.#awaited.get(workerId);
    const settle = awaited?.get(seq);
    awaited?.delete(seq);
    settle?.(answer);
  }
}

/**
 * Sends to a worker. A callback is always given: without one, a send to a worker whose channel just closed emits
 * 'error' on it, which nothing listens for (the 'exit' that follows is what the primary acts on).
 */
function send(worker: Worker, message: ToWorker, unreachable: () => void = ignore): void {
  if (!worker.isConnected()) return unreachable();
  worker.send(message, (err) => {
    if (err) unreachable();
  });
}

/** The primary is gone (its channel closed) before it answered. */
export class PrimaryGoneError extends Error {
  constructor() {
    super('the cluster primary went away');
    this.name = 'PrimaryGoneError';
  }
}

/**
 * A worker's side: the config to start with, the primary's APPLYs (applied in order; those that come while the
 * gateway starts wait for it), and reload requests to the primary. Create it first thing: a message that arrives
 * before its listener is lost.
 */
export class PrimaryLink {
  /** Where the config came from, for error messages (the file the primary read). */
  readonly #origin: string;
  #start: { resolve: (snapshot: ConfigSnapshot) => void; reject: (err: Error) => void } | undefined;
  #running: ((running: { gateway: Gateway; logger: Logger }) => void) | undefined;
  readonly #ready: Promise<{ gateway: Gateway; logger: Logger }>;
  /** APPLYs, one after the other. */
  #applying: Promise<void> = Promise.resolve();
  #nextId = 0;
  readonly #reloads = new Map<number, { resolve: (result: ReloadResult) => void; reject: (err: Error) => void }>();

  constructor(origin: string) {
    this.#origin = origin;
    this.#ready = new Promise((resolve) => (this.#running = resolve));
    process.on('message', (message: unknown) => this.#onMessage(message));
    process.once('disconnect', () => {
      this.#start?.reject(new PrimaryGoneError());
      for (const pending of this.#reloads.values()) pending.reject(new PrimaryGoneError());
      this.#reloads.clear();
    });
  }

  /** Asks the primary for the config to start with: the one it accepted last. Throws ConfigError if unusable here. */
  async startConfig(): Promise<Config> {
    const snapshot = await new Promise<ConfigSnapshot>((resolve, reject) => {
      if (!process.connected) return reject(new PrimaryGoneError());
      this.#start = { resolve, reject };
      process.send?.({ type: HELLO } satisfies ToPrimary, undefined, undefined, (err) => err && reject(new PrimaryGoneError()));
    });
    this.#start = undefined;
    return parseConfigText(snapshot.text, snapshot.env, this.#origin);
  }

  /** The gateway runs: the primary's APPLYs go to it from now on. */
  serve(gateway: Gateway, logger: Logger): void {
    this.#running?.({ gateway, logger });
  }

  /** Asks the primary to reload every worker (POST /reload here, or SIGHUP to this worker); resolves with the outcome. */
  requestReload(): Promise<ReloadResult> {
    return new Promise((resolve, reject) => {
      if (!process.connected) return reject(new PrimaryGoneError());
      const id = ++this.#nextId;
      this.#reloads.set(id, { resolve, reject });
      process.send?.({ type: RELOAD, id } satisfies ToPrimary, undefined, undefined, (err) => {
        if (err && this.#reloads.delete(id)) reject(new PrimaryGoneError());
      });
    });
  }

  #onMessage(message: unknown): void {
    const m = typed(message) as ToWorker | undefined;
    if (m?.type === START) this.#start?.resolve({ text: m.text, env: m.env });
    else if (m?.type === APPLY) {
      const snapshot = { text: m.text, env: m.env };
      this.#applying = this.#applying.then(() => this.#apply(m.seq, snapshot));
    } else if (m?.type === RELOADED) {
      const pending = this.#reloads.get(m.id);
      this.#reloads.delete(m.id);
      if (m.result === undefined) pending?.reject(new Error('the primary failed to reload'));
      else pending?.resolve(m.result);
    }
  }

  async #apply(seq: number, snapshot: ConfigSnapshot): Promise<void> {
    const { gateway, logger } = await this.#ready;
    let answer: ToPrimary;
    try {
      // The primary checked this config already; parsed again here, it is the same config (same text, same variables).
      await gateway.reload(parseConfigText(snapshot.text, snapshot.env, this.#origin));
      answer = { type: APPLIED, seq, ok: true };
    } catch (err) {
      const reason = err instanceof ConfigError ? err.message : 'reload failed';
      logger.error(err instanceof ConfigError ? { reason } : { reason, cause: describeCause(err) }, EVENTS.configRejected);
      answer = { type: APPLIED, seq, ok: false, reason };
    }
    if (process.connected) process.send?.(answer, undefined, undefined, ignore);
  }
}
