// An upstream that speaks broken HTTP/1.1 gets 502 upstream_protocol, and stays in rotation: a malformed answer
// says nothing about whether the next request will be answered, unlike a refused or reset connection.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { startCannedUpstream, type CannedUpstream } from '../helpers/canned-upstream.js';
import { startInProcess, type InProcessGateway } from '../helpers/gateway.js';
import { createClient } from '../helpers/http.js';

/** What the upstream answers, by request path. */
const ANSWERS: Record<string, string> = {
  '/ok': 'HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok',
  '/obs-fold': 'HTTP/1.1 200 OK\r\nX-A: one\r\n two\r\nContent-Length: 2\r\n\r\nok',
  '/lf-only': 'HTTP/1.1 200 OK\nContent-Length: 2\n\nok',
  '/garbage': 'garbage\r\n\r\n',
  '/negative-length': 'HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\nok',
  '/nul-in-header': 'HTTP/1.1 200 OK\r\nX-A: a\x00b\r\nContent-Length: 2\r\n\r\nok',
  '/cr-in-reason': 'HTTP/1.1 200 OK\rX-Evil: 1\r\nContent-Length: 2\r\n\r\nok',
  // Unsolicited: the gateway never sends Expect: 100-continue. undici refuses it (RFC 9110 §15.2 says accept it).
  '/continue-then-200': 'HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok',
};

const client = createClient();
let upstream: CannedUpstream;
let gw: InProcessGateway;

before(async () => {
  upstream = await startCannedUpstream(ANSWERS);
  const port = upstream.port;
  gw = await startInProcess({
    load_balancing: { upstreams: [{ name: 'raw', address: '127.0.0.1', port }], retries: 0 },
  });
});

after(async () => {
  await client.close();
  await gw.close();
  await upstream.close();
});

for (const path of Object.keys(ANSWERS).filter((p) => p !== '/ok')) {
  test(`${path}: 502 upstream_protocol, the upstream stays in rotation`, async () => {
    const res = await client.request(`${gw.url}${path}`);
    assert.equal(res.status, 502);
    assert.equal(res.json().code, 'upstream_protocol');
    assert.doesNotMatch(res.text, /HTTPParserError|Response does not match|bad response/, 'no parser detail for the client');
    const done = gw.logs.find((l) => l.msg === 'Request Completed' && l.request_id === res.headers['x-request-id']);
    assert.match(String(done?.cause), /^(HTTPParserError\(.+\)|SocketError\(bad response\))$/, 'the log says what was wrong');
    assert.equal(gw.logs.filter((l) => l.msg === 'Upstream Down').length, 0, 'no passive health failure');
    assert.equal((await client.request(`${gw.url}/ok`)).status, 200);
  });
}
