// A retry on an upstream that failed without blame (HTTP/2 REFUSED_STREAM: nothing processed) goes back to that
// upstream when no other can take the request. On a split it went through the split's weighted picker, as a new
// request's pick: the retry took a share of the rotation (every request of a 1:1 split then started on the same
// service) and could land on a service with nothing left to offer. It now stays with the service of the upstream.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { startInProcess, type InProcessGateway } from '../helpers/gateway.js';
import { createClient } from '../helpers/http.js';
import { refusingUpstream, type RefusingUpstream } from '../helpers/refusing-upstream.js';

const client = createClient();
let a: RefusingUpstream;
let b: RefusingUpstream;
let gw: InProcessGateway;
before(async () => {
  [a, b] = await Promise.all([refusingUpstream('headers'), refusingUpstream('headers')]);
  const service = (name: string, port: number) => ({
    http2: true,
    upstreams: [{ name, address: '127.0.0.1', port }],
    retries: 2,
    health_check: { enabled: false },
  });
  gw = await startInProcess({
    services: { a: service('a-1', a.port), b: service('b-1', b.port) },
    routes: [{ name: 'api', match: { path_prefix: '/' }, split: [{ service: 'a', weight: 1 }, { service: 'b', weight: 1 }] }],
  });
});
after(async () => {
  await client.close();
  await gw.close();
  await Promise.all([a.close(), b.close()]);
});

test("a split's retry on the upstream it left keeps to that upstream's service, and the rotation's shares stay exact", async () => {
  for (let i = 0; i < 4; i++) {
    const res = await client.request(`${gw.url}/r${i}`);
    assert.equal(res.status, 502, res.text);
  }
  // Each request: its first arm, the other arm, then the other arm's upstream again (retries: 2). Over four requests
  // the first arms alternate, so each upstream is sent six streams; with the retry drawn from the split's rotation,
  // every request started on a (a 4, b 8).
  assert.deepEqual({ a: a.streams(), b: b.streams() }, { a: 6, b: 6 });
});
