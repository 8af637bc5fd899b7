// Reads a JSON request body for /auth/*: Content-Type check (415), a byte limit counted while streaming (413), a silence
// bound between chunks (408), JSON (400).
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { ServerHttp2Stream } from 'node:http2';
import type * as z from 'zod';
import { GatewayError } from '../errors.js';
import { toFieldIssues } from './validation.js';
import { PARSE_OPTIONS } from '../zod-parse.js';
import { continueBody } from '../pipeline/expect-continue.js';

/** Largest auth request body accepted, in bytes. */
export const AUTH_BODY_LIMIT = 64 * 1024;

const utf8 = new TextDecoder('utf-8', { fatal: true });

/** HTTP/2 CANCEL: the stream of a body that stalled is reset once its 408 is out, as a forwarded body's is. */
const H2_CANCEL = 0x8;

/** How a body is read: the byte limit and the longest silence between two chunks. */
export interface BodyReadLimits {
  /** Bytes (default 64 KiB). */
  readonly limit?: number;
  /**
   * Longest silence between two body chunks, ms (`server.timeouts.request_body_chunk`); 0 or undefined: no bound but
   * timeouts.request. Past it: 408 request_body_timeout, and the connection (over HTTP/2 the stream) is closed.
   */
  readonly chunkMs?: number;
}

/**
 * Reads and parses `req`'s body. Throws GatewayError: UNSUPPORTED_MEDIA_TYPE when the body is not declared
 * `application/json` (UTF-8) or is content-encoded; PAYLOAD_TOO_LARGE as soon as the declared or the received size
 * passes `limit` (reading stops there and the connection is closed after the answer, so the rest is never read);
 * INVALID_BODY when the bytes are not UTF-8 JSON; BAD_REQUEST when the client aborts; REQUEST_BODY_TIMEOUT when no
 * body byte came for `chunkMs` (reading stops; writeReply closes an HTTP/1 connection whose body is still arriving,
 * and an HTTP/2 stream is cancelled once the answer is out). With `res` (the proxy listener's), a client that sent
 * Expect: 100-continue gets its 100 once those checks have passed, before the read.
 */
export async function readJsonBody(
  req: IncomingMessage,
  limits: number | BodyReadLimits = AUTH_BODY_LIMIT,
  res?: Pick<ServerResponse, 'headersSent' | 'writeContinue'>,
): Promise<unknown> {
  const { limit = AUTH_BODY_LIMIT, chunkMs = 0 } = typeof limits === 'number' ? { limit: limits } : limits;
  assertJsonContentType(req);
  const declared = req.headers['content-length'];
  if (declared !== undefined && Number(declared) > limit) throw tooLarge(limit, req);
  if (res !== undefined) continueBody(req, res);
  const bytes = await readLimited(req, limit, chunkMs);
  let text: string;
  try {
    text = utf8.decode(bytes);
  } catch {
    throw invalidBody('must be UTF-8 encoded JSON');
  }
  try {
    return JSON.parse(text) as unknown;
  } catch {
    // JSON.parse's message quotes the input: only a fixed message is sent.
    throw invalidBody('must be valid JSON');
  }
}

/** Validates `value` with `schema`; throws INVALID_BODY (400) with field-level `details` when it does not match. */
export function parseWith<T>(schema: z.ZodType<T>, value: unknown): T {
  const result = schema.safeParse(value, PARSE_OPTIONS);
  if (!result.success) throw new GatewayError('INVALID_BODY', { details: toFieldIssues(result.error) });
  return result.data;
}

function assertJsonContentType(req: IncomingMessage): void {
  const header = req.headers['content-type'];
  const [type = '', ...params] = (header ?? '').split(';');
  const charset = params
    .map((p) => p.trim().toLowerCase())
    .find((p) => p.startsWith('charset='))
    ?.slice('charset='.length)
    .replace(/^"|"$/g, '');
  const encoding = req.headers['content-encoding'];
  if (
    type.trim().toLowerCase() !== 'application/json' ||
    (charset !== undefined && charset !== 'utf-8' && charset !== 'utf8') ||
    (encoding !== undefined && encoding.toLowerCase() !== 'identity')
  ) {
    throw new GatewayError('UNSUPPORTED_MEDIA_TYPE');
  }
}

function readLimited(req: IncomingMessage, limit: number, chunkMs: number): Promise<Buffer> {
  return new Promise<Buffer>((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    // Armed while the body is read, re-armed by every chunk: a client that announced a body and fell silent held the
    // request (and its connection) until timeouts.request, 5 minutes by default and for good with 0.
    let idle: NodeJS.Timeout | undefined;
    const onIdle = (): void => {
      cleanup();
      req.pause();
      // The stream's own 'finish' (not the compat response's) says the 408 has been handed over.
      const stream = req.httpVersionMajor === 2 ? (req as unknown as { stream?: ServerHttp2Stream }).stream : undefined;
      stream?.once('finish', () => {
        if (!stream.closed) stream.close(H2_CANCEL);
      });
      reject(new GatewayError('REQUEST_BODY_TIMEOUT'));
    };
    const arm = (): void => {
      if (chunkMs <= 0) return;
      if (idle === undefined) idle = setTimeout(onIdle, chunkMs);
      else idle.refresh();
    };
    const cleanup = (): void => {
      if (idle !== undefined) clearTimeout(idle);
      req.off('data', onData);
      req.off('end', onEnd);
      req.off('error', onError);
      req.off('close', onClose);
    };
    const onData = (chunk: Buffer): void => {
      arm();
      size += chunk.length;
      if (size > limit) {
        cleanup();
        req.pause(); // stop reading: the 413 closes the connection
        reject(tooLarge(limit, req));
        return;
      }
      chunks.push(chunk);
    };
    const onEnd = (): void => {
      cleanup();
      resolve(Buffer.concat(chunks, size));
    };
    const onError = (): void => {
      cleanup();
      reject(new GatewayError('BAD_REQUEST'));
    };
    const onClose = (): void => {
      if (req.complete) return;
      cleanup();
      reject(new GatewayError('BAD_REQUEST'));
    };
    req.on('data', onData);
    req.on('end', onEnd);
    req.on('error', onError);
    req.on('close', onClose);
    if (!req.complete) arm();
  });
}

function tooLarge(limit: number, req: IncomingMessage): GatewayError {
  const details = [{ field: 'body', message: `must be at most ${limit} bytes` }];
  // HTTP/2 has no Connection header (RFC 9113 §8.2.2): node drops it from the stream's head and prints a warning on
  // stderr, outside the JSON log. The stream alone is refused there (h2-early-answer.ts drops the rest).
  if (req.httpVersionMajor === 2) return new GatewayError('PAYLOAD_TOO_LARGE', { details });
  // Connection: close makes node end the socket after the answer instead of draining an unwanted upload.
  return new GatewayError('PAYLOAD_TOO_LARGE', { details, headers: { connection: 'close' } });
}

function invalidBody(message: string): GatewayError {
  return new GatewayError('INVALID_BODY', { details: [{ field: 'body', message }] });
}
