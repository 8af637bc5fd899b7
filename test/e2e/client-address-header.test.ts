// server.client_address_header names the one header a trusted proxy's client is read from (nginx's and Kong's
// real_ip_header). Behind a proxy that sets X-Real-IP only (nginx: proxy_set_header X-Real-IP $remote_addr), the
// client's own X-Forwarded-For passes through and, read first by `auto`, let a client pick its rate-limit bucket and
// the address it is logged as on every request; with `x-real-ip` it is never read.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { startBackend } from '../helpers/backends.js';
import { startInProcess, upstreams } from '../helpers/gateway.js';
import { rawRequest } from '../helpers/raw.js';
import { waitFor } from '../helpers/wait.js';

const CLIENT = '198.51.100.7';
const backend = await startBackend('one');
after(() => backend.stop());

/** A gateway behind a trusted proxy on 127.0.0.1; burst 2, one token a minute: no refill during the test. */
async function gatewayReading(header: string | undefined) {
  const gw = await startInProcess({
    server: { trusted_proxies: ['127.0.0.1'], ...(header === undefined ? {} : { client_address_header: header }) },
    load_balancing: { upstreams: upstreams([backend.port]) },
    middleware: { rate_limit: { enabled: true, requests_per_minute: 1, burst_size: 2 } },
  });
  after(() => gw.close());
  /** One request as the proxy sends it: its X-Real-IP, and whatever the client put in the other two. */
  return async (path: string, clientSays: string): Promise<{ status: number; client: unknown }> => {
    const head = `GET ${path} HTTP/1.1\r\nHost: a.test\r\nX-Forwarded-For: ${clientSays}\r\nForwarded: for=${clientSays}\r\nX-Real-IP: ${CLIENT}\r\nConnection: close\r\n\r\n`;
    const res = await rawRequest(gw.gateway.port, head);
    const line = () => gw.logs.find((l) => l.path === path && l.msg === 'Request Completed');
    await waitFor(() => line() !== undefined, `the access-log line of ${path}`);
    return { status: res.status, client: line()!.client };
  };
}

test('x-real-ip: the client is X-Real-IP alone, whatever it writes in X-Forwarded-For or Forwarded', async () => {
  const viaProxy = await gatewayReading('x-real-ip');
  for (const [i, says] of ['203.0.113.1', '203.0.113.2', '203.0.113.3', '203.0.113.4'].entries()) {
    const res = await viaProxy(`/r${i}`, says);
    assert.equal(res.client, CLIENT, `logged as the proxy's client (${says})`);
    assert.equal(res.status, i < 2 ? 200 : 429, `one bucket however it spells itself (request ${i + 1})`);
  }
});

test('auto (the default) still reads X-Forwarded-For first: each new spelling is a new client', async () => {
  const viaProxy = await gatewayReading(undefined);
  for (const [i, says] of ['203.0.113.1', '203.0.113.2', '203.0.113.3'].entries()) {
    assert.deepEqual(await viaProxy(`/a${i}`, says), { status: 200, client: says });
  }
});
