// The upstreams one request has already been sent to, kept on its context once it is retried: a retry never goes
// back to one of them (the driver may allow the one that just failed again, see allowAgain).
import { ContextSlot } from '../pipeline/slot.js';
import type { Peer } from '../pipeline/upstream.js';

/** Absent until the request's first retry: a request that is never retried allocates nothing. */
const TRIED = new ContextSlot<Set<Peer>>('tried-upstreams');

type Slots = { readonly slots: unknown[] };

/** The peers `ctx` was tried on, or undefined before its first retry. */
export function triedPeers(ctx: Slots): ReadonlySet<Peer> | undefined {
  return TRIED.get(ctx);
}

/** Records that `ctx` went to `peer` (called for a retry's failed peer and for every peer picked after it). */
export function markTried(ctx: Slots, peer: Peer): void {
  let tried = TRIED.get(ctx);
  if (tried === undefined) TRIED.set(ctx, (tried = new Set()));
  tried.add(peer);
}

/**
 * Lets the next pick take `peer` again: the documented exception, a failure that does not blame its upstream retried
 * on that same upstream when no other untried one can take the request (a single-upstream service).
 */
export function allowAgain(ctx: Slots, peer: Peer): void {
  TRIED.get(ctx)?.delete(peer);
}
