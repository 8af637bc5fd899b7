// A client cannot crash the gateway by resetting a connection whose Upgrade (or CONNECT) was dropped during a
// lingering close (found reviewing 1b42741). An HTTP/1.1 upload answered early (here a 413 over max_body_size) ends
// its connection with a lingering close; an Upgrade or CONNECT head node parses after the refused body is dropped by
// the driver (run.ts), which resumes the socket node's parser let go of. node takes its own 'error' listener off such
// a socket at the head, and the drop added none: the client's reset (ECONNRESET on the read) was an uncaught
// exception, and the gateway logged "Uncaught Exception", drained and exited 1, every other client's connection with
// it. Before 1b42741 such a socket had the driver's error listener. Spawned gateway: the exit is what users see.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { startBackend, type TestBackend } from '../helpers/backends.js';
import { spawnGateway, upstreams, type GatewayProcess } from '../helpers/gateway.js';
import { halfOpenSocket } from '../helpers/half-open.js';
import { getStatus as get } from '../helpers/http.js';
import { sleep, waitFor } from '../helpers/wait.js';

let backend: TestBackend;

before(async () => {
  backend = await startBackend('echo');
});

after(async () => {
  await backend?.stop();
});

const HEADS: Record<string, string> = {
  'a WebSocket Upgrade':
    'GET /open/ws HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n' +
    'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n',
  'a CONNECT': 'CONNECT a:443 HTTP/1.1\r\nHost: a:443\r\n\r\n',
};

describe('a reset after an Upgrade dropped during a lingering close', () => {
  for (const [what, head] of Object.entries(HEADS)) {
    test(`${what} after a refused body, then a reset: the gateway serves on and stops cleanly`, async () => {
      const gw: GatewayProcess = await spawnGateway({
        load_balancing: { upstreams: upstreams([backend.port]) },
        admin: { enabled: false },
        routes: [
          { name: 'small', match: { path_prefix: '/upload' }, service: 'default', max_body_size: '1KB' },
          { name: 'open', match: { path_prefix: '/open' }, service: 'default' },
        ],
      });
      try {
        const socket = await halfOpenSocket(gw.port);
        let data = '';
        socket.setEncoding('latin1');
        socket.on('data', (d: string) => (data += d));
        socket.on('error', () => undefined);
        socket.write('POST /upload/refused HTTP/1.1\r\nHost: a\r\nContent-Length: 2048\r\n\r\n');
        await waitFor(() => data.includes('\r\n\r\n'), 'the 413', 10_000);
        assert.match(data, /^HTTP\/1\.1 413 /);
        // The refused body, the head the driver drops, and bytes after it, which the dropped socket reads on.
        socket.write(`${'x'.repeat(2048)}${head}more bytes`);
        // Time for the gateway to read and drop them (generous: a shared machine); then the reset.
        await sleep(700);
        socket.resetAndDestroy();
        await sleep(300);
        // Still serving, and a stop ends it cleanly (exit 0), with no uncaught exception logged.
        assert.equal(await get(gw.port, '/open/after'), 200);
        gw.signal('SIGTERM');
        const { code } = await gw.exited;
        const fatal = gw.logs.filter((l) => l.msg === 'Uncaught Exception');
        assert.deepEqual(fatal, [], 'no uncaught exception');
        assert.equal(code, 0, `exit code: ${gw.stderr()}`);
      } finally {
        await gw.cleanup();
      }
    });
  }
});
