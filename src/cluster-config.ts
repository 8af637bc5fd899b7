// The config of a multi-worker gateway belongs to its primary, as nginx's master owns its workers' config. The
// primary reads and checks the file at start and on every reload (SIGHUP to it; a worker's POST /reload or SIGHUP,
// relayed to it), and a worker runs only what the primary accepted: at its start (a restarted worker's included) and
// on each reload, handed over as the file's text plus the primary's environment, never by reading the file itself.
// Had each worker read the file, a worker restarted after a refused reload (a changed redis.key_prefix, jwt.secret)
// would run the refused config beside siblings running the accepted one: two rate-limit buckets per client, tokens
// one worker refuses. Here a refused reload changes nothing anywhere.
import type { Worker } from 'node:cluster';
import type { Logger } from 'pino';
import { ConfigError, parseConfigText, readConfigText } from './config/load.js';
import { dotEnvCheckpoint, shareDotEnvLines } from './config/env.js';
import { warnIfNotALevel } from './config/log-level.js';
import type { Config } from './config/schema.js';
import type { ReloadResult } from './admin/server.js';
import { describeCause } from './errors.js';
import { EVENTS } from './observability/events.js';
import { coalesced, restartRefusal, type Gateway, type PreparedReload } from './server.js';
import { applyDeadlineMs } from './worker-deadlines.js';
import { ReloadAbandoned } from './plugins/host.js';
import { shownOnTerminal } from './terminal-text.js';
import { answerWatchdog } from './worker-watchdog.js';

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
  const text = readConfigText(path, env);
  const vars: Record<string, string> = {};
  for (const [name, value] of Object.entries(env)) if (value !== undefined) vars[name] = value;
  // A placeholder naming a .env line that refers to a variable is refused from the copy as from `env`.
  shareDotEnvLines(env, vars);
  return { snapshot: { text, env: vars }, config: parseConfigText(text, vars, path) };
}

// The messages between the primary and a worker (node:cluster's IPC; its own messages never reach these handlers).
const HELLO = 'portcullis:hello'; // worker → primary: which config do I start with?
const START = 'portcullis:start'; // primary → worker: this one (the answer to HELLO)
const READY = 'portcullis:ready'; // worker → primary: my gateway runs; I apply APPLYs at once from now on
const APPLY = 'portcullis:apply'; // primary → worker: reload to this config, then answer APPLIED
// A reload round is two-phase, so that no worker serves a config another one then refuses: every worker prepares it
// (everything that can fail, nothing swapped) and holds it; then the primary has all of them commit it, or discard it.
const PREPARE = 'portcullis:prepare'; // primary → worker: prepare this config and hold it, then answer APPLIED
const COMMIT = 'portcullis:commit'; // primary → worker: swap in the config you hold for PREPARE `of`, then answer APPLIED
const DISCARD = 'portcullis:discard'; // primary → worker: drop the config you hold for PREPARE `of` (no answer)
const APPLIED = 'portcullis:applied'; // worker → primary: the outcome of an APPLY, PREPARE or COMMIT
const RELOAD = 'portcullis:reload'; // worker → primary: reload every worker (its POST /reload or SIGHUP)
const RELOADED = 'portcullis:reloaded'; // primary → worker: the outcome of its RELOAD
const START_FAILED = 'portcullis:start-failed'; // worker → primary: my gateway could not start on a config error
const FAILURE_NOTED = 'portcullis:failure-noted'; // primary → worker: the answer to START_FAILED (the worker exits)

type ToPrimary =
  | { readonly type: typeof HELLO }
  | { readonly type: typeof READY; readonly keys?: string }
  | { readonly type: typeof APPLIED; readonly seq: number; readonly ok: boolean; readonly reason?: string; readonly abandoned?: boolean }
  | { readonly type: typeof RELOAD; readonly id: number }
  | ({ readonly type: typeof START_FAILED } & FailedStart);

/** Why a worker's gateway did not start: a ConfigError's one line, and whether every start on this config fails so. */
export interface FailedStart {
  readonly reason: string;
  /**
   * The same config fails the same way at every start (a plugin's validate(), a module or certificate that cannot
   * be loaded); false when it might not (a plugin's create(), which may reach out to something down now).
   */
  readonly repeats: boolean;
}

type ToWorker =
  | ({ readonly type: typeof START } & ConfigSnapshot)
  | ({ readonly type: typeof APPLY | typeof PREPARE; readonly seq: number } & ConfigSnapshot)
  | { readonly type: typeof COMMIT; readonly seq: number; readonly of: number }
  | { readonly type: typeof DISCARD; readonly of: number }
  | { readonly type: typeof RELOADED; readonly id: number; readonly result?: ReloadResult }
  | { readonly type: typeof FAILURE_NOTED };

function typed(message: unknown): { readonly type: unknown } | undefined {
  return typeof message === 'object' && message !== null && 'type' in message ? (message as { type: unknown }) : undefined;
}

const ignore = (): void => undefined;

/** A round found no worker serving (ConfigOwner.#roundTo). */
const NO_WORKER = Symbol('no worker serving');

/** How one worker took an APPLY, PREPARE or COMMIT. */
type Answer =
  | { readonly outcome: 'applied' }
  /** `abandoned`: the worker is stopping (ReloadAbandoned), not at odds with the config. */
  | { readonly outcome: 'refused'; readonly reason: string; readonly abandoned: boolean }
  | { readonly outcome: 'gone' }
  /** No answer within applyDeadlineMs: the worker is being replaced. */
  | { readonly outcome: 'late'; readonly reason: string };

/**
 * Why the primary ends a worker: it stopped answering (run-gateway.ts sends SIGKILL: it would not act on SIGTERM
 * either), or it answers but cannot run the accepted config (SIGTERM: it drains its requests).
 */
export type Replacement = 'unresponsive' | 'out-of-step';

/** A worker handed its start config. */
interface Member {
  readonly worker: Worker;
  /** Its gateway runs (READY), and it has been brought to the accepted config: reload rounds include it. */
  serving: boolean;
  /** The config it runs, or will once its queued APPLYs are applied. */
  given: CheckedConfig;
}

/**
 * The primary's side: the accepted config, the workers running it, and reload rounds. A reload is read and checked
 * here first (file, schema, restart-only settings: one "Config Rejected" line, nothing sent); then every serving
 * worker prepares it (PREPARE: plugin imports and create(), certificates, upstream TLS files) and holds it, serving
 * the running config meanwhile. Only once every one has prepared it do they all commit it; if some worker refuses (a
 * certificate or plugin it could not load) or does not answer in time (applyDeadlineMs), the others discard it. No
 * worker ever serves a config that is refused, and a refused reload leaves every plugin instance (and its state) as
 * it was. A worker that did not answer, or could not commit, is replaced (its replacement starts from the accepted
 * config). A worker that starts while a round runs is not held up by it: it starts from the accepted config at once,
 * and is brought to the round's outcome once both it serves and the round has ended.
 */
export class ConfigOwner {
  readonly #path: string;
  readonly #logger: Logger;
  readonly #replace: (worker: Worker, why: Replacement) => void;
  readonly #serving: (worker: Worker, keys: string | undefined) => void;
  readonly #failedStart: (worker: Worker, failure: FailedStart) => void;
  #accepted: CheckedConfig;
  /**
   * Workers that asked for their config, by cluster id: a worker listens for signals before it asks (run-gateway.ts),
   * and one that has not may be loading its code still, when SIGUSR1 would open Node's inspector in it, or end it.
   */
  readonly #greeted = new Set<number>();
  /** Workers handed a config (at their start), by cluster id: the ones a reload must reach once they serve. */
  readonly #members = new Map<number, Member>();
  /**
   * Reload rounds and the bringing of newly serving workers up to date, one at a time: each APPLY goes to a worker
   * with nothing queued before it (so its deadline measures that one reload), and a worker joins rounds only on
   * the config every other member runs.
   */
  readonly #turn = serialized();
  #seq = 0;
  /** The gateway stops: reloads are abandoned from now on (stop()). */
  #stopping = false;
  /** Reloads waiting for a worker to serve (#untilServing): none did when they were to start their round. */
  readonly #waitingForWorker = new Set<() => void>();
  /** Answers awaited, by worker id then APPLY sequence number. */
  readonly #awaited = new Map<number, Map<number, (answer: Answer) => void>>();
  /** Reloads every worker: one at a time, coalesced as a single gateway's file reloads are (server.ts). */
  readonly reload: () => Promise<ReloadResult>;

  /**
   * `replace` ends a worker; the primary's restart logic starts its replacement once it has exited. `serving` is
   * told when a worker's gateway runs (its start-up is over); `failedStart` when it could not start on a config
   * error (the worker exits next, without printing it: that is the primary's to do).
   */
  constructor(
    path: string,
    accepted: CheckedConfig,
    logger: Logger,
    replace: (worker: Worker, why: Replacement) => void,
    serving: (worker: Worker, keys: string | undefined) => void = ignore,
    failedStart: (worker: Worker, failure: FailedStart) => void = ignore,
  ) {
    this.#failedStart = failedStart;
    this.#path = path;
    this.#accepted = accepted;
    this.#logger = logger;
    this.#replace = replace;
    this.#serving = serving;
    this.reload = coalesced(() => this.#reloadNow(), logger);
  }

  /** The config the workers run. */
  get config(): Config {
    return this.#accepted.config;
  }

  /** The environment the accepted config was read with, .env included: the one a worker is forked with. */
  get environment(): Readonly<Record<string, string>> {
    return this.#accepted.snapshot.env;
  }

  /**
   * The gateway stops: a reload asked for from now on is abandoned, and so is the outcome of one whose round runs
   * (its workers, stopping too, abandon it): logged "Reload Abandoned", as a single process logs it, never a refused
   * config, and no worker is put back or replaced for it.
   */
  stop(): void {
    this.#stopping = true;
    this.#wakeWaiting();
  }

  /** Whether `worker` listens for the signals the primary passes on (SIGUSR1): it has asked for its config. */
  listensForSignals(worker: Worker): boolean {
    return this.#greeted.has(worker.id);
  }

  /** A worker's message (anything not ours is ignored). */
  onMessage(worker: Worker, message: unknown): void {
    const m = typed(message) as ToPrimary | undefined;
    if (m?.type === HELLO) {
      this.#greeted.add(worker.id);
      this.#handStart(worker);
    }
    else if (m?.type === READY) {
      this.#serving(worker, typeof m.keys === 'string' ? m.keys : undefined);
      void this.#turn(() => this.#bringUpToDate(worker.id));
    }
    else if (m?.type === START_FAILED) {
      // Acted on before the worker exits: the exit must not be taken for a crash to restart from first.
      this.#failedStart(worker, { reason: String(m.reason), repeats: m.repeats === true });
      send(worker, { type: FAILURE_NOTED });
    }
    else if (m?.type === APPLIED) {
      this.#answer(worker.id, m.seq, m.ok ? { outcome: 'applied' } : { outcome: 'refused', reason: m.reason ?? 'refused', abandoned: m.abandoned === true });
    }
    else if (m?.type === RELOAD) {
      this.reload().then(
        (result) => send(worker, { type: RELOADED, id: m.id, result }),
        () => send(worker, { type: RELOADED, id: m.id }), // logged by #reloadNow; the worker answers 500
      );
    }
  }

  /** A worker exited: it no longer runs anything, and the answers it owed will not come. */
  onExit(worker: Worker): void {
    this.#greeted.delete(worker.id);
    this.#members.delete(worker.id);
    const awaited = this.#awaited.get(worker.id);
    this.#awaited.delete(worker.id);
    for (const settle of awaited?.values() ?? []) settle({ outcome: 'gone' });
  }

  /**
   * Answers HELLO at once, with the accepted config, even while a round runs: a round can take up to its deadline,
   * and a crashed worker's replacement waiting behind it would leave the gateway short of a worker all that time.
   */
  #handStart(worker: Worker): void {
    if (!worker.isConnected()) return;
    this.#members.set(worker.id, { worker, serving: false, given: this.#accepted });
    send(worker, { type: START, ...this.#accepted.snapshot });
  }

  /**
   * A worker serves (a turn of its own, so after any round under way): it is brought to the accepted config if a
   * round changed that since its start, and takes part in rounds from then on.
   */
  async #bringUpToDate(workerId: number): Promise<void> {
    const member = this.#members.get(workerId);
    if (member === undefined) return; // exited, or being replaced
    if (member.given !== this.#accepted) {
      const answer = await this.#apply(member, this.#accepted);
      // A worker stopping (abandoned) is left to exit: its replacement starts on the accepted config.
      if (answer.outcome === 'refused' && !answer.abandoned) this.#drop(member, 'out-of-step', `could not apply the accepted config: ${answer.reason}`);
      else if (answer.outcome === 'late') this.#drop(member, 'unresponsive', answer.reason);
      if (answer.outcome !== 'applied') return;
    }
    member.serving = true;
    this.#wakeWaiting();
  }

  /** Settles once some worker serves (takes part in rounds), or the gateway stops. */
  #untilServing(): Promise<void> {
    if (this.#stopping || [...this.#members.values()].some((m) => m.serving)) return Promise.resolve();
    return new Promise((resolve) => this.#waitingForWorker.add(resolve));
  }

  #wakeWaiting(): void {
    for (const wake of this.#waitingForWorker) wake();
    this.#waitingForWorker.clear();
  }

  /**
   * A reload round: reads and checks the file, then has every worker apply it. One that is not accepted takes the
   * .env values read with it back out of the primary's process.env (server.ts's reloadFromFile does the same).
   */
  async #reloadNow(): Promise<ReloadResult> {
    if (this.#stopping) return this.#abandoned();
    const restoreEnv = dotEnvCheckpoint();
    try {
      const result = await this.#readAndApply();
      if (!result.ok) restoreEnv();
      return result;
    } catch (err) {
      restoreEnv();
      throw err;
    }
  }

  async #readAndApply(): Promise<ReloadResult> {
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
    // A round needs a worker to apply the config: with none serving (all restarting after a crash, or starting), the
    // config would be accepted unseen, and one every worker refuses would then be what each replacement fails to
    // start from, until the primary gives up. The round waits for a worker to serve (on the running config) instead.
    for (;;) {
      await this.#untilServing();
      if (this.#stopping) return this.#abandoned();
      const result = await this.#turn(() => this.#roundTo(next));
      if (result !== NO_WORKER) return result;
    }
  }

  /**
   * NO_WORKER: no worker served when the round's turn came (nothing was sent), or every one that did was stopping
   * (nothing of it was applied).
   */
  async #roundTo(next: CheckedConfig): Promise<ReloadResult | typeof NO_WORKER> {
    const members = [...this.#members.values()].filter((m) => m.serving);
    if (members.length === 0) return NO_WORKER;
    const preparing = members.map((member) => this.#prepare(member, next));
    const given = await Promise.all(preparing.map((p) => p.answer));
    // A worker stopping on its own (ReloadAbandoned) is as good as gone: it takes part in no round again (it will not
    // serve), and its replacement starts on the accepted config.
    const answers = given.map((a, i): Answer => {
      if (a.outcome !== 'refused' || !a.abandoned) return a;
      members[i]!.serving = false;
      return { outcome: 'gone' };
    });
    const holding = members.filter((_, i) => answers[i]!.outcome === 'applied');
    const seqOf = (member: Member): number => preparing[members.indexOf(member)]!.seq;
    const discard = (): void => holding.forEach((member) => send(member.worker, { type: DISCARD, of: seqOf(member) }));
    if (this.#stopping) {
      discard();
      return this.#abandoned();
    }
    // A late worker may yet prepare `next` (its PREPARE is queued in it), whatever the outcome: it is replaced either way.
    members.forEach((member, i) => {
      const answer = answers[i]!;
      if (answer.outcome === 'late') this.#drop(member, 'unresponsive', answer.reason);
    });
    // Refused, or not answered in time: a config some worker could not be seen to prepare is not accepted (the stuck
    // worker may be stuck because of it: a plugin's create() that never yields would stop every worker started on it).
    const failed = answers.find((a): a is Extract<Answer, { outcome: 'refused' | 'late' }> => a.outcome === 'refused' || a.outcome === 'late');
    if (failed !== undefined) {
      discard();
      this.#logger.error(
        {
          reason: failed.reason,
          workers_refused: answers.filter((a) => a.outcome === 'refused').length,
          workers_unresponsive: answers.filter((a) => a.outcome === 'late').length,
          workers_discarded: holding.length,
        },
        EVENTS.configRejected,
      );
      return { ok: false, reason: failed.reason };
    }
    // Every worker stopping, none holding it (the whole group signalled before the primary has seen its own stop):
    // not accepted unseen. The round is held again once a worker serves, or abandoned when the stop comes.
    if (holding.length === 0 && given.some((a) => a.outcome === 'refused' && a.abandoned)) return NO_WORKER;
    // Every worker still here holds it (none may have answered at all: every one died during the round): the new
    // config is the one that restarted workers get from now on, and the holders swap it in.
    this.#accepted = next;
    // The primary's own lines (a crashed worker, a queued reload) follow the level its workers now log at.
    this.#logger.level = next.config.logging.level;
    warnIfNotALevel(this.#logger, process.env, next.config.logging.level);
    const commits = await Promise.all(holding.map((member) => this.#commit(member, next, seqOf(member))));
    // A worker that prepared but could not swap it in runs a config no other worker runs: its replacement starts on
    // the accepted one. One that is stopping (abandoned) is left to exit.
    holding.forEach((member, i) => {
      const answer = commits[i]!;
      if (answer.outcome === 'refused' && !answer.abandoned) this.#drop(member, 'out-of-step', `could not commit the accepted config: ${answer.reason}`);
      else if (answer.outcome === 'late') this.#drop(member, 'unresponsive', answer.reason);
    });
    // The gateway began to stop while the workers committed: what it says is what a stopping gateway says.
    if (this.#stopping) return this.#abandoned();
    return { ok: true };
  }

  #abandoned(): ReloadResult {
    const reason = new ReloadAbandoned().message;
    this.#logger.info({ reason }, EVENTS.reloadAbandoned);
    return { ok: false, reason };
  }

  /**
   * Sends one worker an APPLY (prepare and commit at once: a worker brought up to date alone); resolves with its
   * answer, as #ask does.
   */
  #apply(member: Member, checked: CheckedConfig): Promise<Answer> {
    const previous = member.given;
    member.given = checked;
    const { answer } = this.#ask(member, (seq) => ({ type: APPLY, seq, ...checked.snapshot }), applyDeadlineMs(checked.config), 'apply');
    // A refusal changed nothing in the worker (a gateway's reload is all or nothing).
    return answer.then((a) => {
      if (a.outcome === 'refused') member.given = previous;
      return a;
    });
  }

  /** Sends one worker a PREPARE: it prepares `checked` and holds it (the config it runs is unchanged). */
  #prepare(member: Member, checked: CheckedConfig): { readonly seq: number; readonly answer: Promise<Answer> } {
    return this.#ask(member, (seq) => ({ type: PREPARE, seq, ...checked.snapshot }), applyDeadlineMs(checked.config), 'apply');
  }

  /** Has one worker swap in the config it holds for PREPARE `of`. */
  #commit(member: Member, checked: CheckedConfig, of: number): Promise<Answer> {
    member.given = checked;
    return this.#ask(member, (seq) => ({ type: COMMIT, seq, of }), applyDeadlineMs(checked.config), 'commit').answer;
  }

  /**
   * Sends one worker a message that it answers with APPLIED; the answer resolves with it, 'gone' if the worker exits
   * (or cannot be reached) first, or 'late' once `deadlineMs` has passed without one (one that comes after is ignored).
   */
  #ask(member: Member, message: (seq: number) => ToWorker, deadlineMs: number, doing: string): { readonly seq: number; readonly answer: Promise<Answer> } {
    const { worker } = member;
    const seq = ++this.#seq;
    const answer = new Promise<Answer>((settle) => {
      if (!worker.isConnected()) return settle({ outcome: 'gone' });
      let awaited = this.#awaited.get(worker.id);
      if (awaited === undefined) this.#awaited.set(worker.id, (awaited = new Map()));
      // Unref'd: a primary that is stopping does not wait for a stuck worker's deadline (it waits for the exits).
      const timer = setTimeout(() => {
        const reason = `worker ${worker.id} (pid ${worker.process.pid}) did not ${doing} the config within ${deadlineMs} ms; it is replaced`;
        this.#answer(worker.id, seq, { outcome: 'late', reason });
      }, deadlineMs).unref();
      awaited.set(seq, (a) => {
        clearTimeout(timer);
        settle(a);
      });
      send(worker, message(seq), () => this.#answer(worker.id, seq, { outcome: 'gone' }));
    });
    return { seq, answer };
  }

  /** True while the primary waits on this worker's answer to a round's message (PREPARE, APPLY, COMMIT). */
  awaitsAnswerFrom(workerId: number): boolean {
    return (this.#awaited.get(workerId)?.size ?? 0) > 0;
  }

  #answer(workerId: number, seq: number, answer: Answer): void {
    const awaited = this.#awaited.get(workerId);
    const settle = awaited?.get(seq);
    awaited?.delete(seq);
    settle?.(answer);
  }

  /** Takes a worker out of every round from now on and has the primary end it. */
  #drop(member: Member, why: Replacement, reason: string): void {
    if (this.#members.get(member.worker.id) !== member) return;
    this.#members.delete(member.worker.id);
    this.#logger.error({ worker: member.worker.id, pid: member.worker.process.pid, why, reason }, 'Worker Replaced');
    this.#replace(member.worker, why);
  }
}

/** Runs tasks one at a time, in the order given: each starts once the one before has settled. */
function serialized(): <T>(task: () => Promise<T>) => Promise<T> {
  let last: Promise<unknown> = Promise.resolve();
  return (task) => {
    const result = last.then(task);
    last = result.catch(ignore);
    return result;
  };
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

/** The longest a worker whose start failed waits for the primary to note its report before it exits. */
const FAILED_START_EXIT_MS = 2_000;

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
  /** APPLYs and PREPAREs, one after the other: a prepared config is held (and the next waits) until decided. */
  #applying: Promise<void> = Promise.resolve();
  /** What the primary decided for a config held, by PREPARE sequence number: COMMIT's sequence number, or discard. */
  readonly #decisions = new Map<number, (decision: Decision) => void>();
  #nextId = 0;
  readonly #reloads = new Map<number, { resolve: (result: ReloadResult) => void; reject: (err: Error) => void }>();
  /** Ends this worker once the primary has noted its failed start (reportFailedStart). */
  #failureNoted: (() => void) | undefined;

  constructor(origin: string) {
    this.#origin = origin;
    this.#ready = new Promise((resolve) => (this.#running = resolve));
    process.on('message', (message: unknown) => this.#onMessage(message));
    process.once('disconnect', () => {
      // No primary to decide: what is held is dropped (this worker stops: its primary is gone).
      for (const decide of this.#decisions.values()) decide(DISCARDED);
      this.#decisions.clear();
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

  /**
   * The gateway runs: the primary's APPLYs go to it from now on. The primary is told, and from then on measures this
   * worker's reloads against their deadline: time spent starting (a slow store, plugin imports) never counts.
   */
  serve(gateway: Gateway, logger: Logger): void {
    this.#running?.({ gateway, logger });
    // With the fingerprint of its JWT keys: the primary hands it to the workers it forks later (WORKER_KEYS_ENV).
    const ready: ToPrimary = gateway.keysFingerprint === undefined ? { type: READY } : { type: READY, keys: gateway.keysFingerprint };
    if (process.connected) process.send?.(ready, undefined, undefined, ignore);
  }

  /**
   * Hands the primary the config error this worker's start failed on, then ends the process (code 1) once the
   * primary has noted it. The primary prints it: once for the whole gateway when every start fails so (each worker of a
   * cluster printed the same line, once per restart, five restarts long). False, with nothing done, when there is no
   * primary to tell: the caller reports the error itself.
   */
  reportFailedStart(failure: FailedStart): boolean {
    if (!process.connected || process.send === undefined) return false;
    // Ended once the primary has acted on the report (FAILURE_NOTED): node:cluster emits a worker's 'exit' as soon as
    // it has exited, even before the messages it sent last are read, and an exit taken first is a crash restarted.
    // Bounded all the same, and ended when the primary goes away.
    const exit = (): never => process.exit(1);
    this.#failureNoted = exit;
    setTimeout(exit, FAILED_START_EXIT_MS);
    process.once('disconnect', exit);
    process.send({ type: START_FAILED, ...failure } satisfies ToPrimary, undefined, undefined, (err) => {
      if (!err) return;
      // Not delivered (the primary went away meanwhile): nobody else will print it.
      process.stderr.write(`portcullis: config error: ${shownOnTerminal(failure.reason)}\n`);
      exit();
    });
    return true;
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
    if (answerWatchdog(message)) return;
    const m = typed(message) as ToWorker | undefined;
    if (m?.type === START) this.#start?.resolve({ text: m.text, env: m.env });
    else if (m?.type === FAILURE_NOTED) this.#failureNoted?.();
    else if (m?.type === APPLY) {
      const snapshot = { text: m.text, env: m.env };
      this.#applying = this.#applying.then(() => this.#apply(m.seq, snapshot));
    } else if (m?.type === PREPARE) {
      const snapshot = { text: m.text, env: m.env };
      this.#applying = this.#applying.then(() => this.#prepareAndHold(m.seq, snapshot));
    } else if (m?.type === COMMIT || m?.type === DISCARD) {
      const decide = this.#decisions.get(m.of);
      this.#decisions.delete(m.of);
      decide?.(m.type === COMMIT ? { commitSeq: m.seq } : DISCARDED);
    } else if (m?.type === RELOADED) {
      const pending = this.#reloads.get(m.id);
      this.#reloads.delete(m.id);
      if (m.result === undefined) pending?.reject(new Error('the primary failed to reload'));
      else pending?.resolve(m.result);
    }
  }

  async #apply(seq: number, snapshot: ConfigSnapshot): Promise<void> {
    const { gateway, logger } = await this.#ready;
    try {
      // The primary checked this config already; parsed again here, it is the same config (same text, same variables).
      await gateway.reload(parseConfigText(snapshot.text, snapshot.env, this.#origin));
      answerPrimary({ type: APPLIED, seq, ok: true });
    } catch (err) {
      answerPrimary(failedAnswer(seq, err, logger));
    }
  }

  /** PREPARE: prepares the config, tells the primary, and holds it until the primary's COMMIT or DISCARD. */
  async #prepareAndHold(seq: number, snapshot: ConfigSnapshot): Promise<void> {
    const { gateway, logger } = await this.#ready;
    let prepared: PreparedReload;
    try {
      prepared = await gateway.prepareReload(parseConfigText(snapshot.text, snapshot.env, this.#origin));
    } catch (err) {
      return answerPrimary(failedAnswer(seq, err, logger));
    }
    // Listened for before the primary can send it (it decides once it has this answer).
    const decided = new Promise<Decision>((decide) => {
      if (process.connected) this.#decisions.set(seq, decide);
      else decide(DISCARDED);
    });
    logger.debug(EVENTS.configPrepared);
    answerPrimary({ type: APPLIED, seq, ok: true });
    const decision = await decided;
    // Not awaited: the next APPLY or PREPARE, measured against its own deadline, must not wait for the close()s of
    // the dropped config's plugin instances (shutdown waits for them).
    if (decision === DISCARDED) return void prepared.discard();
    try {
      prepared.commit();
      answerPrimary({ type: APPLIED, seq: decision.commitSeq, ok: true });
    } catch (err) {
      answerPrimary(failedAnswer(decision.commitSeq, err, logger));
    }
  }
}

/** The primary's decision on a config a worker holds: commit it (answered with COMMIT's sequence number), or not. */
type Decision = { readonly commitSeq: number } | typeof DISCARDED;
const DISCARDED = Symbol('discarded');

function answerPrimary(answer: ToPrimary): void {
  if (process.connected) process.send?.(answer, undefined, undefined, ignore);
}

/** The APPLIED answer for a config not applied (logged here first). */
function failedAnswer(seq: number, err: unknown, logger: Logger): ToPrimary {
  return { type: APPLIED, seq, ok: false, reason: logFailedApply(err, logger), abandoned: err instanceof ReloadAbandoned };
}

/** Logs why a worker did not apply a config; returns the reason its primary is told. */
function logFailedApply(err: unknown, logger: Logger): string {
  // The worker stops (a stop signal came while it prepared the config): not a refusal, and its primary stops too.
  if (err instanceof ReloadAbandoned) {
    logger.info({ reason: err.message }, EVENTS.reloadAbandoned);
    return err.message;
  }
  const reason = err instanceof ConfigError ? err.message : 'reload failed';
  logger.error(err instanceof ConfigError ? { reason } : { reason, cause: describeCause(err) }, EVENTS.configRejected);
  return reason;
}
