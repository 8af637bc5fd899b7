// A WebSocket tunnel still open when a gateway process stops is closed once server.timeouts.shutdown_drain is over,
// and README promises its "Tunnel Closed" line with closed_by "shutdown". In a real process that line was lost: the
// tunnel writes it only once its upstream leg has closed too, a few turns of the event loop after the stop destroyed
// the client's socket, and by then the stop had ended and flushed its log (the in-process test of the same case
// waited for the line after close() resolved, which a process that exits cannot do).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startBackend, type TestBackend } from '../helpers/backends.js';
import { spawnGateway, upstreams } from '../helpers/gateway.js';
import { openSocket, readUntil } from '../helpers/raw.js';
import { waitFor } from '../helpers/wait.js';
import { endGroup } from '../helpers/workers.js';

let backend: TestBackend;
before(async () => {
  backend = await startBackend('ws');
});
after(async () => {
  await backend?.stop();
});

const UPGRADE =
  'GET /ws HTTP/1.1\r\nHost: gw\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n' +
  'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n';

for (const workers of [1, 2]) {
  test(`workers ${workers}: a tunnel open at SIGTERM is closed at the drain bound and logged "Tunnel Closed", closed_by shutdown`, async (t) => {
    const gw = await spawnGateway(
      { server: { workers, timeouts: { shutdown_drain: '300ms' } }, load_balancing: { upstreams: upstreams([backend.port]) } },
      { group: true, timeoutMs: 30_000 },
    );
    t.after(() => endGroup(gw));
    await waitFor(() => gw.logs.filter((l) => l.msg === 'Gateway Started').length === workers, 'every worker started', 30_000);
    const socket = await openSocket(gw.port);
    t.after(() => socket.destroy());
    socket.write(UPGRADE);
    await readUntil(socket, (data) => data.includes('\r\n\r\n'));
    // The tunnel relays (the backend echoes): it is open when the stop comes.
    socket.write('hello');
    await readUntil(socket, (data) => data.includes('hello'));
    const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()));
    gw.signal('SIGTERM');
    await closed;
    assert.deepEqual(await gw.exited, { code: 0, signal: null });
    const opened = gw.logs.find((l) => l.msg === 'Request Completed' && l.status === 101);
    assert.ok(opened, 'the 101 was logged');
    const line = gw.logs.find((l) => l.msg === 'Tunnel Closed');
    assert.ok(line, 'a "Tunnel Closed" line was written before the process exited');
    assert.equal(line.request_id, opened.request_id);
    assert.equal(line.closed_by, 'shutdown');
    assert.equal(line.bytes_from_client, 5);
    assert.equal(line.bytes_from_upstream, 5);
  });
}
