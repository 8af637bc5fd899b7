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
