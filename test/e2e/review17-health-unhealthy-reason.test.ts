// What was wrong: an upstream the active checks marked down was logged `Upstream Unhealthy` with no reason. An HTTPS
// upstream whose certificate the gateway does not trust (self-signed, no ca_file; expired) answered 502 upstream_tls
// with an `Upstream TLS Failed` line for a few seconds, then the checks marked it down in silence and every request
// got 502 no_healthy_upstream: the TLS cause was never named again.
// What is right now: the line that marks an upstream down carries the failing probe's `reason` ("TLS: unknown CA",
// "status 503", "connection refused", "timed out") and its `cause`.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer as createHttpServer, type Server } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { FAST_HEALTH_CHECKS, startInProcess, upstreams, type InProcessGateway } from '../helpers/gateway.js';
import { closedPort } from '../helpers/backends.js';
import { createTestCa, pkiDir } from '../helpers/tls.js';
import { waitFor } from '../helpers/wait.js';

const pki = pkiDir();
const servers: Server[] = [];
const gateways: InProcessGateway[] = [];
after(async () => {
  for (const gw of gateways) await gw.close();
  for (const server of servers) {
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }
  pki.remove();
});

async function listening(server: Server): Promise<number> {
  servers.push(server);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return (server.address() as AddressInfo).port;
}

async function unhealthyLine(service: Record<string, unknown>): Promise<Record<string, unknown>> {
  const gw = await startInProcess({ services: { app: { ...service, retries: 0, health_check: FAST_HEALTH_CHECKS } }, routes: [{ name: 'app', service: 'app' }] });
  gateways.push(gw);
  let line: Record<string, unknown> | undefined;
  await waitFor(() => (line = gw.logs.find((l) => l.msg === 'Upstream Unhealthy')) !== undefined, 'the upstream marked down', 5_000);
  return line!;
}

test('an HTTPS upstream with a certificate the gateway does not trust: the reason names TLS', async () => {
  // Issued by a CA the gateway is not given: what a self-signed or private-CA upstream without ca_file looks like.
  const cert = createTestCa('Untrusted upstream CA', pki.path).issue('127.0.0.1', { san: ['IP:127.0.0.1'] });
  const port = await listening(createHttpsServer({ cert: cert.cert, key: cert.key }, (_req, res) => res.end('ok')));
  const line = await unhealthyLine({ upstreams: upstreams([port]), tls: { enabled: true } });
  assert.match(String(line.reason), /^TLS: /, JSON.stringify(line));
  assert.match(String(line.cause), /Error\(/);
});

test('an upstream that answers 503, and one that refuses connections: each says so', async () => {
  const port = await listening(createHttpServer((_req, res) => res.writeHead(503).end()));
  assert.equal((await unhealthyLine({ upstreams: upstreams([port]) })).reason, 'status 503');
  assert.equal((await unhealthyLine({ upstreams: upstreams([await closedPort()]) })).reason, 'connection refused');
});
