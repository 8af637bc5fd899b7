// The admin port had no connection bound: the proxy port holds at most server.max_connections (the redirect port a
// bound of its own, the same number), but the admin listener took every connection offered, and its dashboard page and
// /ready need no token, so anyone who reached it could hold tens of thousands of idle connections (descriptors the
// proxy port then lacked). It now holds at most server.max_connections of its own: past it, a new connection is
// closed unanswered; the ones open are served on; a reload's value applies to the next connection.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { Socket } from 'node:net';
import { parseConfigObject } from '../../src/config/load.js';
import { startInProcess, type InProcessGateway } from '../helpers/gateway.js';
import { openSocket, readUntil } from '../helpers/raw.js';
import { waitFor } from '../helpers/wait.js';

const CAP = 4;
const READY = 'GET /ready HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n';

function configWith(maxConnections: number): Record<string, unknown> {
  return {
    server: { listen_host: '127.0.0.1', listen_port: 0, max_connections: maxConnections },
    admin: { enabled: true, listen_host: '127.0.0.1', listen_port: 0 },
    logging: { format: 'json', level: 'info' },
    // Nothing listens there: the test never goes past the admin port.
    load_balancing: { upstreams: [{ name: 'nowhere', address: '127.0.0.1', port: 9 }], health_check: { enabled: false } },
  };
}

/** One /ready answer on an open connection (kept alive): its status line. */
async function ready(socket: Socket): Promise<string> {
  socket.write(READY);
  const data = await readUntil(socket, (d) => d.includes('\r\n\r\n') && d.toString().endsWith('}'));
  return data.toString().split('\r\n')[0]!;
}

/**
 * What a new connection gets for `GET /ready`: its status line, or 'closed' when the gateway closes it without a byte
 * (a reset included: the request may be written after the close).
 */
async function fresh(port: number): Promise<{ outcome: string; socket: Socket }> {
  const socket = await openSocket(port);
  const outcome = await new Promise<string>((resolve) => {
    let data = '';
    socket.on('error', () => undefined);
    socket.on('data', (chunk: Buffer) => {
      data += chunk.toString();
      if (data.includes('\r\n\r\n') && data.endsWith('}')) resolve(data.split('\r\n')[0]!);
    });
    socket.once('close', () => resolve(data === '' ? 'closed' : `partial: ${data}`));
    socket.write(READY);
  });
  return { outcome, socket };
}

describe('admin port connection bound (server.max_connections)', () => {
  let gw: InProcessGateway;
  let port: number;
  const open: Socket[] = [];

  before(async () => {
    gw = await startInProcess(configWith(CAP));
    port = Number(new URL(gw.adminUrl!).port);
  });
  after(async () => {
    for (const socket of open) socket.destroy();
    await gw?.close();
  });

  test('past the bound a new connection is closed unanswered; the open ones are served on', async () => {
    for (let i = 0; i < CAP; i++) {
      const socket = await openSocket(port);
      open.push(socket);
      // Answered: the gateway holds this connection (and counts it) before the next one is opened.
      assert.equal(await ready(socket), 'HTTP/1.1 200 OK', `connection ${i + 1}`);
    }
    const over = await fresh(port);
    over.socket.destroy();
    assert.equal(over.outcome, 'closed', `connection ${CAP + 1} of a bound of ${CAP}`);
    assert.equal(await ready(open[CAP - 1]!), 'HTTP/1.1 200 OK', 'an open connection, after the refusal');
  });

  test('a connection that closes frees its place', async () => {
    open.shift()!.destroy();
    // The gateway sees the close a moment later: until then a new connection may still be refused.
    let served: Socket | undefined;
    await waitFor(async () => {
      const attempt = await fresh(port);
      if (attempt.outcome === 'HTTP/1.1 200 OK') served = attempt.socket;
      else attempt.socket.destroy();
      return served !== undefined;
    }, 'a connection served once one closed');
    open.push(served!);
  });

  test("a reload's server.max_connections applies to the next connection", async () => {
    await gw.gateway.reload(parseConfigObject(configWith(CAP + 1)));
    // Each open connection answered again just now, so none has gone idle past the admin keep-alive meanwhile.
    for (const socket of open) assert.equal(await ready(socket), 'HTTP/1.1 200 OK', 'an open connection, after the reload');
    const next = await fresh(port);
    open.push(next.socket);
    assert.equal(next.outcome, 'HTTP/1.1 200 OK', `connection ${CAP + 1} of a bound of ${CAP + 1}`);
    const over = await fresh(port);
    over.socket.destroy();
    assert.equal(over.outcome, 'closed', `connection ${CAP + 2} of a bound of ${CAP + 1}`);
  });
});
