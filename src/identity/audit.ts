// The audit trail of admin actions: one `admin_action` log event and one counter increment per action.
import type { Logger } from 'pino';
import { Counter, type Registry } from '../observability/prom-client.js';
import { EVENTS } from '../observability/events.js';
import { METRICS } from '../observability/metrics.js';
import type { AdminAction, AdminActor } from '../store/identity-types.js';
import type { AuditSink } from './admin-service.js';

/** Counts admin actions by actor and action (`portcullis_admin_actions_total`), registered once per gateway. */
export function adminActionCounter(registry: Registry): Counter<'actor' | 'action'> {
  return new Counter({
    name: METRICS.adminActions,
    help: 'Admin actions on users and API keys: made through this admin API, or by the CLI and seen in the change log',
    labelNames: ['actor', 'action'],
    registers: [registry],
  });
}

/**
 * The audit sink: logs `admin_action` (actor, action, target id, and `revocation: "pending"` when the revocation store
 * refused the revocation; never an email or secret) and counts it.
 */
export function auditSink(logger: Pick<Logger, 'info'>, counter?: Pick<Counter<'actor' | 'action'>, 'inc'>): AuditSink {
  return ({ actor, action, targetId, revocation }) => {
    logger.info({ event: EVENTS.adminAction, actor, action, target_id: targetId, ...(revocation ? { revocation } : {}) }, EVENTS.adminAction);
    counter?.inc({ actor, action });
  };
}

/** Counts an action another process made (seen in the change log); the acting process logged it. */
export function countObserved(counter: Pick<Counter<'actor' | 'action'>, 'inc'>, actor: AdminActor, action: AdminAction): void {
  counter.inc({ actor, action });
}
