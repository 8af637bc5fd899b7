// The rate-limit phase: key from ctx → store.take() → pass, or 429; RateLimit-* headers on every limited response.
import { createHash } from 'node:crypto';
import type { OutgoingHttpHeaders } from 'node:http';
import type { Logger } from 'pino';
import type { Config } from '../config/schema.js';
import { GatewayError } from '../errors.js';
import { KvUnavailableError, peekBucket, type BucketRule, type KvStore, type TakeResult } from '../kv/kv-store.js';
import { sharedOutageLog, type KvOutageLog } from '../kv/outage.js';
import type { RequestContext } from '../pipeline/context.js';
import type { Outcome, Phase } from '../pipeline/phase.js';
import { sendError } from '../pipeline/reply.js';
import { ContextSlot } from '../pipeline/slot.js';
import { CALLER, CONSUMER } from '../auth/caller.js';
import type { AuthFailurePenalty } from '../auth/phase.js';
import { JWKS_PATH } from '../auth/paths.js';
import { addressBucketKey } from './address-key.js';
import { creditRule, creditWaitMs, ruleFromConfig } from './bucket.js';
import { noopRateLimitEvents, type RateLimitEventSink } from './events.js';
import { KeyReadGate } from './key-read-gate.js';

/** The `middleware.rate_limit` config slice. */
export type RateLimitConfig = Config['middleware']['rate_limit'];

/** What the rate limiter decided, for the RateLimit-* response headers. */
export interface RateLimitState {
  readonly limit: number;
  readonly remaining: number;
  /** Seconds until the bucket is full again. */
  readonly resetSeconds: number;
  /** The policy in RateLimit-Policy form, e.g. "10;w=6". */
  readonly policy: string;
}

/** `RATE_LIMIT_STATE.get(ctx)`: the decision of the limiter that ran for this request (the tighter one). */
export const RATE_LIMIT_STATE = new ContextSlot<RateLimitState>('rate_limit');

/**
 * An auth API request's rate-limit decision until it is counted. The decision metric counts one decision per request
 * (pass + reject = requests limited), and a login meets the login throttle's buckets after the /auth/* one: its pass
 * is counted once it is final. That is at the later of the request's logging phase and the throttle's decision: a
 * client may leave (the request logged 499) while a bucket's take is still under way, and that take's outcome is then
 * the one counted, once.
 */
interface AuthDecision {
  /** Every bucket so far let it through, and that pass is not counted yet. */
  pendingPass: boolean;
  /** The request's logging phase has run: a decision made after it is counted at once. */
  logged: boolean;
  /** The login throttle is deciding: a pass pending now is not final at the logging phase. */
  throttling: boolean;
}
const AUTH_DECISION = new ContextSlot<AuthDecision>('rate_limit.auth_decision');

function authDecision(ctx: RequestContext): AuthDecision {
  let decision = AUTH_DECISION.get(ctx);
  if (decision === undefined) AUTH_DECISION.set(ctx, (decision = { pendingPass: false, logged: false, throttling: false }));
  return decision;
}

/** The key-read bucket a request's uncached API-key read entered (KeyReadGate), until the read is over. */
const KEY_READ = new ContextSlot<string>('rate_limit.key_read');

/**
 * Which requests a limiter instance serves: the gateway's auth API (the stricter `auth` rule, by client address),
 * or proxied routes under the default policy or a named one (by user when authenticated, else by address).
 */
export type LimiterScope = { readonly kind: 'auth' } | { readonly kind: 'policy'; readonly name: string; readonly rule: { readonly requests_per_minute: number; readonly burst_size: number } };

/** What createRateLimitPhase needs; built once by the composition root. */
export interface RateLimitDeps {
  readonly config: RateLimitConfig;
  /** Default: the default policy (`middleware.rate_limit` itself). */
  readonly scope?: LimiterScope;
  readonly store: KvStore;
  /** The root (or a component child) logger; only outage transitions are logged, never per request. */
  readonly logger: Logger;
  /**
   * Where store outages are logged. Default: the log shared by everything built on `store` (sharedOutageLog), so
   * the limiters and the authenticate phase write one outage once.
   */
  readonly outage?: KvOutageLog;
  /** Decision counters (metrics). Default: no-op. */
  readonly events?: RateLimitEventSink;
}

/**
 * Called by the login route before checking a password. Takes a token from the strict bucket of this email from
 * this client address (`auth.per_email_address`: 429 when empty), then from the looser bucket of the email from
 * anywhere (`auth.per_email`): when that one is empty the login takes its token on credit and waits until it would
 * have refilled, so concurrent guesses go on to the password check one refill apart; when that wait would pass
 * `max_delay`, 429 at once. 'responded' means a 429 (or a 503 under `auth.on_store_error: deny`) was sent and the
 * route must stop.
 */
export type LoginThrottle = (ctx: RequestContext, email: string) => Promise<Outcome>;

/**
 * Called by the login route when a login that `LoginThrottle` let through was refused before its password was checked
 * (the password hasher's queue was full): gives back the login tokens the throttle took for it, so a flood that keeps
 * the hasher busy does not use up its victims' own limits. Does nothing for a request the throttle took nothing for.
 */
export type LoginRefund = (ctx: RequestContext) => Promise<void>;

/** The login buckets a request's throttle took a token from (their keys), for LoginRefund. */
interface LoginTokens {
  readonly strict: string;
  readonly loose: string | undefined;
}

const LOGIN_TOKENS = new ContextSlot<LoginTokens>('login_tokens');

/** The limiter as a pipeline phase, plus the login throttle for the auth routes. */
export interface RateLimitPhase extends Phase {
  readonly throttleLogin: LoginThrottle;
  readonly refundLogin: LoginRefund;
  /**
   * Takes a token from the client address's bucket for a failed authentication: 'responded' (429) once the
   * bucket is empty, so a flood of bad tokens meets the limit. Undefined when the limiter is disabled.
   */
  readonly penalize?: AuthFailurePenalty;
}

/**
 * Bucket-key families: u: user, k: API key, p: client address (proxied routes and the failed-auth penalty), f: client
 * address's API keys the store did not find valid, looked at before an uncached key's read (auth/phase.ts), a: the
 * auth API by address, l: login by email + address, le: login by email (and plugin:<name>: in plugins/store.ts).
 * The default policy's keys are the family and ':' then the id, as they always were; a named policy's are the family,
 * '|', the policy name, '|', then the id. Policy names cannot hold '|' (the config's name pattern), so the first '|'
 * after the family ends the name whatever the id holds (an IPv6 address or /64 key holds ':', which a policy name
 * may too: `p:abcd:1::` was both policy abcd's 1:: and the default policy's abcd:1::).
 */
export function policyKeyPrefix(family: 'u' | 'k' | 'p' | 'f', policy: string): string {
  return policy === 'default' ? family + ':' : `${family}|${policy}|`;
}

/** The key of a login bucket by email (`digest`, base64url: no ':') and, for the strict one, client address. */
export function loginKey(digest: string, address?: string): string {
  return address === undefined ? 'le:' + digest : `l:${digest}:${address}`;
}

/** A rule with everything the headers need, resolved at construction. */
interface ResolvedRule {
  readonly bucket: BucketRule;
  readonly limit: number;
  readonly policy: string;
}

const RETRY_AFTER_STORE_DOWN = '1';

/** 429s by Retry-After value: a flood of rejections shares a handful of errors instead of allocating one each. */
const RATE_LIMITED_BY_SECONDS = new Map<number, GatewayError>();

function rateLimited(retryAfter: number): GatewayError {
  let error = RATE_LIMITED_BY_SECONDS.get(retryAfter);
  if (error === undefined) {
    error = new GatewayError('RATE_LIMITED', { body: { retry_after: retryAfter }, headers: { 'retry-after': String(retryAfter) } });
    if (RATE_LIMITED_BY_SECONDS.size < 4096) RATE_LIMITED_BY_SECONDS.set(retryAfter, error);
  }
  return error;
}

function resolveRule(limit: { readonly requests_per_minute: number; readonly burst_size: number }): ResolvedRule {
  const bucket = ruleFromConfig(limit);
  // The window is the time an empty bucket takes to fill: burst / (rpm / 60) seconds.
  const window = Math.ceil((limit.burst_size * 60) / limit.requests_per_minute);
  return { bucket, limit: limit.burst_size, policy: `${limit.burst_size};w=${window}` };
}

/**
 * Hashes an email for the login bucket keys: keeps addresses out of Redis and bounds the key length. Emails are
 * compared case-insensitively, like the user store does.
 */
function emailDigest(email: string): string {
  return createHash('sha256').update(email.trim().toLowerCase()).digest('base64url').slice(0, 22);
}

function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

class Limiter implements RateLimitPhase {
  readonly name = 'rate-limit';
  readonly #store: KvStore;
  readonly #events: RateLimitEventSink;
  readonly #main: ResolvedRule;
  readonly #auth: ResolvedRule;
  readonly #perEmailAddress: ResolvedRule;
  /** The per-email rule as configured (the wait is read against it) and as the store runs it: with max_delay of credit. */
  readonly #perEmail: ResolvedRule;
  readonly #perEmailLending: ResolvedRule;
  readonly #maxLoginDelayMs: number;
  readonly #ipv6Prefix: number;
  /** This instance's store-error policy: `auth.on_store_error` (default deny) for the auth API, else `on_store_error`. */
  readonly #deny: boolean;
  readonly #forAuthApi: boolean;
  /** Key prefixes of this instance's policy (policyKeyPrefix). */
  readonly #userPrefix: string;
  readonly #consumerPrefix: string;
  readonly #addressPrefix: string;
  readonly #keyReadPrefix: string;
  /** The uncached key reads under way per key-read bucket, in this process (#checkKeyRead). */
  readonly #keyReads = new KeyReadGate();
  // Shared, immutable error: a store outage allocates no Error (and captures no stack) per request.
  readonly #unavailable = new GatewayError('KV_UNAVAILABLE', { headers: { 'retry-after': RETRY_AFTER_STORE_DOWN } });
  /** Outage transitions (shared with the other phases on this store): never a line per request. */
  readonly #outage: KvOutageLog;

  constructor(deps: RateLimitDeps) {
    this.#store = deps.store;
    this.#outage = deps.outage ?? sharedOutageLog(deps.store, deps.logger);
    this.#events = deps.events ?? noopRateLimitEvents;
    const scope = deps.scope ?? { kind: 'policy', name: 'default', rule: deps.config };
    this.#forAuthApi = scope.kind === 'auth';
    this.#main = resolveRule(scope.kind === 'auth' ? deps.config : scope.rule);
    const policy = scope.kind === 'policy' ? scope.name : 'default';
    this.#userPrefix = policyKeyPrefix('u', policy);
    this.#consumerPrefix = policyKeyPrefix('k', policy);
    this.#addressPrefix = policyKeyPrefix('p', policy);
    this.#keyReadPrefix = policyKeyPrefix('f', policy);
    this.#auth = resolveRule(deps.config.auth);
    this.#perEmailAddress = resolveRule(deps.config.auth.per_email_address);
    this.#maxLoginDelayMs = deps.config.auth.per_email.max_delay;
    this.#perEmail = resolveRule(deps.config.auth.per_email);
    // Headers of a refusal name the configured burst and window; the store runs the bucket with its credit line.
    this.#perEmailLending = { ...this.#perEmail, bucket: creditRule(this.#perEmail.bucket, this.#maxLoginDelayMs) };
    this.#ipv6Prefix = deps.config.ipv6_prefix;
    // The auth API and the login buckets have their own policy, so brute-force limits never vanish with Redis.
    this.#deny = (this.#forAuthApi ? deps.config.auth.on_store_error : deps.config.on_store_error) === 'deny';
    // Built at start-up and by every reload: where a reload changed this policy's rules, the buckets written before
    // are judged under the new ones from now on.
    const rules = this.#forAuthApi ? [this.#auth.bucket, this.#perEmailAddress.bucket, this.#perEmailLending.bucket] : [this.#main.bucket];
    deps.store.expectRules?.(this.#forAuthApi ? 'auth' : `policy:${policy}`, rules);
    if (this.#forAuthApi) {
      this.onLogging = (ctx) => {
        const decision = authDecision(ctx);
        decision.logged = true;
        if (!decision.pendingPass || decision.throttling) return; // the throttle's decision counts it
        decision.pendingPass = false;
        this.#events.record('pass', ctx.route.name);
      };
    }
  }

  /** The auth API's instance only: its requests' passes are counted here, once final (AuthDecision). */
  readonly onLogging?: (ctx: RequestContext) => void;

  /** A request this limiter let through: counted now, or for the auth API once no later bucket can refuse it. */
  #passed(ctx: RequestContext): void {
    if (!this.#forAuthApi) {
      this.#events.record('pass', ctx.route.name);
      return;
    }
    const decision = authDecision(ctx);
    decision.throttling = false;
    if (decision.logged) this.#events.record('pass', ctx.route.name);
    else decision.pendingPass = true;
  }

  /** A refusal or store failure is the request's decision: an earlier pass of it is never counted. */
  #decidedOtherwise(ctx: RequestContext): void {
    const decision = AUTH_DECISION.get(ctx);
    if (decision === undefined) return;
    decision.pendingPass = false;
    decision.throttling = false;
  }

  /** The client's address as a bucket identity: IPv6 reduced to its network prefix (`ipv6_prefix`, a /64). */
  #address(ctx: RequestContext): string {
    return addressBucketKey(ctx.clientAddress, this.#ipv6Prefix);
  }

  /** Request filter. The auth API: the stricter rule by client address; proxied routes: user id, API key id, else address. */
  onRequest(ctx: RequestContext): Outcome | Promise<Outcome> {
    if (this.#forAuthApi) {
      // The JWKS document shares the auth API's route but is public key material that backends fetch to verify
      // tokens themselves: counting it in the brute-force bucket gave a backend fleet behind one address 429s (and
      // spent that address's logins), and under auth.on_store_error deny a Redis outage 503'd it. Served unlimited,
      // as /health is.
      if (ctx.path === JWKS_PATH) return 'continue';
      return this.#decide(ctx, 'a:' + this.#address(ctx), this.#auth);
    }
    const user = CALLER.get(ctx);
    if (user !== undefined) return this.#decide(ctx, this.#userPrefix + user.id, this.#main);
    const consumer = CONSUMER.get(ctx);
    const key = consumer === undefined ? this.#addressPrefix + this.#address(ctx) : this.#consumerPrefix + consumer.id;
    return this.#decide(ctx, key, this.#main);
  }

  readonly penalize: AuthFailurePenalty = Object.assign(
    (ctx: RequestContext): Outcome | Promise<Outcome> => this.#decide(ctx, this.#addressPrefix + this.#address(ctx), this.#main),
    { checkKeyRead: (ctx: RequestContext) => this.#checkKeyRead(ctx), endKeyRead: (ctx: RequestContext, unknown: boolean) => this.#endKeyRead(ctx, unknown) },
  );

  /**
   * Before an uncached API key's store read: the address's key-read bucket (same rule as its traffic bucket, apart
   * from it) looked at without spending (KvStore.peek), so valid keys never spend it, however many are read at once.
   * (A take given back at once held the token for a round trip on Redis: ten valid keys at once from one address
   * found a burst of 3 emptied by each other's looks, and seven got 429.) Empty: the 429 as any limit's. Otherwise no headers, no 'pass' event (the request is limited later by its own
   * bucket). A store failure lets the read go on, as before keys were counted: the key's own checks and the route's
   * limiter apply on_store_error, not this look.
   * The reads already under way against the bucket count as spent (KeyReadGate): past them, a request waits for one
   * to end and looks again, so keys sent at once reach the store no more often than keys sent one after another.
   */
  async #checkKeyRead(ctx: RequestContext): Promise<Outcome> {
    const key = this.#keyReadPrefix + this.#address(ctx);
    for (let woken = false; ; woken = true) {
      let result: TakeResult;
      try {
        result = await peekBucket(this.#store, key, this.#main.bucket);
      } catch (err) {
        if (woken) this.#keyReads.passOn(key);
        return this.#keyReadUnknown(ctx, err);
      }
      if (!result.allowed) {
        if (woken) this.#keyReads.passOn(key);
        return this.#apply(ctx, result, this.#main);
      }
      // Allowed: this look's own token and the whole ones left after it.
      if (this.#keyReads.tryEnter(key, result.remaining + 1)) {
        KEY_READ.set(ctx, key);
        // A waiter that got in lets the next one look too: the bucket may hold more tokens now (refilled, or the
        // read that woke it found a valid key), and the reads under way rise back to them rather than staying one.
        if (woken) this.#keyReads.passOn(key);
        return 'continue';
      }
      await this.#keyReads.waitTurn(key);
    }
  }

  #keyReadUnknown(ctx: RequestContext, err: unknown): Outcome {
    if (!(err instanceof KvUnavailableError)) throw err;
    this.#events.record('store_error', ctx.route.name); // the metric stays exact; the outage log is the key checks'
    return 'continue';
  }

  /**
   * The store read #checkKeyRead let through is over. A key the store did not find valid (`unknown`) spends a token
   * of the address's key-read bucket first, so the next request waiting on the gate sees it spent.
   */
  async #endKeyRead(ctx: RequestContext, unknown: boolean): Promise<void> {
    const entered = KEY_READ.get(ctx);
    KEY_READ.set(ctx, undefined);
    try {
      if (unknown) await this.#store.take(this.#keyReadPrefix + this.#address(ctx), this.#main.bucket);
    } catch (err) {
      if (!(err instanceof KvUnavailableError)) throw err; // spent or not, the key is refused the same
    } finally {
      if (entered !== undefined) this.#keyReads.leave(entered);
    }
  }

  /** Response filter: the RateLimit-* headers on every response whose request went through the limiter. */
  onResponse(ctx: RequestContext, headers: OutgoingHttpHeaders): void {
    const state = RATE_LIMIT_STATE.get(ctx);
    if (state === undefined) return;
    // Lower-case names so they replace an upstream's own ratelimit-* headers instead of being sent twice.
    headers['ratelimit-limit'] = state.limit;
    headers['ratelimit-remaining'] = state.remaining;
    headers['ratelimit-reset'] = state.resetSeconds;
    headers['ratelimit-policy'] = state.policy;
  }

  readonly throttleLogin: LoginThrottle = async (ctx, email) => {
    // Until its decision, the /auth/* bucket's pass is not final (AuthDecision).
    authDecision(ctx).throttling = true;
    try {
      return await this.#throttle(ctx, email);
    } finally {
      // A throw (not a store failure) made no decision: the /auth/* bucket's pass is the request's, counted by the
      // logging phase, or now if that has run meanwhile.
      const decision = authDecision(ctx);
      decision.throttling = false;
      if (decision.logged && decision.pendingPass) {
        decision.pendingPass = false;
        this.#events.record('pass', ctx.route.name);
      }
    }
  };

  async #throttle(ctx: RequestContext, email: string): Promise<Outcome> {
    const digest = emailDigest(email);
    const strictKey = loginKey(digest, this.#address(ctx));
    const looseKey = loginKey(digest);
    let strict: TakeResult | undefined;
    let loose: TakeResult;
    try {
      strict = await this.#store.take(strictKey, this.#perEmailAddress.bucket);
      if (!strict.allowed) return this.#apply(ctx, strict, this.#perEmailAddress);
      loose = await this.#store.take(looseKey, this.#perEmailLending.bucket);
    } catch (err) {
      const outcome = this.#storeError(ctx, err);
      // Refused (503 under deny) after the per-email + address token was spent: no password check, so it goes back
      // (the two buckets may live on different Redis Cluster masters, one of them down).
      if (strict !== undefined && outcome === 'responded') await this.#refund(strictKey);
      // Let through (allow): only the per-email + address token was spent.
      else if (strict !== undefined) LOGIN_TOKENS.set(ctx, { strict: strictKey, loose: undefined });
      return outcome;
    }
    if (!loose.allowed) {
      // The email's debt is already max_delay deep: no password check, and Retry-After says when a login is admitted.
      // This login guessed nothing, so its per-email + address token goes back: an owner who retries during an
      // attack on the account must not empty their own bucket and stay locked out after the attack ends. (The
      // strict bucket is still taken first, so an address that has run it dry cannot drain the per-email bucket.)
      await this.#refund(strictKey);
      return this.#apply(ctx, loose, this.#perEmailLending);
    }
    LOGIN_TOKENS.set(ctx, { strict: strictKey, loose: looseKey });
    const previous = RATE_LIMIT_STATE.get(ctx);
    // Report the tighter of the two refusing buckets (address, email + address) in the headers.
    if (previous === undefined || strict.remaining < previous.remaining) this.#apply(ctx, strict, this.#perEmailAddress);
    else {
      if (this.#outage.active) this.#outage.answered();
      this.#passed(ctx);
    }
    // Many guesses at this email from everywhere: this login's token was lent; wait until it would have refilled, so
    // the guesses reach the password check at the per-email rate however many arrive at once.
    const wait = creditWaitMs(loose, this.#perEmail.bucket);
    if (wait > 0) await delay(Math.min(wait, this.#maxLoginDelayMs));
    return 'continue';
  }

  readonly refundLogin: LoginRefund = async (ctx) => {
    const taken = LOGIN_TOKENS.get(ctx);
    if (taken === undefined) return;
    LOGIN_TOKENS.set(ctx, undefined);
    await this.#refund(taken.strict);
    if (taken.loose !== undefined) await this.#refund(taken.loose, this.#perEmailLending.bucket);
  };

  /**
   * Gives back a login token (by default the per-email + address one) of a login refused before its password check.
   * The refusal stands whatever happens here: a refund the store cannot make only leaves the token spent (the
   * store-error metric counts it).
   */
  async #refund(key: string, rule: BucketRule = this.#perEmailAddress.bucket): Promise<void> {
    try {
      await this.#store.refund?.(key, rule);
    } catch (err) {
      if (!(err instanceof KvUnavailableError)) throw err;
    }
  }

  /** Synchronous when the store answers synchronously (memory): no promise, no await on that path. */
  #decide(ctx: RequestContext, key: string, rule: ResolvedRule): Outcome | Promise<Outcome> {
    let taken: TakeResult | Promise<TakeResult>;
    try {
      taken = this.#store.take(key, rule.bucket);
    } catch (err) {
      return this.#storeError(ctx, err);
    }
    if (taken instanceof Promise) return this.#decideAsync(ctx, taken, rule);
    return this.#apply(ctx, taken, rule);
  }

  async #decideAsync(ctx: RequestContext, taken: Promise<TakeResult>, rule: ResolvedRule): Promise<Outcome> {
    let result: TakeResult;
    try {
      result = await taken;
    } catch (err) {
      return this.#storeError(ctx, err);
    }
    return this.#apply(ctx, result, rule);
  }

  #apply(ctx: RequestContext, result: TakeResult, rule: ResolvedRule): Outcome {
    if (this.#outage.active) this.#outage.answered();
    const route = ctx.route.name;
    RATE_LIMIT_STATE.set(ctx, {
      limit: rule.limit,
      remaining: result.remaining,
      resetSeconds: Math.ceil(result.resetMs / 1000),
      policy: rule.policy,
    });
    if (result.allowed) {
      this.#passed(ctx);
      return 'continue';
    }
    this.#decidedOtherwise(ctx); // a login refused by its own buckets after the /auth/* one let it through
    this.#events.record('reject', route);
    let retryAfter = Math.ceil(result.retryAfterMs / 1000);
    if (retryAfter < 1) retryAfter = 1;
    return sendError(ctx, rateLimited(retryAfter));
  }

  /**
   * A store failure: counted (every one: the metric stays exact), handed to the outage log (which writes only at
   * transitions), then the on_store_error policy. Other errors propagate.
   */
  #storeError(ctx: RequestContext, err: unknown): Outcome {
    if (!(err instanceof KvUnavailableError)) throw err;
    this.#decidedOtherwise(ctx);
    this.#events.record('store_error', ctx.route.name);
    this.#outage.failure(err, 'rate_limit', this.#deny ? 'deny' : 'allow');
    return this.#deny ? sendError(ctx, this.#unavailable) : 'continue';
  }
}

/** With rate limiting disabled: a phase without hooks (the driver skips it) and a login throttle that always continues. */
class DisabledLimiter implements RateLimitPhase {
  readonly name = 'rate-limit';
  readonly throttleLogin: LoginThrottle = async () => 'continue';
  readonly refundLogin: LoginRefund = async () => undefined;
}

/**
 * The default policy while `enabled` is false but the auth protections are on: no hooks (proxied traffic is not
 * limited), only the failed-authentication penalty on the address bucket, which is one of the auth protections.
 */
class PenaltyOnlyLimiter implements RateLimitPhase {
  readonly name = 'rate-limit';
  readonly throttleLogin: LoginThrottle = async () => 'continue';
  readonly refundLogin: LoginRefund = async () => undefined;
  readonly penalize: AuthFailurePenalty;

  constructor(deps: RateLimitDeps) {
    this.penalize = new Limiter(deps).penalize;
  }
}

/**
 * Builds the limiter once at start-up (and again on a config reload). Rules, header values and policy strings are
 * resolved here; the per-request path only builds a key and calls `store.take`.
 *
 * `enabled` governs proxied traffic only. The brute-force protections of the auth API (its per-address bucket, the
 * login buckets, the failed-authentication penalty) follow `auth.enabled` (default true) instead, so switching the
 * proxy limit off never opens login to guessing. The caller builds the auth-API scope only when auth is on.
 */
export function createRateLimitPhase(deps: RateLimitDeps): RateLimitPhase {
  const authProtections = deps.config.auth.enabled;
  if (deps.scope?.kind === 'auth') return authProtections ? new Limiter(deps) : new DisabledLimiter();
  if (deps.config.enabled) return new Limiter(deps);
  return authProtections ? new PenaltyOnlyLimiter(deps) : new DisabledLimiter();
}
