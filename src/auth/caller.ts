// The authenticated caller of a request, kept on the context through a slot (the engine declares no auth field).
import { ContextSlot } from '../pipeline/slot.js';

/** The caller, once a valid access token has been verified. */
export interface AuthenticatedUser {
  readonly id: string;
  readonly email: string;
  /** Token id (for revocation) and expiry (ms since epoch). */
  readonly tokenId: string;
  readonly tokenExpiresAt: number;
}

/** `CALLER.get(ctx)`: the authenticated user of this request, or undefined. */
export const CALLER = new ContextSlot<AuthenticatedUser>('user');

/** The caller behind a valid API key (issue 12): set instead of CALLER; plugins see it as `ctx.consumer`. */
export interface ApiConsumer {
  readonly id: string;
  readonly name: string;
}

/** `CONSUMER.get(ctx)`: the API-key caller of this request, or undefined. */
export const CONSUMER = new ContextSlot<ApiConsumer>('consumer');
