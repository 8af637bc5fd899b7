// What was wrong: the gateway bounds an HTTP/2 upstream's response head as an HTTP/1 one's (16 KB, however many
// fields) by loading undici's HTTP/2 client itself, with node's per-head field limit (128) raised. It could do so only
// if nothing in the process had loaded undici before it: an application that embeds the gateway and uses undici
// itself (imported first, as here), or a test file run after another in one process, left undici's own client in
// place, and a head of 300 fields from an HTTP/2 upstream was a 502 upstream_reset. Found by npm test's batches.
// What is right now: the gateway loads its own copies of the undici files that hold the HTTP/2 client, and leaves the
// application's in place (src/balancer/undici.ts loadDispatchers).
// npm test: runs alone. After another file the gateway's modules would be loaded already, and the test would pass
// with the defect: its first import must be the one that loads undici.
import { Agent, request } from 'undici';
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer as createH2cServer, type Http2Server, type ServerHttp2Stream } from 'node:http2';
import { startInProcess, type InProcessGateway } from '../helpers/gateway.js';
import { listenH2, oneUpstreamService, portOf } from '../helpers/upstream-fault.js';
import { Agent as GatewayAgent } from '../../src/balancer/undici.js';

test('premise: undici was loaded before the gateway, so the gateway runs on copies of its own', () => {
  assert.notEqual(GatewayAgent, Agent);
});

/** Answers with as many fields (h0: v, h1: v, ...) as the path's last segment asks for. */
function manyFields(stream: ServerHttp2Stream, headers: Record<string, unknown>): void {
  stream.on('error', () => undefined);
  const count = Number(String(headers[':path']).split('/').pop());
  stream.respond({ ':status': 200, ...Object.fromEntries(Array.from({ length: count }, (_, i) => [`h${i}`, 'v'])) });
  stream.end('ok');
}

// The application's own undici, loaded before the gateway (the static import above) and used after it starts.
const appAgent = new Agent();
let upstream: Http2Server;
let gw: InProcessGateway;

before(async () => {
  upstream = await listenH2(createH2cServer(), manyFields);
  gw = await startInProcess({
    services: { h2c: oneUpstreamService(portOf(upstream), { http2: true, health_check: { enabled: false } }) },
    routes: [{ name: 'h2c', match: { path_prefix: '/' }, service: 'h2c' }],
  });
});

after(async () => {
  await appAgent.close();
  await gw?.close();
  upstream?.close();
});

for (const count of [300, 2_000]) {
  test(`undici loaded before the gateway: an HTTP/2 upstream's head of ${count} fields is relayed whole`, async () => {
    // Through the application's undici: it keeps working beside the gateway's copies.
    const res = await request(`http://127.0.0.1:${gw.gateway.port}/fields/${count}`, { dispatcher: appAgent });
    const body = await res.body.text();
    assert.equal(res.statusCode, 200, body);
    assert.equal(body, 'ok');
    assert.equal(res.headers[`h${count - 1}`], 'v', 'the last field is there');
  });
}
