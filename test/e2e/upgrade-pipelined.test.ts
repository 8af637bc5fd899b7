// An Upgrade request pipelined behind another request on one connection: the connection is closed, the process lives.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { startBackend, type TestBackend } from '../helpers/backends.js';
import { startInProcess, type InProcessGateway } from '../helpers/gateway.js';
import { openSocket, rawRequest } from '../helpers/raw.js';

let backend: TestBackend;
let gw: InProcessGateway;

before(async () => {
  backend = await startBackend('ws');
  gw = await startInProcess({
    load_balancing: { upstreams: [{ name: 'ws', address: '127.0.0.1', port: backend.port }], health_check: { enabled: false } },
  });
});

after(async () => {
  await gw.close();
  await backend.stop();
});

/** Writes `payload` in one go and resolves with everything received until the gateway closes the connection. */
async function exchange(payload: string): Promise<string> {
  const socket = await openSocket(gw.gateway.port);
  return new Promise((resolve, reject) => {
    let data = '';
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`connection still open: ${JSON.stringify(data)}`));
    }, 5_000);
    socket.setEncoding('utf8');
    socket.on('data', (chunk: string) => (data += chunk));
    socket.on('error', () => {});
    socket.once('close', () => {
      clearTimeout(timer);
      resolve(data);
    });
    socket.write(payload);
  });
}

const UPGRADE = 'GET /ws HTTP/1.1\r\nHost: a.test\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n';

test('an Upgrade behind a request still being answered closes the connection, and the gateway goes on serving', async () => {
  // Each first request is still being answered (or its answer still being written) when the Upgrade is parsed.
  for (const first of [
    'GET /slow?ms=200 HTTP/1.1\r\nHost: a.test\r\n\r\n',
    'GET /health HTTP/1.1\r\nHost: a.test\r\n\r\n',
    'GET /%zz HTTP/1.1\r\nHost: a.test\r\n\r\n', // a 400 the gateway makes itself
    'GET /status?code=404 HTTP/1.1\r\nHost: a.test\r\n\r\n',
  ]) {
    const received = await exchange(first + UPGRADE);
    assert.doesNotMatch(received, /101 Switching Protocols/, first);
    const health = await rawRequest(gw.gateway.port, 'GET /health HTTP/1.1\r\nHost: a.test\r\nConnection: close\r\n\r\n');
    assert.equal(health.status, 200, `alive after ${JSON.stringify(first)}`);
  }
});

test('an Upgrade on a connection whose earlier response has finished is switched as usual', async () => {
  const socket = await openSocket(gw.gateway.port);
  try {
    let data = '';
    socket.setEncoding('utf8');
    socket.on('data', (chunk: string) => (data += chunk));
    socket.write('GET /health HTTP/1.1\r\nHost: a.test\r\n\r\n');
    const deadline = Date.now() + 5_000;
    while (!data.includes('"status"') && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 10));
    socket.write(UPGRADE);
    while (!data.includes('101 Switching Protocols') && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 10));
    assert.match(data, /101 Switching Protocols/);
  } finally {
    socket.destroy();
  }
});
