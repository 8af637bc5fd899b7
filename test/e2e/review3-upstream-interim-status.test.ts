// Upstream status lines undici takes for interim (1xx) answers although they are none (found by review): a status
// below 100 (llhttp reads any three digits: 000, 042, 099), and a 101 that does not switch protocols (no Upgrade, or
// no Connection: upgrade). undici handed them on as one more interim answer, then failed an assertion of its own, so
// the client got 502 `proxy_error` ("an upstream failure of no known kind") and the log `AssertionError(ERR_ASSERTION)`,
// though the README promises `upstream_protocol` for a status outside 100-599. Now: a status below 100 is 502
// upstream_protocol (InvalidStatusCode), as one above 599 is; a 101 to a plain request is 502 upstream_protocol, as
// undici's own "bad upgrade" is; a 101 that switches a WebSocket request to nothing is 502 proxy_error, as one that
// switches it to another protocol is. None of them counts against the upstream's health.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { startCannedUpstream, type CannedUpstream } from '../helpers/canned-upstream.js';
import { startInProcess, type InProcessGateway } from '../helpers/gateway.js';
import { rawRequest, type RawResponse } from '../helpers/raw.js';

const OK = 'HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok';

/** What the upstream answers, by request path (then it closes the connection). */
const ANSWERS: Record<string, string> = {
  '/s099': 'HTTP/1.1 099 Odd\r\nContent-Length: 2\r\n\r\nok',
  '/s000': 'HTTP/1.1 000 Zero\r\n\r\n',
  '/s042-then-200': `HTTP/1.1 042 Odd\r\nX-A: 1\r\n\r\n${OK}`,
  '/101-bare': 'HTTP/1.1 101 Switching Protocols\r\n\r\n',
  '/101-bare-then-200': `HTTP/1.1 101 Switching Protocols\r\n\r\n${OK}`,
  '/101-no-connection': 'HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n',
  '/ok': OK,
};

const WEBSOCKET = 'Connection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n';

let upstream: CannedUpstream;
let gw: InProcessGateway;

before(async () => {
  upstream = await startCannedUpstream(ANSWERS);
  gw = await startInProcess({ load_balancing: { upstreams: [{ name: 'raw', address: '127.0.0.1', port: upstream.port }], retries: 0 } });
});

after(async () => {
  await gw.close();
  await upstream.close();
});

/** A GET on its own connection; `extra` head lines (each ending in CRLF) replace Connection: close. */
function get(path: string, extra = 'Connection: close\r\n'): Promise<RawResponse> {
  return rawRequest(gw.gateway.port, `GET ${path} HTTP/1.1\r\nHost: a.test\r\n${extra}\r\n`);
}

function completed(res: RawResponse): Record<string, unknown> | undefined {
  return gw.logs.find((l) => l.msg === 'Request Completed' && l.request_id === res.headers['x-request-id']);
}

for (const path of ['/s099', '/s000', '/s042-then-200']) {
  test(`a status below 100 (${path}): 502 upstream_protocol, logged as an invalid status`, async () => {
    const res = await get(path);
    assert.equal(res.status, 502);
    assert.equal(JSON.parse(res.body).code, 'upstream_protocol');
    const line = completed(res);
    assert.equal(line?.status, 502);
    assert.equal(line?.error, 'UPSTREAM_PROTOCOL');
    assert.equal(line?.cause, 'InvalidStatusCode(INVALID_STATUS_CODE)');
  });
}

for (const path of ['/101-bare', '/101-bare-then-200', '/101-no-connection']) {
  test(`a 101 that switches nothing, to a plain request (${path}): 502 upstream_protocol`, async () => {
    const res = await get(path);
    assert.equal(res.status, 502);
    assert.equal(JSON.parse(res.body).code, 'upstream_protocol');
    const line = completed(res);
    assert.equal(line?.error, 'UPSTREAM_PROTOCOL');
    assert.equal(line?.cause, 'UnaskedSwitch(UNASKED_SWITCHING_PROTOCOLS)');
  });

  test(`a 101 that switches nothing, to a WebSocket request (${path}): 502 proxy_error, as a switch to another protocol`, async () => {
    const res = await get(path, WEBSOCKET);
    assert.equal(res.status, 502);
    assert.equal(JSON.parse(res.body).code, 'proxy_error');
    const line = completed(res);
    assert.equal(line?.error, 'PROXY_ERROR');
    assert.equal(line?.cause, 'UnaskedProtocolSwitch');
  });
}

test('no undici assertion reached a log line, and the upstream stayed in rotation', async () => {
  assert.equal(gw.logs.filter((l) => String(l.cause).includes('Assertion')).length, 0);
  assert.equal(gw.logs.filter((l) => l.msg === 'Upstream Down').length, 0);
  assert.equal((await get('/ok')).status, 200);
});
