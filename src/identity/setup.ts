// Builds the identity feature for a gateway: the admin service (actor "admin"), its routes, the change poller and the
// dashboard's Users panel. Called once by features.ts when auth is on.
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Logger } from 'pino';
import type { AuthFeature } from '../auth/setup.js';
import type { KvStore } from '../kv/kv-store.js';
import type { GatewayMetrics } from '../observability/metrics.js';
import type { UserStore } from '../store/user-store.js';
import { isAdminAction, type IdentityTotals } from '../store/identity-types.js';
import { IdentityAdmin } from './admin-service.js';
import { createIdentityRoutes } from './admin-routes.js';
import { adminActionCounter, auditSink, countObserved } from './audit.js';
import { ChangePoller } from './change-poller.js';

export interface IdentitySetupDeps {
  readonly auth: AuthFeature;
  readonly store: UserStore;
  /** The revocation store, memory or Redis: the change poller applies every revocation in the log to it. */
  readonly kv: KvStore;
  readonly metrics: GatewayMetrics;
  readonly logger: Logger;
}

/** The dashboard's Users panel (no emails: the dashboard page itself has no token). */
export interface IdentityStatus {
  readonly totals: { users: number; disabled: number; active_sessions: number; api_keys: number } | null;
  readonly recent_actions: readonly { at: string; actor: string; action: string; target_id: string }[];
}

export interface IdentityFeature {
  readonly admin: IdentityAdmin;
  readonly routes: (req: IncomingMessage, res: ServerResponse, path: string) => Promise<boolean>;
  status(): Promise<IdentityStatus>;
  close(): Promise<void>;
}

/** Totals are counted at most this often: the dashboard refreshes every 2 s, and the counts scan tables. */
const TOTALS_TTL_MS = 5_000;
/**
 * The longest a status answer waits for the count (the readiness checks' bound). A store stuck behind a lock or a
 * stalled link held every /api/status answer for its statement timeout (5 s), the dashboard's own limit, which then
 * showed the whole gateway "disconnected": past this the answer carries the last known totals and the count goes on.
 */
const TOTALS_WAIT_MS = 1_000;

/** Starts the change poller (after reading the recent history) and wires the rest. */
export async function setupIdentity(deps: IdentitySetupDeps): Promise<IdentityFeature> {
  const { auth, store, kv, logger } = deps;
  const counter = adminActionCounter(deps.metrics.registry);
  const revocationTtlMs = auth.tokens.acceptWindowMs;
  const admin = new IdentityAdmin({
    store,
    kv,
    passwords: auth.passwords,
    schemas: auth.schemas,
    revocationTtlMs,
    actor: 'admin',
    audit: auditSink(logger, counter),
    onApiKeyRevoked: (id) => auth.apiKeys.forget(id),
  });
  const poller = new ChangePoller({
    store,
    // Redis too, not only the memory store: a revocation the acting process failed to write there (Redis down, the
    // action answered "pending") is written by every gateway once Redis answers.
    kv,
    revocationTtlMs,
    onApiKeyRevoked: (id) => auth.apiKeys.forget(id),
    // This gateway's own admin actions were counted when made; count what other processes did (the CLI).
    onChange: (change) => {
      if (change.actor === 'cli' && isAdminAction(change.action)) countObserved(counter, change.actor, change.action);
    },
    logger,
  });
  await poller.start();

  let totals: { value: IdentityTotals; at: number } | undefined;
  // The count under way, shared: concurrent status requests (several dashboards) add no query to the store's pool.
  let counting: Promise<void> | undefined;
  const readTotals = async (): Promise<IdentityTotals | undefined> => {
    // How old the totals are on the monotonic clock (a wall clock stepped back 10 minutes kept them that long); what
    // counts as an active session or key, on the wall clock the expiries are stored in.
    const now = performance.now();
    if (totals === undefined || now - totals.at > TOTALS_TTL_MS) {
      counting ??= store
        .identityTotals(new Date())
        .then(
          (value) => void (totals = { value, at: now }),
          () => undefined, // store down: the last known totals, or none
        )
        .finally(() => (counting = undefined));
      let timer: NodeJS.Timeout | undefined;
      const waited = new Promise<void>((resolve) => (timer = setTimeout(resolve, TOTALS_WAIT_MS)));
      await Promise.race([counting, waited]).finally(() => clearTimeout(timer));
    }
    return totals?.value;
  };

  return {
    admin,
    routes: createIdentityRoutes(admin, logger),
    async status() {
      const t = await readTotals();
      return {
        totals: t ? { users: t.users, disabled: t.disabled, active_sessions: t.activeSessions, api_keys: t.apiKeys } : null,
        recent_actions: poller.recent.slice(0, 10).map((c) => ({
          at: c.at.toISOString(),
          actor: c.actor,
          action: c.action,
          target_id: c.targetId,
        })),
      };
    },
    async close() {
      await poller.stop();
      await auth.lastUsed.close();
    },
  };
}
