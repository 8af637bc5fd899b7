// Reads the user store's change log at most once a second, so an action made by another process (the CLI beside an
// embedded gateway, another gateway's admin API) reaches this gateway's revocation store and caches within 1 s; and so
// a revocation whose first write to Redis failed (the acting process answered it as pending) is written once Redis
// answers again, by every running gateway, without anyone repeating the action.
import type { Logger } from 'pino';
import { EVENTS } from '../observability/events.js';
import { describeCause } from '../errors.js';
import type { KvStore } from '../kv/kv-store.js';
import { isAdminAction, TOKEN_REVOCATION, USER_REVOKING_ACTIONS, type ChangeRecord } from '../store/identity-types.js';
import type { UserStore } from '../store/user-store.js';
import { userSubject } from '../auth/phase.js';
import { API_KEY_REVOCATION_TTL_MS } from './admin-service.js';
import { apiKeySubject } from './api-key-verifier.js';

export interface ChangePollerOptions {
  /** markPendingDelete: clears a delete's email digest once this poller wrote the revocation it waited for. */
  readonly store: Pick<UserStore, 'readChanges' | 'markPendingDelete'>;
  /**
   * Where revocations are applied: the gateway's revocation store, memory or Redis alike. With Redis the acting
   * process has normally written it already; writing it again is harmless (the latest time is kept), and it is what
   * makes a write that failed then (Redis down: the action answered "pending") happen once Redis is back. Undefined:
   * no revocations applied here.
   */
  readonly kv?: Pick<KvStore, 'revokeSubject' | 'revoke' | 'dataLost' | 'evictionPolicy'>;
  /** How long a revoked user's tokens stay refused (access-token lifetime + clock tolerance), ms. */
  readonly revocationTtlMs: number;
  /** Drops a revoked key from this gateway's API-key cache. */
  readonly onApiKeyRevoked: (id: string) => void;
  /** Every change read after start-up (for metrics); history read at start-up is not reported. */
  readonly onChange?: (change: ChangeRecord) => void;
  readonly logger: Pick<Logger, 'warn' | 'info'>;
  /** Default 1000 ms. */
  readonly intervalMs?: number;
  readonly now?: () => number;
}

/** The changes that write to the revocation store. */
const REVOKING: ReadonlySet<string> = new Set([...USER_REVOKING_ACTIONS, 'revoke_api_key', TOKEN_REVOCATION]);

/** Rows read per query; a longer backlog is read in several queries of one poll. */
const BATCH = 500;
/** Queued revocations tried at once per poll (see #unapplied). */
const RETRY_AT_ONCE = 256;
/** Operators' actions (actor admin or cli) kept for the dashboard's "recent admin actions". */
const RECENT = 20;
/**
 * Users' own logouts of every session (actor user) kept beside them. Anyone can register and log out on the public
 * listener, so these are kept apart and few: a burst of them can no longer push an operator's disable or key
 * revocation off the list.
 */
const RECENT_BY_USERS = 3;
/** How often the revocation store's eviction policy is looked at (see #watchEviction). */
const EVICTION_CHECK_MS = 60_000;

/**
 * `start()` reads the changes still relevant (those younger than the longest revocation TTL, so a restarted
 * embedded gateway refuses tokens revoked before it started), then polls on an unref'd timer. Polls never overlap;
 * a failed poll is logged once per outage and retried next tick.
 */
export class ChangePoller {
  readonly #o: ChangePollerOptions;
  readonly #now: () => number;
  readonly #windowMs: number;
  #lastSeq = 0;
  /** The change read last (seq #lastSeq), to find the log replaced under this poller (see #logReplaced). */
  #lastRead: ChangeRecord | undefined;
  #timer: NodeJS.Timeout | undefined;
  #running: Promise<void> | undefined;
  #failing = false;
  /** True once the revocation store has answered a dataLost (its marker is written). */
  #markerWritten = false;
  /**
   * A loss found (the marker written again) whose window has not been read again yet. Kept across polls: the marker
   * says nothing of it any more, so a poll that failed after finding it (the user store not answering) must not
   * forget it, or the revocations stay lost.
   */
  #rereadOwed = false;
  readonly #recentByOperators: ChangeRecord[] = [];
  readonly #recentByUsers: ChangeRecord[] = [];
  /**
   * Revocations read from the log that the revocation store refused (Redis down), oldest first: retried before each
   * poll reads on, dropped once the tokens they refuse have expired anyway. Changes read while some wait are queued
   * without a try of their own, and a poll tries them RETRY_AT_ONCE at a time, going on while each batch writes
   * some, so an outage costs about one command timeout per poll, not one per change. Each is tried on its own: on a Redis Cluster one master that
   * refuses writes must not hold back the revocations that live on the others (it held them all, and their tokens
   * were accepted, until that master came back).
   */
  #unapplied: ChangeRecord[] = [];
  /** performance.now() of the last look at the eviction policy, and the policy last warned of (undefined: none). */
  #evictionCheckedAt = -Infinity;
  #evictionWarned: string | undefined;

  constructor(options: ChangePollerOptions) {
    this.#o = options;
    this.#now = options.now ?? Date.now;
    this.#windowMs = Math.max(options.revocationTtlMs, API_KEY_REVOCATION_TTL_MS);
  }

  async start(): Promise<void> {
    await this.#poll(false);
    this.#timer = setInterval(() => void this.poll(), this.#o.intervalMs ?? 1000);
    this.#timer.unref();
  }

  /** One poll (the timer's); joins a poll in progress. */
  poll(): Promise<void> {
    return this.#poll(true);
  }

  /**
   * The latest admin actions, newest first (the dashboard's list): operators' actions, and at most RECENT_BY_USERS
   * of users' own logouts among them.
   */
  get recent(): readonly ChangeRecord[] {
    return [...this.#recentByOperators, ...this.#recentByUsers].sort((a, b) => b.seq - a.seq);
  }

  async stop(): Promise<void> {
    if (this.#timer) clearInterval(this.#timer);
    this.#timer = undefined;
    await this.#running;
  }

  #poll(report: boolean): Promise<void> {
    this.#running ??= this.#readAll(report)
      .then(() => {
        this.#failing = false;
      })
      .catch((err: unknown) => {
        if (!this.#failing) this.#o.logger.warn({ cause: describeCause(err) }, 'identity change log unreadable');
        this.#failing = true;
      })
      .finally(() => {
        this.#running = undefined;
      });
    return this.#running;
  }

  /** How many revocations wait for the revocation store to answer again. */
  get unapplied(): number {
    return this.#unapplied.length;
  }

  async #readAll(report: boolean): Promise<void> {
    await this.#retryUnapplied();
    if (await this.#revocationsLost()) this.#rereadOwed = true;
    const log = await this.#logState();
    if (log !== 'intact' || this.#rereadOwed) {
      // Owed no more once the read starts from 0: a read that fails part way goes on from where it stopped (#lastSeq).
      this.#rereadOwed = false;
      // Read the window again from the start: applying a change twice is harmless (see #revoke), missing one is not.
      // As at start-up, what is read then is not reported (onChange): most of it was reported once already.
      report = false;
      this.#lastSeq = 0;
      this.#lastRead = undefined;
      // A replaced log's actions are another history: the dashboard's lists are rebuilt from it. After a prune they
      // stay (the re-read skips what they hold).
      if (log === 'replaced') {
        this.#recentByOperators.length = 0;
        this.#recentByUsers.length = 0;
      }
    }
    for (;;) {
      const notBefore = new Date(this.#now() - this.#windowMs);
      const changes = await this.#o.store.readChanges(this.#lastSeq, notBefore, BATCH);
      for (const change of changes) {
        await this.#apply(change);
        this.#lastSeq = change.seq;
        this.#lastRead = change;
        // A user's single-session logout is no admin action: the dashboard's list would drown in them.
        if (isAdminAction(change.action)) {
          const list = change.actor === 'user' ? this.#recentByUsers : this.#recentByOperators;
          if (!list.some((held) => sameChange(held, change))) {
            list.unshift(change);
            list.sort((a, b) => b.seq - a.seq); // a re-read after a prune meets older changes last
            if (list.length > (change.actor === 'user' ? RECENT_BY_USERS : RECENT)) list.pop();
          }
        }
        if (report) this.#o.onChange?.(change);
      }
      if (changes.length < BATCH) return;
    }
  }

  /**
   * True when the revocation store lost what it held (KvStore.dataLost: Redis restarted without persistence, flushed,
   * failed over to a replica, which may lack the revocations no replica had confirmed; on a cluster, the marker's
   * master only): every revocation of the window is then written again, as at
   * start-up. Without this a running gateway accepted every logged-out, disabled or deleted user's access token again
   * until it expired. Asked before the log is read, so a change committed meanwhile is read after the marker was
   * written; the first poll (start-up) reads the whole window anyway. A store that cannot answer says nothing: it is
   * asked again next poll, and a Redis that comes back empty is found then.
   */
  async #revocationsLost(): Promise<boolean> {
    const kv = this.#o.kv;
    if (kv?.dataLost === undefined) return false;
    let lost: boolean;
    try {
      lost = await kv.dataLost();
    } catch {
      return false;
    }
    // The first answer only writes the marker (a new Redis, or a first start on this prefix): nothing to say then.
    if (lost && this.#markerWritten) this.#o.logger.warn({ event: EVENTS.revocationsLost }, EVENTS.revocationsLost);
    this.#markerWritten = true;
    await this.#watchEviction(kv);
    return lost;
  }

  /**
   * A Redis that may evict keys (`maxmemory` set, `maxmemory-policy` other than noeviction; some managed services
   * default to volatile-lru) drops revocations under memory pressure without an error: they expire, so volatile-*
   * policies evict them first, and the marker, which does not, stays, so the loss is never found and a logged-out
   * token is accepted again. Nothing can be written back for it: it is said (warn) once per policy, at start and when
   * the policy changes (looked at once a minute, after the marker answered: Redis is up). A look that fails waits for
   * the next minute: INFO refused by an ACL must not cost a failed command every second.
   */
  async #watchEviction(kv: Pick<KvStore, 'evictionPolicy'>): Promise<void> {
    if (kv.evictionPolicy === undefined) return;
    const now = performance.now();
    if (now - this.#evictionCheckedAt < EVICTION_CHECK_MS) return;
    this.#evictionCheckedAt = now;
    let policy: string | undefined;
    try {
      policy = await kv.evictionPolicy();
    } catch {
      return;
    }
    if (policy !== undefined && policy !== this.#evictionWarned) {
      this.#o.logger.warn({ event: EVENTS.redisMayEvictRevocations, maxmemory_policy: policy }, EVENTS.redisMayEvictRevocations);
    }
    this.#evictionWarned = policy;
  }

  /**
   * 'intact' unless the log no longer holds the change read last, as it was: the database was dropped and restored
   * from an earlier dump, or replaced by another one. Its sequence then starts again below #lastSeq, and reading on after
   * #lastSeq would skip every change written since (another process's disable, logout or key revocation) until the
   * numbers caught up. One read by primary key, at any age (the window does not apply). A change the janitor pruned
   * (past its retention) is gone too: then the window is read again without a warning.
   */
  async #logState(): Promise<'intact' | 'pruned' | 'replaced'> {
    const last = this.#lastRead;
    if (last === undefined) return 'intact';
    const [found] = await this.#o.store.readChanges(last.seq - 1, new Date(0), 1);
    if (found !== undefined && sameChange(found, last)) return 'intact';
    // The janitor keeps a token revocation for the tokens' accept window (revocationTtlMs), the rest far longer.
    const keptMs = last.action === TOKEN_REVOCATION ? this.#o.revocationTtlMs : this.#windowMs;
    if (last.at.getTime() >= this.#now() - keptMs) {
      this.#o.logger.warn({ last_seq: last.seq, found_seq: found?.seq ?? null }, 'identity change log replaced; reading it again');
      return 'replaced';
    }
    return 'pruned';
  }

  /** This process's caches at once; the revocation store now, or queued for the next poll when it fails. */
  async #apply(change: ChangeRecord): Promise<void> {
    if (change.action === 'revoke_api_key') this.#o.onApiKeyRevoked(change.targetId);
    if (this.#o.kv === undefined || !REVOKING.has(change.action)) return;
    if (this.#unapplied.length > 0) {
      this.#unapplied.push(change);
      return;
    }
    try {
      await this.#revoke(this.#o.kv, change);
    } catch (err) {
      this.#unapplied.push(change);
      this.#o.logger.warn({ pending: this.#unapplied.length, cause: describeCause(err) }, EVENTS.revocationPending);
    }
  }

  async #retryUnapplied(): Promise<void> {
    const kv = this.#o.kv;
    if (kv === undefined || this.#unapplied.length === 0) return;
    // Past the window the tokens a change refuses have expired: nothing left to write. A change queued twice (the
    // window read again after a loss, while the first copy still waited) is written once.
    const notBefore = this.#now() - this.#windowMs;
    const queued = new Set<string>();
    this.#unapplied = this.#unapplied.filter((c) => {
      const key = changeKey(c);
      if (c.at.getTime() < notBefore || queued.has(key)) return false;
      queued.add(key);
      return true;
    });
    // Writes are idempotent and keep the latest time and generation: their order does not matter. Batches of
    // RETRY_AT_ONCE go on within the poll while each writes some: a backlog is written at once when Redis is back.
    let rest = this.#unapplied;
    const refused: ChangeRecord[] = [];
    let applied = 0;
    while (rest.length > 0) {
      const tried = rest.slice(0, RETRY_AT_ONCE);
      rest = rest.slice(tried.length);
      const results = await Promise.allSettled(tried.map((change) => this.#revoke(kv, change)));
      const written = tried.filter((_, i) => results[i]!.status === 'fulfilled');
      refused.push(...tried.filter((_, i) => results[i]!.status === 'rejected'));
      applied += written.length;
      for (const change of written) await this.#settled(change);
      if (written.length === 0) break; // still down: logged when each first failed; the rest waits for the next poll
    }
    // Those still refused go behind the ones not tried, so a long queue is gone through poll after poll.
    this.#unapplied = [...rest, ...refused];
    if (applied > 0) this.#o.logger.info({ applied, pending: this.#unapplied.length }, EVENTS.revocationsApplied);
  }

  /**
   * A delete whose revocation this poller could not write was pending for its acting process too (Redis was down for
   * both), which may have marked it with its email's digest so that a repeat by email finds it. Now that the revocation
   * is written, the mark has no use left: README promises it is cleared then, not at the janitor's pass. Every gateway
   * may clear it; the UPDATE is idempotent and only runs after an outage.
   */
  async #settled(change: ChangeRecord): Promise<void> {
    if (change.action === 'delete') await this.#o.store.markPendingDelete(change.targetId, null);
  }

  /** Idempotent: the stores keep the latest revocation time and highest generation, and a key revocation is a flag. */
  async #revoke(kv: Pick<KvStore, 'revokeSubject' | 'revoke'>, change: ChangeRecord): Promise<void> {
    const at = change.at.getTime();
    // A replay: no replica wait, no unreplicated count (the action itself did both, once).
    if (change.action === 'revoke_api_key') await kv.revoke(apiKeySubject(change.targetId), at + API_KEY_REVOCATION_TTL_MS, true);
    // The token was issued before the logout, so it stops being accepted within the accept window of `at`.
    else if (change.action === TOKEN_REVOCATION) await kv.revoke(change.targetId, at + this.#o.revocationTtlMs, true);
    // The generation the action raised the user to (none on rows written before generations existed): the same
    // one every replay writes, and never lowered by the store.
    else await kv.revokeSubject(userSubject(change.targetId), at, at + this.#o.revocationTtlMs - this.#now(), change.generation);
  }
}

/** One change's identity in the queue of unapplied ones (sameChange's fields). */
function changeKey(c: ChangeRecord): string {
  return `${c.seq}:${c.action}:${c.targetId}:${c.at.getTime()}`;
}

/** The same row of the log: seq, action, target and time alike. */
function sameChange(a: ChangeRecord, b: ChangeRecord): boolean {
  return a.seq === b.seq && a.action === b.action && a.targetId === b.targetId && a.at.getTime() === b.at.getTime();
}
