// Nothing is written to an HTTP/1.1 response after the gateway has ended its own answer on it. The 408 of a request
// body that went silent (server.timeouts.request_body_chunk) is the gateway's answer while the upstream request is
// still open: it is cut only once that answer's 'finish' comes, which node emits when the kernel has taken the answer.
// A client that reads nothing holds that 'finish' back (here the answer carries an 8 MB header, more than the
// loopback socket buffers hold), and an upstream head and body chunk landing meanwhile were relayed: the head was
// dropped, but its status replaced the 408 in the access log, and the chunk was written to the ended response, whose
// write-after-end 'error' no one listened to: an uncaught exception, and the gateway process stopped (exit 1).
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { spawnGateway, type GatewayProcess } from '../helpers/gateway.js';
import { getStatus } from '../helpers/http.js';
import { openSocket, responseUntilClose } from '../helpers/raw.js';
import { sleep, waitFor } from '../helpers/wait.js';

const PAD = new URL('../plugins/fixtures/pad-response.mjs', import.meta.url).pathname;
/** The padding header's size: far over what the kernel buffers of a loopback connection take from one write. */
const PAD_BYTES = 8 * 1024 * 1024;
/**
 * The body's silence bound: the 408 goes out this long after the body went quiet, or up to a quarter later (body-guard.ts
 * checks every quarter of the bound, and a check that finds the body not yet flowing starts the quiet period there).
 */
const BODY_CHUNK_MS = 4_000;
/**
 * The upstream answers this long after the request's head reached it: after the latest 408 (1.25 x BODY_CHUNK_MS), with
 * 0.8 s to spare. At 2.4 s against a 2 s bound the upstream's answer raced the 408 and won under load (the client got
 * the upstream's 200, 'x-response-time: 2406ms').
 */
const UPSTREAM_ANSWER_MS = 5_800;
/**
 * The client reads nothing for this long: the upstream has answered (head, then its last chunk 200 ms later) 0.8 s
 * before. Less than the 408's own time plus BODY_CHUNK_MS (at least 8 s), since request_body_chunk is also the longest a
 * client may take no byte of an answer (listeners/h1-send-bound.ts would cut the held 408 with its connection).
 */
const CLIENT_SILENT_MS = 6_800;

/** An upstream that ignores the body and answers a head and a first chunk UPSTREAM_ANSWER_MS after the request. */
async function lateUpstream(): Promise<{ port: number; heads: () => number; close(): Promise<void> }> {
  let heads = 0;
  const server: Server = createServer((req, res) => {
    req.on('error', () => undefined);
    res.on('error', () => undefined);
    setTimeout(() => {
      if (res.destroyed) return;
      heads++;
      res.writeHead(200, { 'content-type': 'text/plain' });
      res.write('first chunk of the upstream answer\n');
      setTimeout(() => res.end('the rest\n'), 200);
    }, UPSTREAM_ANSWER_MS);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as AddressInfo).port,
    heads: () => heads,
    close: () => {
      server.closeAllConnections();
      return new Promise((resolve) => server.close(() => resolve()));
    },
  };
}

describe('an upstream answer landing after the gateway ended its own HTTP/1.1 answer', () => {
  let upstream: Awaited<ReturnType<typeof lateUpstream>>;
  let gw: GatewayProcess;

  before(async () => {
    upstream = await lateUpstream();
    gw = await spawnGateway({
      server: { timeouts: { request_body_chunk: `${BODY_CHUNK_MS}ms` } },
      load_balancing: { upstreams: [{ name: 'late', address: '127.0.0.1', port: upstream.port }] },
      plugins: [{ name: 'pad', module: PAD }],
      middleware: { plugins: ['pad'] },
    });
  });

  after(async () => {
    await gw?.cleanup();
    await upstream?.close();
  });

  test('the 408 of a silent body stays the answer, nothing is written after it, and the gateway goes on', async () => {
    for (let round = 1; round <= 2; round++) {
      const socket = await openSocket(gw.port);
      socket.on('error', () => undefined);
      // Not read until the upstream has answered: the padded 408 stays in the gateway's socket buffer meanwhile.
      socket.pause();
      socket.write(`POST /upload HTTP/1.1\r\nHost: a.test\r\nX-Pad: ${PAD_BYTES}\r\nContent-Length: 1000\r\n\r\n${'b'.repeat(10)}`);
      const headsBefore = upstream.heads();
      await sleep(CLIENT_SILENT_MS);
      assert.equal(upstream.heads(), headsBefore + 1, `round ${round}: the upstream answered while the client read nothing`);
      const answering = responseUntilClose(socket, 15_000);
      socket.resume();
      const answer = await answering;
      assert.equal(answer.status, 408, `round ${round}: the client got the gateway's 408`);
      assert.equal(answer.headers['x-pad']?.length, PAD_BYTES, `round ${round}: the whole padded head`);
      assert.match(answer.body, /"code":"request_body_timeout"/, `round ${round}: the 408's own body, nothing after it`);
      assert.doesNotMatch(answer.body, /upstream answer/, `round ${round}: no byte of the upstream's answer`);
      const uncaught = gw.logs.filter((l) => l.msg === 'Uncaught Exception').map((l) => `${String(l.error)} at ${String(l.origin)}`);
      assert.deepEqual(uncaught, [], `round ${round}: no uncaught exception (a write after end)`);
      assert.equal(gw.child.exitCode, null, `round ${round}: the gateway process is still running`);
      assert.equal(await getStatus(gw.port, "/health"), 200, `round ${round}: and answers`);
    }
    // The second line is written when that request's connection has closed, which the client may see first: waited
    // for, not read at once (a line never written still fails here).
    const uploads = (): Array<Record<string, unknown>> => gw.logs.filter((l) => l.msg === 'Request Completed' && l.path === '/upload');
    await waitFor(() => uploads().length >= 2, 'two Request Completed lines of /upload', 10_000);
    const completed = uploads();
    assert.equal(completed.length, 2);
    for (const line of completed) {
      assert.equal(line.status, 408, 'logged with the status the client got, not the upstream\'s');
      assert.equal(line.error, 'REQUEST_BODY_TIMEOUT');
    }
  });
});
