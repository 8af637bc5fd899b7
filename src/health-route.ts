// GET /health on the main port: liveness, always 200 while the process serves, never authenticated or limited.
import { GatewayError } from './errors.js';
import type { Phase } from './pipeline/phase.js';
import { sendError, sendJson } from './pipeline/reply.js';

const HEALTH_BODY = { status: 'ok', service: 'portcullis' } as const;
const METHOD_NOT_ALLOWED = { headers: { allow: 'GET, HEAD' } };

/** The only phase of the 'health' route class. */
export const healthRoute: Phase = {
  name: 'health',
  onRequest(ctx) {
    const method = ctx.req.method;
    if (method !== 'GET' && method !== 'HEAD') return sendError(ctx, new GatewayError('METHOD_NOT_ALLOWED', METHOD_NOT_ALLOWED));
    return sendJson(ctx, 200, HEALTH_BODY);
  },
};
