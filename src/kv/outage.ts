// The KV store's outage log, shared by every phase that meets a store failure (the limiters, the revocation check):
// one outage at a time, with hysteresis, so a flapping store writes a bounded number of lines however many requests
// fail in between.
import type { Logger } from 'pino';
import { EVENTS } from '../observability/events.js';
import { describeKvError } from './describe.js';
import type { KvUnavailableError } from './kv-store.js';

/** Who met the failure: a rate limiter (buckets, login throttle) or the authenticate phase (revocation list). */
export type OutageSource = 'rate_limit' | 'revocation';
/** The on_store_error policy that caller applied. */
export type OutagePolicy = 'allow' | 'deny';

/** What the log writes to. */
export type OutageLogger = Pick<Logger, 'warn' | 'info'>;

/** Timing of the log; the defaults suit production, tests shorten them. */
export interface OutageTiming {
  /**
   * An outage ends only after this long without a failure, at the next answer. A success in between does not end
   * it: in a Redis Cluster with one slot range down, successes on the healthy slots and failures on the dead one
   * alternate on every request, and so do answers and timeouts of a single Redis that stalls now and then (each
   * success once wrote "recovered", the next failure "unavailable": 5,197 lines in 20 s at 1,500 requests/s).
   */
  readonly quietMs?: number;
  /** While an outage lasts, a reminder line (with the failures since the last line) at most this often. */
  readonly reminderMs?: number;
  /** A different cause or connection error (ECONNREFUSED, then WRONGPASS) is logged at most this often. */
  readonly causeChangeMs?: number;
  /**
   * The clock, ms; monotonic performance.now() by default. Everything it times is a duration (quiet period, reminder
   * spacing, `outage_ms`): on the wall clock a step back of 10 minutes during an outage logged a negative `outage_ms`,
   * and one after its last failure held the outage open (no Recovered line, and the next outage written as a
   * continuation of it, so never announced) until the wall clock had caught up.
   */
  readonly now?: () => number;
}

const DEFAULT_QUIET_MS = 5_000;
const DEFAULT_REMINDER_MS = 60_000;
const DEFAULT_CAUSE_CHANGE_MS = 10_000;

/**
 * One store's outages. `failure` on every KvUnavailableError (cheap: no allocation unless a line is written),
 * `answered` after a store answer, but only while `active` (the success path then costs one field read).
 *
 * Lines, all with `event` = the message:
 * - `KV Store Unavailable` (warn) when an outage starts, naming the source, the policy, the failed command's cause
 *   and the connection error (class and code only); once more per outage for each other source and policy that
 *   meets it (the auth API denies while proxied routes allow: each is said once); again with `ongoing: true` at
 *   most every `reminderMs` or, when the cause or connection error changed, every `causeChangeMs`, with the
 *   failures since the previous line.
 * - `KV Store Recovered` (info) at the first answer `quietMs` after the last failure, with the outage's length
 *   (first to last failure) and its failure count.
 * So a store that flaps for an hour writes about one line a minute, not one a request.
 */
export class KvOutageLog {
  #logger: OutageLogger;
  readonly #quietMs: number;
  readonly #reminderMs: number;
  readonly #causeChangeMs: number;
  readonly #now: () => number;
  /** True from an outage's first failure until its Recovered line. */
  active = false;
  #since = 0;
  #lastFailure = 0;
  #lastLine = 0;
  #failures = 0;
  #failuresAtLastLine = 0;
  /** Bit per source × policy already named in this outage's lines. */
  #named = 0;
  /** What the last line said of the cause, compared by identity and code so that a failure allocates nothing. */
  #causeClass: unknown = undefined;
  #causeCode: unknown = undefined;
  #connection: string | undefined = undefined;

  constructor(logger: OutageLogger, timing: OutageTiming = {}) {
    this.#logger = logger;
    this.#quietMs = timing.quietMs ?? DEFAULT_QUIET_MS;
    this.#reminderMs = timing.reminderMs ?? DEFAULT_REMINDER_MS;
    this.#causeChangeMs = timing.causeChangeMs ?? DEFAULT_CAUSE_CHANGE_MS;
    this.#now = timing.now ?? (() => performance.now());
  }

  /** Later lines go to `logger` (a reload may bring a new one). */
  useLogger(logger: OutageLogger): void {
    this.#logger = logger;
  }

  /** A store failure met by `source`, which applies `policy`. Writes a line only at the transitions above. */
  failure(err: KvUnavailableError, source: OutageSource, policy: OutagePolicy): void {
    const now = this.#now();
    this.#failures++;
    this.#lastFailure = now;
    const bit = source === 'rate_limit' ? (policy === 'allow' ? 1 : 2) : policy === 'allow' ? 4 : 8;
    if (!this.active) {
      this.active = true;
      this.#since = now;
      this.#failures = 1;
      this.#failuresAtLastLine = 0;
      this.#named = bit;
      this.#line(err, source, policy, now, false);
      return;
    }
    if ((this.#named & bit) === 0) {
      this.#named |= bit;
      this.#line(err, source, policy, now, true);
      return;
    }
    const sinceLine = now - this.#lastLine;
    if (sinceLine >= this.#reminderMs || (sinceLine >= this.#causeChangeMs && this.#causeChanged(err))) {
      this.#line(err, source, policy, now, true);
    }
  }

  /** The store answered. Ends the outage once `quietMs` have passed since its last failure. */
  answered(): void {
    if (!this.active) return;
    const now = this.#now();
    if (now - this.#lastFailure < this.#quietMs) return;
    this.#logger.info(
      { event: EVENTS.kvStoreRecovered, outage_ms: this.#lastFailure - this.#since, failed_decisions: this.#failures },
      EVENTS.kvStoreRecovered,
    );
    this.active = false;
    this.#named = 0;
    this.#causeClass = undefined;
    this.#causeCode = undefined;
    this.#connection = undefined;
  }

  #causeChanged(err: KvUnavailableError): boolean {
    const cause = err.cause;
    return (
      err.connection !== this.#connection ||
      (cause instanceof Error ? cause.constructor : typeof cause) !== this.#causeClass ||
      codeProperty(cause) !== this.#causeCode
    );
  }

  #line(err: KvUnavailableError, source: OutageSource, policy: OutagePolicy, now: number, ongoing: boolean): void {
    const cause = err.cause;
    this.#causeClass = cause instanceof Error ? cause.constructor : typeof cause;
    this.#causeCode = codeProperty(cause);
    this.#connection = err.connection;
    const fields: Record<string, unknown> = {
      event: EVENTS.kvStoreUnavailable,
      source,
      policy,
      cause: describeKvError(cause),
    };
    if (err.connection !== undefined) fields.connection_error = err.connection;
    if (ongoing) {
      fields.ongoing = true;
      fields.outage_ms = now - this.#since;
      fields.failed_decisions = this.#failures;
      fields.failed_since_last_line = this.#failures - this.#failuresAtLastLine;
    }
    this.#lastLine = now;
    this.#failuresAtLastLine = this.#failures;
    this.#logger.warn(fields, EVENTS.kvStoreUnavailable);
  }
}

/** `code` of an error (node's), read without allocating; undefined for anything else. */
function codeProperty(err: unknown): unknown {
  return err instanceof Error ? (err as Error & { code?: unknown }).code : undefined;
}

/** One log per store object, so the limiters and the authenticate phases built on one store share its outages. */
const SHARED = new WeakMap<object, KvOutageLog>();

/**
 * The outage log of `store` (made on first use). Every phase built on the same store object (the composition root
 * hands one to all of them, and keeps it across reloads) gets the same log; the latest logger given is used.
 */
export function sharedOutageLog(store: object, logger: OutageLogger): KvOutageLog {
  let log = SHARED.get(store);
  if (log === undefined) {
    log = new KvOutageLog(logger);
    SHARED.set(store, log);
  } else {
    log.useLogger(logger);
  }
  return log;
}
