// A gateway-made answer whose head node refuses (reply.ts writeReply: a header with a control character, set by a
// phase the plugin contract's checks do not cover) is replaced by a bare 500. That 500 keeps the refused head's
// decision to close the connection: an answer given mid-upload (here a 413 before the body) says Connection: close
// and closes with a lingering close. Before, the 500 went out keep-alive on a connection already marked lingering:
// the client was told to reuse a connection whose next request the gateway drops unanswered, and node went on
// reading the refused upload. An error answered keep-alive (no body left unread) stays keep-alive.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { Socket } from 'node:net';
import { GatewayError } from '../../src/errors.js';
import type { Phase } from '../../src/pipeline/phase.js';
import { sendError } from '../../src/pipeline/reply.js';
import { halfOpenSocket } from '../helpers/half-open.js';
import { startPipelineServer, type PipelineServer } from '../helpers/pipeline-server.js';
import { openSocket, parseHead } from '../helpers/raw.js';
import { sleep, waitFor } from '../helpers/wait.js';

/** A value node refuses in an HTTP/1.1 head (a control character), which the plugin contract would refuse at set. */
const REFUSED_VALUE = 'a\u0001b';

/** /refuse: answered 413 before any body is read (as a declared length over max_body_size is). */
const refuse: Phase = {
  name: 'refuse',
  onRequest: (ctx) => (ctx.req.url?.startsWith('/refuse') === true ? sendError(ctx, new GatewayError('PAYLOAD_TOO_LARGE')) : 'continue'),
};

/** With X-Bad on the request: a header node refuses on every answer's head. */
const badHeader: Phase = {
  name: 'bad-header',
  onResponse: (ctx, headers) => {
    if (ctx.req.headers['x-bad'] !== undefined) headers['x-bad'] = REFUSED_VALUE;
  },
};

/** What a connection has received so far, and whether the server has sent its FIN. */
interface Received {
  text: string;
  ended: boolean;
  closed: boolean;
}

function watch(socket: Socket): Received {
  const received: Received = { text: '', ended: false, closed: false };
  socket.setEncoding('latin1');
  socket.on('data', (d: string) => (received.text += d));
  socket.on('end', () => (received.ended = true));
  socket.on('close', () => (received.closed = true));
  socket.on('error', () => undefined);
  return received;
}

/** The complete responses (Content-Length framed) in `text`. */
function responses(text: string): Array<{ status: number; headers: Record<string, string>; body: string }> {
  const out: Array<{ status: number; headers: Record<string, string>; body: string }> = [];
  let at = 0;
  for (;;) {
    const end = text.indexOf('\r\n\r\n', at);
    if (end === -1) return out;
    const head = parseHead(text.slice(at, end));
    const length = Number(head.headers['content-length'] ?? 0);
    if (text.length < end + 4 + length) return out;
    out.push({ ...head, body: text.slice(end + 4, end + 4 + length) });
    at = end + 4 + length;
  }
}

describe('a gateway answer whose head node refuses: the bare 500 keeps its connection decision', () => {
  let server: PipelineServer;
  let port: number;

  before(async () => {
    server = await startPipelineServer({
      routes: { main: { name: 'main', phases: [refuse, badHeader], upstream: 'echo' } },
      match: (_ctx, routes) => routes.main!,
    });
    port = Number(new URL(server.url).port);
  });

  after(async () => {
    await server?.close();
  });

  test('mid-upload: the 500 says Connection: close, the connection closes, and nothing after it is answered', async () => {
    const socket = await halfOpenSocket(port);
    const received = watch(socket);
    try {
      socket.write(`POST /refuse HTTP/1.1\r\nHost: a.test\r\nX-Bad: 1\r\nContent-Length: 100000\r\n\r\n${'u'.repeat(1000)}`);
      await waitFor(() => responses(received.text).length === 1, 'the answer', 5_000);
      const [answer] = responses(received.text);
      assert.equal(answer!.status, 500);
      assert.equal((JSON.parse(answer!.body) as { code: string }).code, 'internal');
      assert.equal(answer!.headers['x-bad'], undefined, 'the refused header is not sent');
      assert.equal(answer!.headers.connection, 'close', 'the 500 keeps the 413\'s Connection: close');
      // The lingering close: our FIN follows the answer at once, while the rest of the upload is read and dropped.
      await waitFor(() => received.ended, 'the gateway\'s FIN after the answer', 3_000);
      socket.write(`${'u'.repeat(99_000)}GET /after HTTP/1.1\r\nHost: a.test\r\n\r\n`);
      await sleep(300);
      socket.end();
      await waitFor(() => received.closed, 'the connection closed', 5_000);
      assert.equal(responses(received.text).length, 1, 'nothing after the last answer is answered');
    } finally {
      socket.destroy();
    }
  });

  test('no body left unread: the 500 stays keep-alive and the next request on the connection is served', async () => {
    const socket = await openSocket(port);
    const received = watch(socket);
    try {
      socket.write('GET /refuse HTTP/1.1\r\nHost: a.test\r\nX-Bad: 1\r\n\r\n');
      await waitFor(() => responses(received.text).length === 1, 'the first answer', 5_000);
      const [first] = responses(received.text);
      assert.equal(first!.status, 500);
      assert.notEqual(first!.headers.connection, 'close');
      socket.write('GET /anything HTTP/1.1\r\nHost: a.test\r\n\r\n');
      await waitFor(() => responses(received.text).length === 2, 'the second answer', 5_000);
      assert.equal(responses(received.text)[1]!.status, 200);
      assert.equal(received.ended, false, 'the connection stays open');
    } finally {
      socket.destroy();
    }
  });
});
