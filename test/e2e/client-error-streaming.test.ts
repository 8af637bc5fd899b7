// Malformed bytes pipelined behind a request whose response is streaming: the stream is never corrupted by a 400.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { startBackend } from '../helpers/backends.js';
import { startInProcess, upstreams } from '../helpers/gateway.js';
import { openSocket, readUntil } from '../helpers/raw.js';

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
