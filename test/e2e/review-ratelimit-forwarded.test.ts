// Review (rate limit, key evasion): behind a trusted proxy that appends its hop to the client's Forwarded header, the
// client's own malformed text on the left (an unterminated quoted string, a dangling backslash) must not make the
// proxy's hop on the right unreadable: that moved the client into the proxy's bucket, and out of its own.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { startBackend } from '../helpers/backends.js';
import { startInProcess, upstreams } from '../helpers/gateway.js';
import { rawRequest } from '../helpers/raw.js';
import { waitFor } from '../helpers/wait.js';

const backend = await startBackend('one');
// Burst 2, one token a minute: no refill during the test, however slow the machine.
const gw = await startInProcess({
  server: { trusted_proxies: ['127.0.0.1'] },
  load_balancing: { upstreams: upstreams([backend.port]) },
  middleware: { rate_limit: { enabled: true, requests_per_minute: 1, burst_size: 2 } },
});
after(async () => {
  await gw.close();
  await backend.stop();
});

/** One request as the trusted proxy sends it, with these Forwarded lines; its status and the logged client. */
async function viaProxy(path: string, forwardedLines: readonly string[]): Promise<{ status: number; client: unknown }> {
  const lines = forwardedLines.map((l) => `Forwarded: ${l}\r\n`).join('');
  const res = await rawRequest(gw.gateway.port, `GET ${path} HTTP/1.1\r\nHost: a.test\r\n${lines}Connection: close\r\n\r\n`);
  const line = () => gw.logs.find((l) => l.path === path && l.msg === 'Request Completed');
  await waitFor(() => line() !== undefined, `the access-log line of ${path}`);
  return { status: res.status, client: line()!.client };
}

test('a client cannot leave its bucket by prepending an unterminated quote to the Forwarded header its proxy appends to', async () => {
  const CLIENT = '198.51.100.7';
  // The client's bucket, drained through the proxy as it should be.
  assert.equal((await viaProxy('/drain-1', [`for=${CLIENT}`])).status, 200);
  assert.equal((await viaProxy('/drain-2', [`for=${CLIENT}`])).status, 200);
  assert.equal((await viaProxy('/drained', [`for=${CLIENT}`])).status, 429);

  // The same client, its own Forwarded value malformed, the proxy's hop appended on the same line or a line of its own:
  // still that client, still its drained bucket, and logged as it.
  const tricks: Array<[string, string[]]> = [
    ['/quote-same-line', [`for=", for=${CLIENT}`]],
    ['/quote-own-line', ['for="', `for=${CLIENT}`]],
    ['/backslash', [`for="x\\`, `for=${CLIENT}`]],
    ['/quote-in-param', [`for=1.1.1.1;proto="http, for=${CLIENT};proto=https`]],
  ];
  for (const [path, lines] of tricks) {
    const res = await viaProxy(path, lines);
    assert.deepEqual(res, { status: 429, client: CLIENT }, `${path}: ${JSON.stringify(lines)}`);
  }

  // A Forwarded header that is malformed where the proxy's own hop is read still names nobody: the peer.
  const broken = await viaProxy('/broken', [`for="${CLIENT}`]);
  assert.deepEqual(broken, { status: 200, client: '127.0.0.1' });
});
