// What the identity commands say when an action is committed but its revocation did not reach Redis.
import { describeCause } from '../errors.js';
import type { Propagation } from '../identity/admin-service.js';

/**
 * Exit code of an identity command whose action is done (committed and audited) while its revocation is pending:
 * not 0, so a script notices that the credentials may still work for a moment; not 1, which means nothing was done.
 */
export const EXIT_REVOCATION_PENDING = 3;

/**
 * Writes the pending notice to stderr and returns EXIT_REVOCATION_PENDING, or returns 0 when the revocation is done.
 * `retry` is the command to run again, by id (a deleted user's email no longer finds it). The cause is named by class
 * and code only (describeCause), never by its message.
 */
export function reportPropagation(propagation: Propagation, done: string, retry: string): number {
  if (propagation.state === 'done') return 0;
  process.stderr.write(
    `portcullis: ${done}, but its revocation did not reach Redis (${describeCause(propagation.cause)}): running gateways ` +
      `refuse the credentials once Redis answers again (each applies the change log within a second); ` +
      `run "portcullis ${retry}" to retry it now\n`,
  );
  return EXIT_REVOCATION_PENDING;
}
