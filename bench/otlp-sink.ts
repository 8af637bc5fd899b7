// A stand-in OpenTelemetry collector for the tracing benchmark: accepts OTLP/HTTP exports and discards them.
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';

let spansBytes = 0;
const server = createServer((req, res) => {
  req.on('data', (chunk: Buffer) => (spansBytes += chunk.length));
  req.on('end', () => res.writeHead(200, { 'content-type': 'application/json' }).end('{}'));
});
server.listen(0, '127.0.0.1', () => {
  const { port } = server.address() as AddressInfo;
  process.stdout.write(`${JSON.stringify({ msg: 'Sink Started', port })}\n`);
});
process.on('SIGTERM', () => {
  process.stderr.write(`  otlp sink: ${(spansBytes / 1e6).toFixed(1)} MB of spans received\n`);
  server.close(() => process.exit(0));
  server.closeAllConnections();
});
