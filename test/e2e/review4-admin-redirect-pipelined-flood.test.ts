// The family of review4-admin-pipelined-flood, on the public HTTP→HTTPS redirect listener: it answered every request a
// client pipelined, however many, and held every 308 for a client that never read them (node parses a whole read,
// some 2,500 short requests, before it can stop reading, and goes on reading as the answers are queued). Anyone who
// reaches port 80 could grow the gateway without bound on a few connections. Now, as on the proxy port
// (listeners/pipelining.ts), one request of a connection is answered at a time, and more than 128 waiting close it.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { pipelineUnread } from '../helpers/raw.js';
import { redirectGatewayHooks } from '../helpers/redirect-gateway.js';

describe('redirect listener', () => {
  const gateway = redirectGatewayHooks('review4-redirect-pipelined');

  test('a connection pipelining thousands of requests without reading is closed, not answered in full', async () => {
    const result = await pipelineUnread(gateway.redirectPort, 'GET /a HTTP/1.1\r\nHost: a.test\r\n\r\n'.repeat(3_000), 300);
    assert.ok(result.closed, 'the connection is closed');
    assert.ok(result.responses <= 130, `${result.responses} answers to 3,000 pipelined requests`);
  });

  test('a few pipelined requests are all redirected, in order', async () => {
    const result = await pipelineUnread(gateway.redirectPort, 'GET /a HTTP/1.1\r\nHost: a.test\r\n\r\n'.repeat(10) + 'GET /b HTTP/1.1\r\nHost: a.test\r\nConnection: close\r\n\r\n', 100);
    assert.equal(result.responses, 11);
    assert.ok(result.closed);
  });
});
