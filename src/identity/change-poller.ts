// Reads the user store's change log at most once a second, so an action made by another process (the CLI beside an
// embedded gateway, another gateway's admin API) reaches this gateway's memory revocation list and caches within 1 s.
import type { Logger } from 'pino';
import { describeCause } from '../errors.js';
import type { KvStore } from '../kv/kv-store.js';
import { USER_REVOKING_ACTIONS, type ChangeRecord } from '../store/identity-types.js';
import type { UserStore } from '../store/user-store.js';
import { userSubject } from '../auth/phase.js';
import { API_KEY_REVOCATION_TTL_MS } from './admin-service.js';
import { apiKeySubject } from './api-key-verifier.js';

export interface ChangePollerOptions {
  readonly store: Pick<UserStore, 'readChanges'>;
  /**
   * Where revocations are applied. Only a process-local (memory) store needs it: with Redis the acting process has
   * already written there, and every gateway reads the same Redis. Undefined: no revocations applied here.
   */
  readonly kv?: Pick<KvStore, 'revokeSubject' | 'revoke'>;
  /** How long a revoked user's tokens stay refused (access-token lifetime + clock tolerance), ms. */
  readonly revocationTtlMs: number;
  /** Drops a revoked key from this gateway's API-key cache. */
  readonly onApiKeyRevoked: (id: string) => void;
  /** Every change read after start-up (for metrics); history read at start-up is not reported. */
  readonly onChange?: (change: ChangeRecord) => void;
  readonly logger: Pick<Logger, 'warn'>;
  /** Default 1000 ms. */
  readonly intervalMs?: number;
  readonly now?: () => number;
}

/** Rows read per query; a longer backlog is read in several queries of one poll. */
const BATCH = 500;
/** Actions kept for the dashboard's "recent admin actions". */
const RECENT = 20;

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
  #timer: NodeJS.Timeout | undefined;
  #running: Promise<void> | undefined;
  #failing = false;
  readonly #recent: ChangeRecord[] = [];

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

  /** The latest changes, newest first (the dashboard's recent admin actions). */
  get recent(): readonly ChangeRecord[] {
    return this.#recent;
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

  async #readAll(report: boolean): Promise<void> {
    for (;;) {
      const notBefore = new Date(this.#now() - this.#windowMs);
      const changes = await this.#o.store.readChanges(this.#lastSeq, notBefore, BATCH);
      for (const change of changes) {
        await this.#apply(change);
        this.#lastSeq = change.seq;
        this.#recent.unshift(change);
        if (this.#recent.length > RECENT) this.#recent.pop();
        if (report) this.#o.onChange?.(change);
      }
      if (changes.length < BATCH) return;
    }
  }

  async #apply(change: ChangeRecord): Promise<void> {
    const at = change.at.getTime();
    if (USER_REVOKING_ACTIONS.has(change.action)) {
      const ttl = at + this.#o.revocationTtlMs - this.#now();
      await this.#o.kv?.revokeSubject(userSubject(change.targetId), at, ttl);
    } else if (change.action === 'revoke_api_key') {
      await this.#o.kv?.revoke(apiKeySubject(change.targetId), at + API_KEY_REVOCATION_TTL_MS);
      this.#o.onApiKeyRevoked(change.targetId);
    }
  }
}
