// Benchmark backends: small fixed JSON answers on loopback, in their own process (pinned to the load core).
import { createServer } from 'node:http';

const body = Buffer.from(JSON.stringify({ ok: true, service: 'bench-backend', padding: 'x'.repeat(200) }));
const count = Number(process.env.BACKENDS ?? '3');
const ports: number[] = [];
let ready = 0;
for (let i = 0; i < count; i++) {
  const server = createServer((req, res) => {
    req.resume();
    res.writeHead(200, { 'content-type': 'application/json', 'content-length': body.length });
    res.end(body);
  });
  server.keepAliveTimeout = 30_000;
  server.listen(0, '127.0.0.1', () => {
    const address = server.address();
    ports[i] = typeof address === 'object' && address ? address.port : 0;
    if (++ready === count) process.stdout.write(`${JSON.stringify({ msg: 'Backends Started', ports })}\n`);
  });
}
process.on('SIGTERM', () => process.exit(0));
