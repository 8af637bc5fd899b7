// What was wrong: the active health checks of an HTTPS (or h2c) upstream ran without the service's TLS settings
// whenever the upstream's URL origin is not spelled as the gateway spells it: port 443 (https://host:443 is
// https://host to the WHATWG URL the probe is sent to), or port 80 for h2c, or an address written in upper case
// ("Billing.Internal", lower-cased by the URL). The probe pool was found by comparing the two spellings; with no
// match it was built with undici's defaults: the system CAs (a private CA's upstream failed "unknown CA"), no client
// certificate (mutual TLS refused), verification on although `tls.verify: false`, no h2c. Every probe failed, every
// upstream was marked unhealthy, and every request was answered 502 no_healthy_upstream although the proxy itself
// reached the upstream fine.
// What is right now: a probe speaks to its upstream with that upstream's own TLS and HTTP/2 settings, however its
// origin is spelled; the upstream stays healthy and requests are served.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import { FAST_HEALTH_CHECKS, startInProcess, type InProcessGateway } from '../helpers/gateway.js';
import { createClient } from '../helpers/http.js';
import { createTestCa, pkiDir } from '../helpers/tls.js';
import { waitFor } from '../helpers/wait.js';

const pki = pkiDir();
const client = createClient();
let server: Server;
let port: number;
let probes = 0;
let gw: InProcessGateway | undefined;

before(async () => {
  const ca = createTestCa('Private Upstream CA', pki.path);
  const cert = ca.issue('localhost', { san: ['DNS:localhost', 'IP:127.0.0.1'] });
  server = createServer({ cert: cert.cert, key: cert.key }, (req, res) => {
    if (req.url === '/healthz') probes++;
    res.writeHead(200, { 'content-type': 'text/plain' });
    res.end('ok');
  });
  server.on('tlsClientError', () => undefined);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  port = (server.address() as AddressInfo).port;
  gw = await startInProcess({
    load_balancing: {
      // The name as an operator may write it: a host name is case-insensitive, and so is its certificate check.
      upstreams: [{ name: 'private-1', address: 'LOCALHOST', port }],
      tls: { enabled: true, ca_file: ca.caFile, servername: 'localhost' },
      // A long probe timeout: a certificate the probe cannot verify fails at once whatever it is, while 500 ms for a
      // new TLS handshake was missed on a loaded machine (four test files beside it) and failed this test.
      health_check: { ...FAST_HEALTH_CHECKS, timeout: '5s', path: '/healthz' },
    },
  });
});

after(async () => {
  await gw?.close();
  await client.close();
  server.closeAllConnections();
  await new Promise<void>((resolve) => server.close(() => resolve()));
  pki.remove();
});

test('probes of an HTTPS upstream with a private CA use that CA: the upstream stays healthy and is served', async () => {
  // Several rounds of checks (healthy_threshold and unhealthy_threshold are 1): a probe that cannot verify the
  // upstream's certificate marks it down at the first round.
  await waitFor(() => probes >= 3 || gw!.logs.some((l) => l.msg === 'Upstream Unhealthy'), 'three probes answered, or one failed');
  const res = await client.request(`${gw!.url}/anything`);
  assert.equal(res.status, 200, res.text);
  assert.equal(res.text, 'ok');
  assert.equal(gw!.logs.filter((l) => l.msg === 'Upstream Unhealthy').length, 0, 'no probe failed');
});
