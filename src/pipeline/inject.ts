// In-process requests (fastify's inject): a request runs through the real pipeline handler with no client socket,
// using light-my-request's node-compatible request and response objects. Upstreams are still real.
import type { IncomingMessage, ServerResponse } from 'node:http';

/** One request to inject. `body`: a string, a Buffer, or an object sent as JSON. */
export interface InjectOptions {
  readonly method?: string;
  /** Path and query ("/users/1?x=y"). */
  readonly url: string;
  readonly headers?: Readonly<Record<string, string>>;
  readonly body?: string | Buffer | Record<string, unknown> | unknown[];
  /** The client address the gateway sees (default 127.0.0.1). */
  readonly remoteAddress?: string;
}

/** The answer, fully read. */
export interface InjectResponse {
  readonly status: number;
  /** Lower-case names. */
  readonly headers: Readonly<Record<string, string | string[] | number | undefined>>;
  readonly body: string;
  /** The body parsed as JSON (throws on a body that is not JSON). */
  json<T = unknown>(): T;
}

/** Runs `handler` (the pipeline's request handler) for one request and resolves with the complete response. */
export async function injectRequest(
  handler: (req: IncomingMessage, res: ServerResponse) => void,
  options: InjectOptions,
): Promise<InjectResponse> {
  const body = options.body;
  const headers: Record<string, string> = { ...(options.headers ?? {}) };
  let payload: string | Buffer | undefined;
  if (body === undefined || typeof body === 'string' || Buffer.isBuffer(body)) payload = body;
  else {
    payload = JSON.stringify(body);
    if (!Object.keys(headers).some((h) => h.toLowerCase() === 'content-type')) headers['content-type'] = 'application/json';
  }
  // Loaded on first use: only tests and embedders inject, a running gateway never does.
  const { inject: lightInject } = await import('light-my-request');
  const response = await lightInject(handler as never, {
    method: (options.method ?? 'GET') as never,
    url: options.url,
    headers,
    remoteAddress: options.remoteAddress ?? '127.0.0.1',
    ...(payload !== undefined ? { payload } : {}),
  });
  const text = response.payload;
  return {
    status: response.statusCode,
    headers: response.headers,
    body: text,
    json<T>() {
      return JSON.parse(text) as T;
    },
  };
}
