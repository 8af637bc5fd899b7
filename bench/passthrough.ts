// The baseline of `npm run bench`: the barest useful proxy (node:http + undici pools, round robin, streaming),
// with none of the gateway's features. The gateway's figures are reported as a ratio of this one's.
import { readFileSync } from 'node:fs';
import { createServer as createHttpServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import { Pool, type Dispatcher } from 'undici';

const ports = (process.env.BACKEND_PORTS ?? '').split(',').map(Number);
const pools = ports.map((port) => new Pool(`http://127.0.0.1:${port}`, { connections: 128, pipelining: 1 }));
let next = 0;

// TLS_CERT_FILE + TLS_KEY_FILE: the same pass-through over HTTPS/1.1 (the TLS baseline of `npm run bench -- tls`).
const tls = process.env.TLS_CERT_FILE ? { cert: readFileSync(process.env.TLS_CERT_FILE), key: readFileSync(process.env.TLS_KEY_FILE ?? '') } : undefined;
const handle = (req: IncomingMessage, res: ServerResponse): void => {
  const pool = pools[next]!;
  next = (next + 1) % pools.length;
  const handler: Dispatcher.DispatchHandler = {
    onRequestStart() {},
    onResponseStart(_c, status, headers) {
      delete headers.connection;
      delete headers['keep-alive'];
      delete headers['transfer-encoding'];
      res.writeHead(status, headers as Record<string, string>);
    },
    onResponseData(controller, chunk) {
      if (!res.write(chunk)) {
        controller.pause();
        res.once('drain', () => controller.resume());
      }
    },
    onResponseEnd() {
      res.end();
    },
    onResponseError() {
      if (!res.headersSent) res.writeHead(502);
      res.end();
    },
  };
  const headers = { ...req.headers };
  delete headers.connection;
  pool.dispatch({ path: req.url ?? '/', method: (req.method ?? 'GET') as 'GET', headers, body: null }, handler);
};
const server = tls ? createHttpsServer(tls, handle) : createHttpServer(handle);
server.keepAliveTimeout = 5_000;
server.listen(Number(process.env.PORT ?? 0), '127.0.0.1', () => {
  const address = server.address();
  process.stdout.write(`${JSON.stringify({ msg: 'Gateway Started', port: typeof address === 'object' && address ? address.port : 0 })}\n`);
});
process.on('SIGTERM', () => process.exit(0));
process.on('SIGINT', () => process.exit(0));
