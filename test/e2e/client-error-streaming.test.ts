// Malformed bytes pipelined behind an earlier request: its response is never corrupted or overtaken by a 400, and
// nothing the earlier request holds (its upstream attempt, the connection) is left waiting.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { startBackend } from '../helpers/backends.js';
import { startInProcess, upstreams } from '../helpers/gateway.js';
import { openSocket, readUntil } from '../helpers/raw.js';
import { waitFor } from '../helpers/prometheus.js';

/** The gauges that must be back at 0 once nothing is running, summed. */
async function inFlight(adminUrl: string): Promise<number> {
  const text = await (await fetch(`${adminUrl}/metrics`)).text();
  const gauges = /^portcullis_(?:requests_in_flight|upstream_in_flight)(?:\{[^}]*\})? (\S+)$/gm;
  let sum = 0;
  for (const [, value] of text.matchAll(gauges)) sum += Number(value);
  return sum;
}

const backend = await startBackend('one');
const gw = await startInProcess({ load_balancing: { upstreams: upstreams([backend.port]) } });
after(async () => {
  await gw.close();
  await backend.stop();
});

test('a parse error while a response streams closes the connection instead of writing a 400 into the body', async () => {
  const socket = await openSocket(gw.gateway.port);
  try {
    socket.write('GET /download?bytes=8000000 HTTP/1.1\r\nHost: x\r\n\r\n');
    const head = await readUntil(socket, (data) => data.includes('\r\n\r\n'));
    assert.match(head.toString('latin1'), /^HTTP\/1\.1 200 /);
    // A second, malformed request on the same connection while the first response is still being written.
    let rest = Buffer.alloc(0);
    socket.on('data', (chunk: Buffer) => (rest = Buffer.concat([rest, chunk])));
    const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()));
    socket.write('NOT AN HTTP REQUEST\r\n\r\n');
    await closed;
    const text = Buffer.concat([head, rest]).toString('latin1');
    assert.equal(text.indexOf('HTTP/1.1 ', 1), -1, 'a second status line was written into the streaming body');
  } finally {
    socket.destroy();
  }
  // The gateway goes on serving.
  assert.equal((await fetch(`${gw.url}/after`)).status, 200);
});

// Every kind of request node's parser refuses (the 400, 408 and 431 family): none may overtake the answer before it.
const BAD_BEHIND: ReadonlyArray<readonly [string, string]> = [
  ['a malformed request line', 'NOT AN HTTP REQUEST\r\n\r\n'],
  ['oversized headers (431 alone)', `GET /big HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(20_000)}\r\n\r\n`],
  ['a bad Content-Length', 'POST /x HTTP/1.1\r\nHost: x\r\nContent-Length: 1x\r\n\r\n'],
];

for (const [what, bad] of BAD_BEHIND) {
  test(`${what} behind a request still waiting for its upstream: closed, no error status ahead of its answer, nothing left in flight`, async () => {
    const before = gw.logs.filter((l) => l.path === '/slow' && l.status === 499).length;
    const socket = await openSocket(gw.gateway.port);
    let received = '';
    socket.on('data', (chunk: Buffer) => (received += chunk.toString('latin1')));
    const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()));
    try {
      // The first request's answer takes 300 ms upstream; the bad one behind it is parsed at once.
      socket.write(`GET /slow?ms=300 HTTP/1.1\r\nHost: x\r\n\r\n${bad}`);
      await closed;
      assert.doesNotMatch(received, /^HTTP\/1\.1 4\d\d /, 'an error status went out before the first request was answered');
    } finally {
      socket.destroy();
    }
    // Before, the socket was half-closed under the pending response: the request, its upstream slot and the
    // connection stayed counted for as long as the client kept its side open.
    await waitFor('the first request to be logged (499) and nothing left in flight', async () => {
      const logged = gw.logs.filter((l) => l.path === '/slow' && l.status === 499).length > before;
      return logged && (await inFlight(gw.adminUrl!)) === 0;
    });
    assert.equal((await fetch(`${gw.url}/after`)).status, 200);
  });
}
