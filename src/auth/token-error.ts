// The refused-token error and the 401 challenge, without jose: the authenticate phase (loaded even with auth off)
// needs them, and importing tokens.ts would load jose at start-up for nothing.

/** The `WWW-Authenticate` value for a bearer token that was sent but refused (RFC 6750 §3.1). */
export const INVALID_TOKEN_CHALLENGE = 'Bearer error="invalid_token"';

/** Why a token was refused. `expired` is told apart only for logs; clients get the same 401 either way. */
export type TokenErrorReason = 'expired' | 'invalid';

/** A refused access token. The message is fixed: it never contains the token or the claims. */
export class TokenError extends Error {
  readonly reason: TokenErrorReason;
  constructor(reason: TokenErrorReason, options?: { cause?: unknown }) {
    super(reason === 'expired' ? 'access token expired' : 'access token invalid', options);
    this.name = 'TokenError';
    this.reason = reason;
  }
}

