// max_body_size: a request whose declared length is over the limit gets 413 before anything is sent upstream; a
// chunked body is counted as it streams, and the attempt fails with 413 the moment it goes over.
import { Transform, type TransformCallback } from 'node:stream';
import { GatewayError } from '../errors.js';
import type { RequestContext } from '../pipeline/context.js';
import type { Phase } from '../pipeline/phase.js';
import { sendError } from '../pipeline/reply.js';
import { hasRequestBody } from '../pipeline/request-body.js';

const TOO_LARGE = new GatewayError('PAYLOAD_TOO_LARGE');

/** Counts bytes and fails with PAYLOAD_TOO_LARGE past `limit`. */
class CountingLimit extends Transform {
  #seen = 0;
  readonly #limit: number;

  constructor(limit: number) {
    super();
    this.#limit = limit;
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    this.#seen += chunk.length;
    if (this.#seen > this.#limit) callback(TOO_LARGE);
    else callback(null, chunk);
  }
}

/** The counter's error, once no attempt reads the body any more (see createBodyLimitPhase). */
function ignoreError(): void {}

/** The phase for a route with `max_body_size` (bytes). */
export function createBodyLimitPhase(limit: number): Phase {
  return {
    name: 'max-body-size',
    onRequest(ctx: RequestContext) {
      const h = ctx.req.headers;
      const declared = h['content-length'];
      if (declared !== undefined) {
        return Number(declared) > limit ? sendError(ctx, TOO_LARGE) : 'continue';
      }
      // No declared length: chunked HTTP/1.1, or HTTP/2 DATA frames without content-length. Count as it streams.
      if (hasRequestBody(ctx)) {
        const counted = new CountingLimit(limit);
        ctx.req.on('error', (err) => counted.destroy(err));
        // The counter's 413 must never go unheard: undici listens to the body only while its request lives, and
        // once an attempt has failed (a 502 to an upstream that refused the connection) the client's stream may go
        // on feeding the pipe until its answer and reset are out. An error with no listener then, rethrown by
        // the pipe, ended the process (HTTP/2 uploads over the limit to a down upstream). Whoever reads the body
        // still gets the error; after the attempt, nobody needs it.
        counted.on('error', ignoreError);
        ctx.upstreamBody = ctx.req.pipe(counted);
      }
      return 'continue';
    },
  };
}
