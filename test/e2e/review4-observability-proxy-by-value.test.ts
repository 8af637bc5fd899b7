// Observability review (4): server.proxy_by is written into every answer's X-Proxy-By, and nothing checked it.
// What was wrong: a value with a character HTTP refuses in a header (a newline, as a quoted `${GW_NAME}` from a
// file with a trailing newline gives, or any control byte) passed check-config and start-up. Then every proxied
// answer failed node's header check and became a 500 without X-Proxy-By (its head read "500 Bad Gateway"), and
// the answers the listener writes itself (node's 400 to a malformed head, 408, 431, the 429 of
// max_connections_per_client) wrote the value as is, so "a\r\nX-Evil: 1" put a header of its own into them.
// What is right now: such a value is a config error (start-up, check-config and reload alike); a value in visible
// ASCII with inner blanks works on every answer.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { configErrorOf } from '../helpers/config-error.js';
import { startInProcess } from '../helpers/gateway.js';
import { rawRequest } from '../helpers/raw.js';

const MINIMAL = 'load_balancing:\n  upstreams: [{ name: a, address: 127.0.0.1, port: 3000 }]\n';

test('server.proxy_by with a character a header cannot carry is a config error, naming the key', () => {
  for (const value of ['"a\\r\\nX-Evil: 1"', '"edge\\n"', '"a\\u0000b"', '"a\\u007fb"', '"Portcullis\\u00e9"', '"Porte\\u2014cullis"']) {
    const message = configErrorOf(`server:\n  proxy_by: ${value}\n${MINIMAL}`);
    assert.match(message, /server\.proxy_by/, `${value}: ${message}`);
  }
  // The same value from the environment (a file read with its trailing newline) is refused too.
  const fromEnv = configErrorOf(`server:\n  proxy_by: "\${GW_NAME}"\n${MINIMAL}`, { GW_NAME: 'edge-1\n' });
  assert.match(fromEnv, /server\.proxy_by/);
});

test('a proxy_by in visible ASCII with inner blanks is on proxied answers and the listener\'s own refusals alike', async () => {
  const upstream = createServer((_req, res) => res.end('ok'));
  await new Promise<void>((resolve) => upstream.listen(0, '127.0.0.1', resolve));
  const port = (upstream.address() as AddressInfo).port;
  const gw = await startInProcess({
    server: { proxy_by: 'Edge/1.0 (eu-west-1)' },
    load_balancing: { upstreams: [{ name: 'a', address: '127.0.0.1', port }] },
  });
  try {
    const ok = await rawRequest(gw.gateway.port, 'GET /x HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n');
    assert.equal(ok.status, 200);
    assert.equal(ok.headers['x-proxy-by'], 'Edge/1.0 (eu-west-1)');
    const refused = await rawRequest(gw.gateway.port, 'GET /x HTTP/1.1\r\nHost: a\r\nBad Header\r\n\r\n');
    assert.equal(refused.status, 400);
    assert.equal(refused.headers['x-proxy-by'], 'Edge/1.0 (eu-west-1)');
  } finally {
    await gw.close();
    await new Promise<void>((resolve) => upstream.close(() => resolve()));
  }
});
