// A request node parses while a refusal's close lingers is never served, and never logged (found by review). An
// HTTP/1.1 upload answered early (413 over max_body_size, 401 without a token) ends its connection with a lingering
// close (lingering-close.ts): FIN after the answer, the rest read and dropped for up to 5 s. node's parser goes on
// parsing what it reads: a request sent after the refused body was dispatched, skipped by the driver unserved, and
// logged `Request Completed` 499 once the connection closed, with a `Request Start` before it: a request its client
// never got an answer to and the gateway never meant to serve. The access log now has the refusal's line alone.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { TestBackend } from '../helpers/backends.js';
import type { InProcessGateway } from '../helpers/gateway.js';
import { startAuthStack, type AuthStack } from '../helpers/auth-gateway.js';
import { halfOpenSocket, sendAcrossRefusal } from '../helpers/half-open.js';
import { sleep, waitFor } from '../helpers/wait.js';

let stack: AuthStack;
let backend: TestBackend;
let gw: InProcessGateway;

before(async () => {
  stack = await startAuthStack({
    routes: [
      { name: 'small', match: { path_prefix: '/upload' }, service: 'default', auth: 'off', max_body_size: '1KB' },
      { name: 'open', match: { path_prefix: '/open' }, service: 'default', auth: 'off' },
      { name: 'locked', match: { path_prefix: '/locked' }, service: 'default', auth: 'required' },
    ],
  });
  ({ backend, gw } = stack);
});

after(async () => {
  await stack?.close();
});

/** The access log's Request Start and Request Completed lines of requests to `path`s starting with `prefix`. */
function accessLines(prefix: string): Array<Record<string, unknown>> {
  return gw.logs.filter(
    (l) => (l.msg === 'Request Completed' || l.msg === 'Request Start') && typeof l.path === 'string' && l.path.startsWith(prefix),
  );
}

interface Case {
  readonly what: string;
  readonly status: number;
  /** The refused request's head and first body bytes. */
  readonly start: string;
  /** The rest of its body, which node's parser reads as body while the close lingers. */
  readonly rest: string;
  /** Upstream requests the refused one makes: a chunked body is forwarded as it streams, until it passes the limit. */
  readonly upstreamHits: number;
  /**
   * Only with the rest sent after the refusal: a chunked body sent whole in one write is all read before the limit
   * refuses it, so its 413 keeps the connection, and a request behind it is a pipelined request like any other.
   */
  readonly splitOnly: boolean;
  /**
   * Sent whole in one write, the refused body is all in when the answer goes out (it waits for the rest of the read,
   * reply.ts): the connection is kept, and the request after it is served like any pipelined one.
   */
  readonly keptWhole: boolean;
}

/** A request for `path` after the refused one: one node parses as a request of its own. */
const after1 = (path: string): string => `GET ${path} HTTP/1.1\r\nHost: a\r\n\r\n`;

function cases(tag: string): Case[] {
  return [
    {
      what: '413: a declared length over max_body_size, its whole body and a request after it',
      status: 413,
      start: `POST /upload/${tag}-length HTTP/1.1\r\nHost: a\r\nContent-Length: 2048\r\n\r\n`,
      rest: `${'x'.repeat(2048)}${after1(`/open/${tag}-length-after`)}`,
      upstreamHits: 0,
      splitOnly: false,
      // A 413 ends its connection whatever was read, as nginx's does (reply.ts CLOSING_STATUSES).
      keptWhole: false,
    },
    {
      what: '413: a chunked body over max_body_size, its last chunk and a request after it',
      status: 413,
      start: `POST /upload/${tag}-chunked HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n800\r\n${'y'.repeat(2048)}\r\n`,
      rest: `10\r\n${'z'.repeat(16)}\r\n0\r\n\r\n${after1(`/open/${tag}-chunked-after`)}`,
      upstreamHits: 1,
      splitOnly: true,
      keptWhole: false,
    },
    {
      what: '401: an upload without a token, its body and a request after it',
      status: 401,
      start: `POST /locked/${tag}-token HTTP/1.1\r\nHost: a\r\nContent-Length: 1000\r\n\r\n{"a":`,
      rest: `${'x'.repeat(995)}${after1(`/open/${tag}-token-after`)}`,
      upstreamHits: 0,
      splitOnly: false,
      keptWhole: true,
    },
    {
      what: '413: a declared length over max_body_size, its whole body and a WebSocket Upgrade after it',
      status: 413,
      start: `POST /upload/${tag}-upgrade HTTP/1.1\r\nHost: a\r\nContent-Length: 2048\r\n\r\n`,
      rest:
        `${'x'.repeat(2048)}GET /open/${tag}-upgrade-after HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
        'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n',
      upstreamHits: 0,
      splitOnly: false,
      // An Upgrade behind an answer still owed is never served: that answer goes out with Connection: close.
      keptWhole: false,
    },
  ];
}

/**
 * Sends `start`, waits for the refusal (unless `oneWrite`: all in one write), then the rest on the same connection;
 * ends the connection once the gateway had time to parse it (our FIN ends the lingering close; the gateway then closes
 * the connection, and a dispatched request is logged). Resolves with every byte the client received.
 */
function refusedThenMore(c: Case, oneWrite: boolean): Promise<string> {
  return sendAcrossRefusal(gw.gateway.port, c.start, c.rest, { oneWrite, waitMs: 10_000 });
}

describe('a request parsed after a lingering refusal is neither served nor logged', () => {
  for (const oneWrite of [false, true]) {
    const how = oneWrite ? 'all in one write' : 'the rest after the refusal';
    for (const c of cases(oneWrite ? 'one' : 'split').filter((one) => !oneWrite || (!one.splitOnly && !one.keptWhole))) {
      test(`${c.what} (${how}): one answer and one access line for the connection`, async () => {
        const hits = backend.hits;
        const data = await refusedThenMore(c, oneWrite);
        assert.match(data, new RegExp(`^HTTP/1\\.1 ${c.status} `));
        assert.equal(data.match(/HTTP\/1\.1 \d{3} /g)?.length, 1, `one answer only: ${data}`);
        const refused = c.start.split(' ')[1]!;
        // The refusal's line is written when its answer is out, before the connection closed.
        await waitFor(() => accessLines(refused).some((l) => l.msg === 'Request Completed'), 'the refusal logged', 10_000);
        // Anything the close of the connection would log has been written by now (the lines are synchronous).
        await sleep(200);
        // Both paths of the connection carry its case's tag: the refused one and the one sent after its body.
        const tag = refused.split('/')[2]!;
        const completed = gw.logs.filter((l) => l.msg === 'Request Completed' && String(l.path).includes(tag));
        assert.deepEqual(
          completed.map((l) => [l.path, l.status]),
          [[refused, c.status]],
          `exactly one Request Completed for the connection: ${JSON.stringify(completed)}`,
        );
        assert.deepEqual(accessLines(`/open/${tag}-after`), [], 'no line of the request sent after the refused body');
        assert.ok(backend.hits <= hits + c.upstreamHits, 'the request after the refused body never reached the upstream');
      });
    }
  }

  for (const c of cases('whole').filter((one) => one.keptWhole)) {
    test(`${c.what} (all in one write): the refusal keeps the connection, the request after it is served and logged`, async () => {
      const hits = backend.hits;
      const data = await refusedThenMore(c, true);
      assert.deepEqual(data.match(/HTTP\/1\.1 \d{3} /g), [`HTTP/1.1 ${c.status} `, 'HTTP/1.1 200 '], data);
      assert.doesNotMatch(data.split('\r\n\r\n')[0]!, /\r\nconnection: close/i, 'the refusal keeps the connection');
      const refused = c.start.split(' ')[1]!;
      const tag = refused.split('/')[2]!;
      await waitFor(() => accessLines(`/open/${tag}-after`).some((l) => l.msg === 'Request Completed'), 'the request after logged', 10_000);
      const completed = gw.logs.filter((l) => l.msg === 'Request Completed' && String(l.path).includes(tag));
      assert.deepEqual(completed.map((l) => [l.path, l.status]), [[refused, c.status], [`/open/${tag}-after`, 200]]);
      assert.equal(backend.hits, hits + 1, 'only the request after the refused one reached the upstream');
    });
  }

  test('the same request on its own connection is served and logged (the checks above can see one)', async () => {
    const socket = await halfOpenSocket(gw.gateway.port);
    let data = '';
    socket.setEncoding('latin1');
    socket.on('data', (d: string) => (data += d));
    try {
      socket.write(`GET /open/control HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n`);
      await waitFor(() => data.includes('\r\n\r\n'), 'the answer', 10_000);
    } finally {
      socket.destroy();
    }
    assert.match(data, /^HTTP\/1\.1 200 /);
    await waitFor(() => accessLines('/open/control').some((l) => l.msg === 'Request Completed'), 'the control logged', 10_000);
  });
});
