// A small HTTP client for tests: one fresh connection pool per test file, bodies read as text.
import { Agent, request } from 'undici';
import { request as nodeRequest, type IncomingHttpHeaders } from 'node:http';

export interface TestResponse {
  status: number;
  headers: IncomingHttpHeaders;
  text: string;
  /** The body parsed as JSON (throws when it is not). */
  json<T = Record<string, unknown>>(): T;
}

/** Each call site gets its own agent, so tests never share keep-alive connections by accident. */
export function createClient(options: { connections?: number } = {}) {
  const agent = new Agent({ connections: options.connections ?? 64, keepAliveTimeout: 1_000 });
  return {
    async request(
      url: string,
      init: { method?: string; headers?: Record<string, string>; body?: string | Buffer; timeoutMs?: number } = {},
    ): Promise<TestResponse> {
      const res = await request(url, {
        dispatcher: agent,
        method: (init.method ?? 'GET') as 'GET',
        headers: init.headers,
        body: init.body,
        headersTimeout: init.timeoutMs ?? 15_000,
        bodyTimeout: init.timeoutMs ?? 15_000,
      });
      const text = await res.body.text();
      return {
        status: res.statusCode,
        headers: res.headers,
        text,
        json<T>() {
          return JSON.parse(text) as T;
        },
      };
    },
    /** POST a JSON body. */
    postJson(url: string, body: unknown, headers: Record<string, string> = {}): Promise<TestResponse> {
      return this.request(url, {
        method: 'POST',
        headers: { 'content-type': 'application/json', ...headers },
        body: JSON.stringify(body),
      });
    },
    close(): Promise<void> {
      return agent.close();
    },
  };
}

export type TestClient = ReturnType<typeof createClient>;

/** True when the environment demands every service be present (CI): a missing server is then a failure. */
export const IN_CI = process.env.CI === 'true';

/**
 * GET `path` from 127.0.0.1:`port` on a fresh connection (node:http, no agent): its status, 0 when the connection
 * failed (refused before a gateway listens, or reset). Never rejects: for polling a gateway until it answers too.
 */
export function getStatus(port: number, path: string): Promise<number> {
  return new Promise((resolve) => {
    const req = nodeRequest({ host: '127.0.0.1', port, path, agent: false }, (res) => {
      res.resume();
      res.once('end', () => resolve(res.statusCode ?? 0));
    });
    req.once('error', () => resolve(0));
    req.end();
  });
}
