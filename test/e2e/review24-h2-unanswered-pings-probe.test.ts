// A client that acknowledges no PING is still let go by the session probe after it has sent header blocks split
// across sweeps. Each such block made the guard send a PING to learn whether the block had ended (h2-guard.ts
// #settleBlock), one per block and none answered, until node's limit of 10 unacknowledged PINGs was reached. node
// refuses a PING past it by calling its callback at once with ERR_HTTP2_PING_CANCEL, and the probe took that call
// for the ACK: a session whose client acknowledged nothing was never destroyed (found by review). Now one settle
// PING at a time, and only an ACK counts. SessionWatch on a real node:http2 server (h2c) and a raw TCP client that
// never acknowledges a PING and holds its stream open after its answer, the case the probe is for.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Http2Server, type Http2Session } from 'node:http2';
import { connect, type AddressInfo, type Socket } from 'node:net';
import pino from 'pino';
import { RequestDeadlines, SessionWatch } from '../../src/listeners/h2-guard.js';
import { FLAG, FRAME, PREFACE, frame, requestBlock } from '../helpers/h2-frames.js';
import { sleep } from '../helpers/wait.js';

let server: Http2Server;
const sessionClosedAt = new Map<number, number>();
let nextSession = 0;

before(async () => {
  const watch = new SessionWatch({ idleMs: 0, headerMs: 1_000, sendMs: 0 }, new RequestDeadlines(0, 'test'), pino({ level: 'silent' }));
  server = createServer();
  server.on('session', (session: Http2Session) => {
    const n = nextSession++;
    watch.add(session, undefined);
    session.once('close', () => sessionClosedAt.set(n, Date.now()));
  });
  // Answered at once, whole; the stream stays open while the client has not ended its request.
  server.on('stream', (stream) => {
    stream.on('error', () => undefined);
    stream.resume();
    stream.respond({ ':status': 200 });
    stream.end('ok');
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
});

after(() => server.close());

async function run(prefillBlocks: number): Promise<number | undefined> {
  const n = nextSession;
  const c: Socket = connect((server.address() as AddressInfo).port, '127.0.0.1');
  c.on('error', () => undefined);
  c.on('data', () => undefined); // reads everything, acknowledges nothing
  await new Promise((resolve) => c.once('connect', resolve));
  try {
    c.write(Buffer.concat([PREFACE, frame(FRAME.SETTINGS, 0, 0)]));
    let id = 1;
    for (let i = 0; i < prefillBlocks; i++, id += 2) {
      const block = requestBlock('GET', '/x');
      c.write(frame(FRAME.HEADERS, FLAG.END_STREAM, id, block.subarray(0, 10))); // a block split across a sweep
      await sleep(400);
      c.write(frame(FRAME.CONTINUATION, FLAG.END_HEADERS, id, block.subarray(10)));
      await sleep(50);
    }
    const start = Date.now();
    c.write(frame(FRAME.HEADERS, FLAG.END_HEADERS, id, requestBlock('POST', '/upload'))); // never ended
    while (Date.now() - start < 12_000 && !sessionClosedAt.has(n)) await sleep(100);
    const at = sessionClosedAt.get(n);
    return at === undefined ? undefined : at - start;
  } finally {
    c.destroy();
  }
}

test('baseline: a client that holds its stream open after its answer and acknowledges nothing is let go by the probe', async () => {
  const ms = await run(0);
  assert.ok(ms !== undefined, 'still open 12 s later');
});

test('the same, after ten header blocks split across sweeps: still let go by the probe', async () => {
  const ms = await run(10);
  assert.ok(ms !== undefined, 'still open 12 s later: the probe took the refused PING for an ACK');
});
