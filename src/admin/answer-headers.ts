// The security headers every admin-port answer carries. A module of its own, without the admin server's imports: the
// composition root (server.ts) hands them to the admin port's per-client cap, whose 429 is written before any
// request, outside the admin server's handler, and the admin server is only loaded when the port is on.

/**
 * What every answer but the dashboard's files carries (JSON, /metrics, errors, the users API's bodies, which hold
 * emails anyone can register on the public listener, and the connection cap's 429): never sniffed as another type,
 * never run as a page's script or style, never loaded or framed as a document. The admin server sets them before any
 * handler runs; the dashboard's files replace the policy with theirs.
 */
export const ADMIN_ANSWER_HEADERS: Readonly<Record<string, string>> = {
  'x-content-type-options': 'nosniff',
  'content-security-policy': "default-src 'none'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
};
