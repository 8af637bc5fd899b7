// What was wrong: HTTP/2 clients that ask for a large download over TLS, open their flow-control windows wide and
// then read nothing more (connections left open) held their connections, streams and max_connections_per_client slots
// for good, and their requests were never logged. The send bound (timeouts.request_body_chunk) cuts each stream: the
// upstream request is aborted and the stream closed with CANCEL, but that RST_STREAM waits behind the response bytes
// already handed to the socket, which the client never takes, so the stream never closes, and the idle close waits
// for a session's last stream. (HTTP/1.1 has no such wait: the send bound destroys the connection.) 2d4bf13's PING
// probe of a session that cannot write was armed only by a stream's 'finish', which such a cut stream never emits.
// What is right now (40c6377): a stream the gateway cut mid-answer ('aborted') and still open two seconds later has
// its session PINGed too; no ACK within five seconds and the session goes with its connection, the request logged
// CLIENT_SEND_TIMEOUT, about 9 s after the request. Raw TLS h2 clients (frames by hand) that stop reading, against a
// spawned gateway.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { tlsStackHooks } from '../helpers/tls-stack.js';
import { clientPreface, frame, FRAME, FLAG, rawH2, requestBlock } from '../helpers/h2-frames.js';
import { waitFor } from '../helpers/wait.js';

const stack = tlsStackHooks('H2 Unread Download CA');
const { ca, cert } = stack;

/** Far more than the socket buffers hold: the gateway's writes stall once the kernel's are full. */
const BODY = 500 * 1024 * 1024;
const MAX_WINDOW = 2 ** 31 - 1;
const CLIENTS = 6;

function u32(n: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(n);
  return b;
}

const TITLE = 'h2 clients that stop reading a download are cut by the send bound: logged, and their connections closed';

test(TITLE, { timeout: 60_000 }, async () => {
  const backend = await stack.backend();
  const gw = await stack.gateway({
    server: {
      tls: { cert_file: cert.certFile, key_file: cert.keyFile },
      timeouts: { idle: '1s', request_body_chunk: '1s' },
    },
    services: { api: { upstreams: [{ name: 'api', address: '127.0.0.1', port: backend.port }] } },
    routes: [{ name: 'dl', match: { path_prefix: '/download' }, service: 'api' }],
  });
  assert.ok(gw.adminPort !== undefined);
  // Several at once, each on its own connection: every one must be let go of.
  const clients = await Promise.all(Array.from({ length: CLIENTS }, () => rawH2(gw.port, ca.ca, { read: false })));
  try {
    // Windows wide open (SETTINGS_INITIAL_WINDOW_SIZE, and the connection's): only the socket holds the gateway back.
    const settings = Buffer.concat([Buffer.from([0, 4]), u32(MAX_WINDOW)]);
    for (const client of clients) {
      client.send(
        clientPreface(),
        frame(FRAME.SETTINGS, 0, 0, settings),
        frame(FRAME.WINDOW_UPDATE, 0, 0, u32(MAX_WINDOW - 65_535)),
        frame(FRAME.SETTINGS, FLAG.ACK, 0),
        frame(FRAME.HEADERS, FLAG.END_HEADERS | FLAG.END_STREAM, 1, requestBlock('GET', `/download?bytes=${BODY}`)),
      );
    }
    // The send bound cuts each (1 to 2 s after its socket filled), the probe 2 s later, no ACK within 5 s: ~9 s.
    const completed = () => gw.logs.filter((l) => l.msg === 'Request Completed' && l.path === '/download');
    await waitFor(() => completed().length === CLIENTS, 'every download logged', 25_000).catch(() => {
      throw new Error(`never logged: ${CLIENTS - completed().length} of ${CLIENTS} downloads`);
    });
    for (const line of completed()) assert.equal(line.error, 'CLIENT_SEND_TIMEOUT', JSON.stringify(line));
    let last: string | undefined;
    const released = async (): Promise<boolean> => {
      const text = await (await fetch(`http://127.0.0.1:${gw.adminPort}/metrics`)).text();
      last = text.split('\n').find((l) => l.startsWith('portcullis_client_connections '));
      return last === 'portcullis_client_connections 0';
    };
    await waitFor(released, 'every connection released', 10_000).catch(() => {
      throw new Error(`still open: ${last}`);
    });
  } finally {
    for (const client of clients) client.socket.destroy();
  }
});
