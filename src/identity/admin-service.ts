// The identity operations behind the admin API and the CLI: users, API keys, revocation and the audit event. HTTP-free.
import { createHash, randomUUID } from 'node:crypto';
import { GatewayError } from '../errors.js';
import type { KvStore } from '../kv/kv-store.js';
import type { AdminAction, AdminActor, AdminChangeInput, ApiKeyPage, ApiKeyRecord, UserSummary } from '../store/identity-types.js';
import { EmailTakenError, StoreUnavailableError, type UserStore } from '../store/user-store.js';
import { parseWith } from '../auth/body.js';
import type { AuthSchemas } from '../auth/validation.js';
import { emailSchema } from '../auth/validation.js';
import { generateApiKey } from './api-key-format.js';
import { apiKeySubject } from './api-key-verifier.js';
import { userSubject } from '../auth/phase.js';
import { PARSE_OPTIONS } from '../zod-parse.js';
import { API_KEY_CACHE_TTL_MAX_MS } from '../config/schema.js';

/**
 * Receives every admin action once its store change is committed (the audit log line and the metric), whether or not
 * its revocation then reached the revocation store (`revocation: 'pending'` when it did not). Never throws.
 */
export type AuditSink = (event: { actor: AdminActor; action: AdminAction; targetId: string; revocation?: 'pending' }) => void;

/**
 * What became of the revocation a committed action needs (disable, logout, set-password, delete, key revocation).
 * `done`: written to the revocation store (or there is none to write: a CLI on the memory store, whose gateways read
 * the change log). `pending`: the store change is committed and audited, but the revocation store refused the write
 * (Redis down); every running gateway writes it from the change log once Redis answers, and repeating the action
 * tries again at once. `cause` is for the log (its class and code only), never for a client.
 */
export type Propagation =
  | { readonly state: 'done'; readonly targetId: string }
  | { readonly state: 'pending'; readonly targetId: string; readonly cause: unknown };

/** A committed action's result and what became of its revocation. */
export interface Committed<T> {
  readonly value: T;
  readonly propagation: Propagation;
}

/**
 * How long a revoked API key stays in the revocation store: twice as long as any gateway may cache a key's record
 * (middleware.auth.api_key_cache_ttl, at most API_KEY_CACHE_TTL_MAX_MS).
 */
export const API_KEY_REVOCATION_TTL_MS = 2 * API_KEY_CACHE_TTL_MAX_MS;
/** Largest page of GET /admin/users and `users list`, and of GET /admin/api-keys and `api-keys list`. */
export const MAX_PAGE_SIZE = 100;
/**
 * The page size of GET /admin/api-keys and `api-keys list` when none is asked for: the largest, so a gateway with up to
 * 100 keys answers exactly what it did before keys were paged (every key), and only a larger one is cut, with a cursor.
 */
export const DEFAULT_API_KEY_PAGE_SIZE = MAX_PAGE_SIZE;

/**
 * What is wrong with a user list's email filter (`?email=`, `users list --email`), or undefined: one rule for the API
 * and the CLI, which took a control character (PostgreSQL refuses a NUL in text outright, answered as an outage) or
 * a filter longer than any email and answered an empty table.
 */
export function emailFilterProblem(filter: string): string | undefined {
  // Judged as it is used (emailPrefix trims it): blanks around it, a tab or a newline a script left, are no problem.
  const used = filter.trim();
  if (used.length > 254) return 'must be at most 254 characters';
  if (/[\u0000-\u001f\u007f]/.test(used)) return 'must not contain control characters';
  return undefined;
}

/** The prefix a user list is filtered on: the filter trimmed and lower-cased, as emails are stored. */
export function emailPrefix(filter: string): string {
  return filter.trim().toLowerCase();
}

/**
 * A page size as typed (`?limit=`, `users list --limit`): decimal digits for 1 to MAX_PAGE_SIZE, else undefined. Not
 * Number(): it reads `1e1`, `0x10`, ` 5`, `5.0` and `+5` as numbers, which the CLI took while this API refused them.
 */
export function pageLimit(text: string): number | undefined {
  const limit = /^\d{1,3}$/.test(text) ? Number(text) : NaN;
  return limit >= 1 && limit <= MAX_PAGE_SIZE ? limit : undefined;
}
/**
 * Longest `expires_in` of an API key: 3650 days (10 years). A key meant to outlive that is created without
 * `expires_in` (it never expires); a longer duration is a typo or a unit mistake, and past about 270 000 years it is
 * no date at all (an Invalid Date, which SQLite stored as NULL: a key that never expires).
 */
export const MAX_API_KEY_LIFETIME_MS = 3650 * 86_400_000;
/**
 * Shortest `expires_in` of an API key: one second. Shorter is a unit mistake (`--expires-in 0.0006` read as seconds
 * made a key of 1 ms, expired before it could be used); a test that wants a key to expire soon takes 1s.
 */
export const MIN_API_KEY_LIFETIME_MS = 1_000;
/** What the expiry rule says, in the 400's details and on the command line. */
export const API_KEY_LIFETIME_RULE =
  'must be a duration of at least 1s and at most 3650d (10 years); leave it out for a key that never expires';

/** Whether `ms` is a lifetime an API key may have (MIN_API_KEY_LIFETIME_MS to MAX_API_KEY_LIFETIME_MS). */
export function isApiKeyLifetime(ms: number): boolean {
  return ms >= MIN_API_KEY_LIFETIME_MS && ms <= MAX_API_KEY_LIFETIME_MS;
}

const API_KEY_ID = /^[0-9a-f]{16}$/;

export interface IdentityAdminDeps {
  readonly store: UserStore;
  /** The revocation store of the acting process: the gateway's own, or the CLI's Redis. Undefined: change log only. */
  readonly kv?: Pick<KvStore, 'revokeSubject' | 'revoke'>;
  readonly passwords: { hash(password: string): Promise<string> };
  /** The register rules, for create and set-password. */
  readonly schemas: Pick<AuthSchemas, 'register'>;
  /** How long a revoked user's tokens stay refused: the access-token lifetime plus clock tolerance. */
  readonly revocationTtlMs: number;
  readonly actor: AdminActor;
  readonly audit: AuditSink;
  /** Told after a revoking action, so this process's caches follow at once (API-key cache). */
  readonly onApiKeyRevoked?: (id: string) => void;
  readonly now?: () => number;
}

/** A created key: `key` is shown once and never stored. */
export interface CreatedApiKey extends ApiKeyRecord {
  readonly key: string;
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/**
 * Each action: validates, acts in the store (with its change-log row, in one transaction), then revokes in the
 * revocation store so every gateway sharing it refuses the credentials at once, then audits. Once the store change is
 * committed nothing throws for the revocation: its failure is reported as a pending Propagation (and audited all the
 * same), since an error would tell the caller the action failed when it is done. Unknown ids throw GatewayError
 * NOT_FOUND; bad input INVALID_BODY with details; store outages (before the commit) StoreUnavailableError.
 */
export class IdentityAdmin {
  readonly #d: IdentityAdminDeps;
  readonly #now: () => number;
  /**
   * Deletes addressed by email whose revocation is pending (Redis down): email → the deleted user's id and the first
   * delete's time. Kept in memory only (no email is ever stored or logged), for the revocation window at most, and
   * dropped once a retry has written the revocation: without it, repeating the request (as its 202 says to) found no
   * user by that email and answered 404 while the user's access tokens still worked.
   */
  readonly #pendingDeletes = new Map<string, { readonly id: string; readonly at: number }>();

  constructor(deps: IdentityAdminDeps) {
    this.#d = deps;
    this.#now = deps.now ?? Date.now;
  }

  async listUsers(query: { email?: string; cursor?: string; limit?: number }) {
    const limit = query.limit ?? 50;
    return this.#d.store.listUsers(
      {
        limit: Math.min(Math.max(1, limit), MAX_PAGE_SIZE),
        ...(query.email ? { emailPrefix: emailPrefix(query.email) } : {}),
        ...(query.cursor ? { cursor: query.cursor } : {}),
      },
      new Date(this.#now()),
    );
  }

  /** A user by id, or (for the CLI) by email. */
  async getUser(idOrEmail: string): Promise<UserSummary> {
    const id = await this.#resolve(idOrEmail);
    const user = await this.#d.store.getUserSummary(id, new Date(this.#now()));
    if (!user) throw new GatewayError('NOT_FOUND');
    return user;
  }

  async createUser(input: unknown): Promise<UserSummary> {
    const body = parseWith(this.#d.schemas.register, input);
    const passwordHash = await this.#d.passwords.hash(body.password);
    const id = randomUUID();
    try {
      // With its change row, in one transaction: the audit line below then says what was committed.
      await this.#d.store.createUser({ id, email: body.email, passwordHash }, this.#change('create_user', id));
    } catch (err) {
      if (err instanceof EmailTakenError) throw new GatewayError('EMAIL_TAKEN');
      throw err;
    }
    this.#audit('create_user', id);
    return this.getUser(id);
  }

  /** Repeating it (the user stays disabled) revokes again: the way to retry a pending revocation. */
  async disable(idOrEmail: string): Promise<Committed<UserSummary>> {
    const id = await this.#resolve(idOrEmail);
    const change = this.#change('disable', id);
    if (!(await this.#d.store.setUserDisabled(id, true, change))) throw new GatewayError('NOT_FOUND');
    const propagation = await this.#revokeUser(change);
    return { value: await this.getUser(id), propagation };
  }

  async enable(idOrEmail: string): Promise<UserSummary> {
    const id = await this.#resolve(idOrEmail);
    const change = this.#change('enable', id);
    if (!(await this.#d.store.setUserDisabled(id, false, change))) throw new GatewayError('NOT_FOUND');
    this.#audit('enable', id);
    return this.getUser(id);
  }

  async logout(idOrEmail: string): Promise<Committed<UserSummary>> {
    const id = await this.#resolve(idOrEmail);
    const change = this.#change('logout', id);
    if (!(await this.#d.store.logoutUser(id, change))) throw new GatewayError('NOT_FOUND');
    const propagation = await this.#revokeUser(change);
    return { value: await this.getUser(id), propagation };
  }

  async setPassword(idOrEmail: string, input: unknown): Promise<Committed<UserSummary>> {
    const id = await this.#resolve(idOrEmail);
    const user = await this.#d.store.findUserById(id);
    if (!user) throw new GatewayError('NOT_FOUND');
    const password = (input as { password?: unknown } | null)?.password;
    const body = parseWith(this.#d.schemas.register, { email: user.email, password });
    // Hashed before the change is made: its time is read after (and stamped again by the store inside its
    // transaction), or a refresh or login during the hash would get a token issued after the revocation time.
    const passwordHash = await this.#d.passwords.hash(body.password);
    const change = this.#change('set_password', id);
    if (!(await this.#d.store.resetPassword(id, passwordHash, change))) throw new GatewayError('NOT_FOUND');
    const propagation = await this.#revokeUser(change);
    return { value: await this.getUser(id), propagation };
  }

  /**
   * Deletes the user and revokes its tokens. For a user already gone whose deletion is in the change log within the
   * revocation window (its access tokens may be alive, and that deletion's revocation may have failed), the
   * revocation is written again first: NOT_FOUND only once it is in place, else pending. So a 404 never hides a
   * pending revocation, and a retry after a pending answer is what retries it. Past the window: NOT_FOUND at once.
   */
  async deleteUser(idOrEmail: string): Promise<Propagation> {
    // A delete addressed by email and left pending is retried by the same request: its email went with the row (the
    // change log holds ids only), so the id comes from what this process remembers of that delete or, in another
    // process (each CLI command is one), from the change log's mark of it (its email's digest, see #markPending).
    const email = UUID.test(idOrEmail) ? undefined : emailSchema.safeParse(idOrEmail, PARSE_OPTIONS).data;
    this.#forgetOldPendingDeletes();
    let remembered = email === undefined ? undefined : this.#pendingDeletes.get(email);
    let id: string;
    try {
      id = await this.#resolve(idOrEmail);
    } catch (err) {
      // Only when no user has the email now: one who registered it since is the user this request names.
      if (email === undefined || !(err instanceof GatewayError) || err.status !== 404) throw err;
      remembered ??= await this.#markedPendingDelete(email);
      if (remembered === undefined) throw err;
      id = remembered.id;
    }
    // `retried`: no row was deleted now, only an earlier delete's revocation was written again.
    const settle = async (propagation: Propagation, retried: boolean): Promise<Propagation> => {
      if (email === undefined) {
        // A retry by id (as the pending notice suggests) of a delete first addressed by email: once its revocation is
        // written, that delete's email digest has no use left, and is not kept.
        if (propagation.state === 'done' && retried) await this.#markPending(id, null);
        return propagation;
      }
      const at = remembered?.id === id ? remembered.at : this.#now();
      if (propagation.state === 'pending') this.#pendingDeletes.set(email, { id, at });
      else this.#pendingDeletes.delete(email);
      // A first delete that was done has no mark to clear.
      if (propagation.state === 'pending') await this.#markPending(id, email);
      else if (remembered !== undefined) await this.#markPending(id, null);
      return propagation;
    };
    const change = this.#change('delete', id);
    if (await this.#d.store.deleteUser(id, change)) return settle(await this.#revokeUser(change), false);
    const earlier = await this.#d.store.lastChange(id, 'delete', new Date(this.#now() - this.#d.revocationTtlMs));
    if (earlier === undefined) {
      if (email !== undefined) this.#pendingDeletes.delete(email);
      throw new GatewayError('NOT_FOUND');
    }
    // No store change, so no audit line: only the revocation is retried.
    const propagation = await settle(
      await this.#propagate(id, (kv) =>
        kv.revokeSubject(userSubject(id), Math.max(earlier.at.getTime(), this.#now()), this.#d.revocationTtlMs, earlier.generation),
      ),
      true,
    );
    if (propagation.state === 'done') throw new GatewayError('NOT_FOUND');
    return propagation;
  }

  /**
   * The time the store stamped on `change` inside its transaction, after the user's locks (see stampChange), and the
   * token generation it raised the user to there, read back from the change log. Not a time read after the commit: a
   * login that waited for those locks took its token's time after the stamp but maybe before such a later read, and
   * its first access token was refused. Should the read fail (the change is committed, so that is no failure of the
   * action), the time after the commit covers at least as much, and without a generation the revocation store judges
   * every token of the user by that time (subject-revocation.ts): refused up to it, never accepted wrongly.
   */
  async #stamped(change: AdminChangeInput): Promise<{ at: number; generation?: number }> {
    const afterCommit = Math.max(change.at.getTime(), this.#now());
    try {
      const recorded = await this.#d.store.lastChange(change.targetId, change.action, change.at);
      if (recorded === undefined) return { at: afterCommit };
      const at = Math.max(change.at.getTime(), recorded.at.getTime());
      return recorded.generation === undefined ? { at } : { at, generation: recorded.generation };
    } catch {
      return { at: afterCommit };
    }
  }

  /** Drops remembered pending deletes past the revocation window: their retry is a plain 404 by then. */
  #forgetOldPendingDeletes(): void {
    const oldest = this.#now() - this.#d.revocationTtlMs;
    for (const [email, entry] of this.#pendingDeletes) if (entry.at < oldest) this.#pendingDeletes.delete(email);
  }

  /** The pending delete of `email` the change log marks within the revocation window (another process's), if any. */
  async #markedPendingDelete(email: string): Promise<{ readonly id: string; readonly at: number } | undefined> {
    const change = await this.#d.store.findPendingDelete(emailDigest(email), new Date(this.#now() - this.#d.revocationTtlMs));
    return change === undefined ? undefined : { id: change.targetId, at: change.at.getTime() };
  }

  /**
   * Marks user `id`'s delete in the change log with the digest of `email` while its revocation is pending, or clears
   * the mark (null). Only a digest is stored, and only until the revocation is written or the window ends (the
   * change-log row is pruned). Best effort: the delete is committed, so a store that fails here must not make it read
   * as failed; this process still remembers it.
   */
  async #markPending(id: string, email: string | null): Promise<void> {
    try {
      await this.#d.store.markPendingDelete(id, email === null ? null : emailDigest(email));
    } catch (err) {
      if (!(err instanceof StoreUnavailableError)) throw err;
    }
  }

  /** Throws INVALID_BODY (field expires_in) for a lifetime under 1s or over MAX_API_KEY_LIFETIME_MS. */
  async createApiKey(input: { name: string; expiresInMs?: number }): Promise<CreatedApiKey> {
    const ms = input.expiresInMs;
    if (ms !== undefined && !isApiKeyLifetime(ms)) {
      throw new GatewayError('INVALID_BODY', { details: [{ field: 'expires_in', message: API_KEY_LIFETIME_RULE }] });
    }
    const generated = generateApiKey();
    const now = this.#now();
    const record = await this.#d.store.createApiKey(
      {
        id: generated.id,
        name: input.name,
        keyHash: generated.keyHash,
        expiresAt: ms === undefined ? null : new Date(now + ms),
      },
      this.#change('create_api_key', generated.id),
    );
    this.#audit('create_api_key', generated.id);
    return { ...record, key: generated.key };
  }

  /** One page of keys not revoked, newest first (`limit` 1..MAX_PAGE_SIZE, default DEFAULT_API_KEY_PAGE_SIZE). */
  listApiKeys(query: { cursor?: string; limit?: number } = {}): Promise<ApiKeyPage> {
    const limit = query.limit ?? DEFAULT_API_KEY_PAGE_SIZE;
    return this.#d.store.listApiKeys({ limit: Math.min(Math.max(1, limit), MAX_PAGE_SIZE), ...(query.cursor ? { cursor: query.cursor } : {}) });
  }

  /**
   * Revokes the key. As with deleteUser, a key already revoked within API_KEY_REVOCATION_TTL_MS (as long as any
   * gateway may still hold it in its cache) has its revocation written again first: NOT_FOUND once it is in place,
   * else pending. An older or unknown key is NOT_FOUND at once.
   */
  async revokeApiKey(id: string): Promise<Propagation> {
    // Not an id this gateway makes: unknown, without asking the store (PostgreSQL refuses a NUL in text outright).
    if (!API_KEY_ID.test(id)) throw new GatewayError('NOT_FOUND');
    const change = this.#change('revoke_api_key', id);
    let at = change.at.getTime();
    const revoked = await this.#d.store.revokeApiKey(id, change);
    if (!revoked) {
      const earlier = await this.#d.store.lastChange(id, 'revoke_api_key', new Date(this.#now() - API_KEY_REVOCATION_TTL_MS));
      if (earlier === undefined) throw new GatewayError('NOT_FOUND');
      at = earlier.at.getTime();
    }
    // This process's cache first: it needs no Redis.
    this.#d.onApiKeyRevoked?.(id);
    const propagation = await this.#propagate(id, (kv) => kv.revoke(apiKeySubject(id), at + API_KEY_REVOCATION_TTL_MS));
    if (!revoked) {
      if (propagation.state === 'done') throw new GatewayError('NOT_FOUND');
      return propagation;
    }
    this.#audit('revoke_api_key', id, propagation);
    return propagation;
  }

  /**
   * Refuses every access token of the user issued before the change (below the generation it raised the user to; a
   * token without one, up to its time), through the revocation store, then audits the committed change, whatever
   * became of the revocation.
   */
  async #revokeUser(change: AdminChangeInput): Promise<Propagation> {
    const { at, generation } = await this.#stamped(change);
    const propagation = await this.#propagate(change.targetId, (kv) =>
      kv.revokeSubject(userSubject(change.targetId), at, this.#d.revocationTtlMs, generation),
    );
    this.#audit(change.action, change.targetId, propagation);
    return propagation;
  }

  /**
   * Runs one revocation-store write. Any failure (KvUnavailableError, or anything else) becomes `pending`: it comes
   * after the commit, so it must not be told as the action's failure, and the change log holds what to write.
   */
  async #propagate(targetId: string, write: (kv: NonNullable<IdentityAdminDeps['kv']>) => Promise<void>): Promise<Propagation> {
    const kv = this.#d.kv;
    if (kv === undefined) return { state: 'done', targetId };
    try {
      await write(kv);
      return { state: 'done', targetId };
    } catch (cause) {
      return { state: 'pending', targetId, cause };
    }
  }

  /** An id as given, or the id of the user with that email (the CLI accepts both). */
  async #resolve(idOrEmail: string): Promise<string> {
    if (UUID.test(idOrEmail)) return idOrEmail.toLowerCase();
    const email = emailSchema.safeParse(idOrEmail, PARSE_OPTIONS);
    if (email.success) {
      const user = await this.#d.store.findUserByEmail(email.data);
      if (user) return user.id;
    }
    throw new GatewayError('NOT_FOUND');
  }

  #change(action: AdminAction, targetId: string): AdminChangeInput {
    return { actor: this.#d.actor, action, targetId, at: new Date(this.#now()) };
  }

  #audit(action: AdminAction, targetId: string, propagation?: Propagation): void {
    this.#d.audit({ actor: this.#d.actor, action, targetId, ...(propagation?.state === 'pending' ? { revocation: 'pending' as const } : {}) });
  }
}

/**
 * What the change log keeps of the email a pending delete was addressed by: its SHA-256 (base64url), never the email.
 * `email` is the parsed (trimmed, lower-cased) one.
 */
function emailDigest(email: string): string {
  return createHash('sha256').update(email).digest('base64url');
}

/** The admin API's JSON shape of a user (never the hash). */
export function userJson(user: UserSummary): Record<string, unknown> {
  return {
    user_id: user.id,
    email: user.email,
    created_at: user.createdAt.toISOString(),
    last_login_at: user.lastLoginAt?.toISOString() ?? null,
    disabled: user.disabled,
    active_sessions: user.activeSessions,
  };
}

/** The admin API's JSON shape of an API key (never the key or its hash). */
export function apiKeyJson(key: ApiKeyRecord): Record<string, unknown> {
  return {
    id: key.id,
    name: key.name,
    created_at: key.createdAt.toISOString(),
    last_used_at: key.lastUsedAt?.toISOString() ?? null,
    expires_at: key.expiresAt?.toISOString() ?? null,
  };
}
