// `portcullis demo`: three small backends on ports 3000-3002, each answering with its own name, plus the gateway.
import { createServer, type Server } from 'node:http';
import { runGateway } from './run-gateway.js';

/** The demo backends: name and port, matching config/demo.yaml and config/proxy.yaml. */
export const DEMO_BACKENDS = [
  { name: 'backend1', port: 3000 },
  { name: 'backend2', port: 3001 },
  { name: 'backend3', port: 3002 },
] as const;

/** Starts one backend that answers every request with its name, the method, path and the identity headers it got. */
export function startDemoBackend(name: string, port: number, host = '127.0.0.1'): Promise<Server> {
  const server = createServer((req, res) => {
    const body = JSON.stringify({
      backend: name,
      method: req.method,
      path: req.url,
      user_id: req.headers['x-user-id'] ?? null,
      request_id: req.headers['x-request-id'] ?? null,
    });
    res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
    res.end(`${body}`);
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => resolve(server));
  });
}

/** Runs the demo until SIGTERM/SIGINT. */
export async function runDemo(configPath: string, dataDir: string): Promise<number> {
  const servers = await Promise.all(DEMO_BACKENDS.map((b) => startDemoBackend(b.name, b.port)));
  process.stderr.write(
    `demo backends on ${DEMO_BACKENDS.map((b) => b.port).join(', ')}; try: for i in 1 2 3; do curl -s localhost:8080/; echo; done\n`,
  );
  try {
    return await runGateway(configPath, dataDir);
  } finally {
    for (const server of servers) server.close();
  }
}

/** Runs only the three demo backends until SIGTERM/SIGINT (docker-compose's "demo" service). */
export async function runDemoBackends(host: string): Promise<number> {
  const servers = await Promise.all(DEMO_BACKENDS.map((b) => startDemoBackend(b.name, b.port, host)));
  process.stdout.write(`${JSON.stringify({ msg: 'Demo Backends Started', host, ports: DEMO_BACKENDS.map((b) => b.port) })}\n`);
  await new Promise<void>((resolve) => {
    process.once('SIGTERM', resolve);
    process.once('SIGINT', resolve);
  });
  await Promise.all(servers.map((s) => new Promise<void>((resolve) => s.close(() => resolve()))));
  return 0;
}
