// The admin port had no per-client connection cap: bounded only by server.max_connections in total, one client could
// hold all of them, and the /ready probes of load balancers and Kubernetes were refused until those connections timed
// out. It now has the proxy port's cap, server.max_connections_per_client, counted for the admin port alone: a
// connection over its client's cap is answered 429 TOO_MANY_CONNECTIONS and closed (the admin port is cleartext), and
// logged `Connection Refused` with `"listener":"admin"`. Clients are told apart by source address: on loopback a test
// connects from 127.0.0.2 as well as 127.0.0.1.
import { after, afterEach, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { connect, type Socket } from 'node:net';
import { startInProcess, type InProcessGateway } from '../helpers/gateway.js';
import { readUntil, responseUntilClose, parseHead, type RawResponse } from '../helpers/raw.js';
import { waitFor } from '../helpers/wait.js';
import type { Config } from '../../src/config/schema.js';
import { parseConfigObject } from '../../src/config/load.js';

const PER_CLIENT = 3;
const OTHER_CLIENT = '127.0.0.2';

const BASE = {
  server: { max_connections_per_client: PER_CLIENT },
  load_balancing: { upstreams: [{ name: 'nowhere', address: '127.0.0.1', port: 9 }] },
};

/** Opens a connection to 127.0.0.1:`port` from `from` (a loopback address). */
function openFrom(port: number, from = '127.0.0.1'): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const socket = connect({ port, host: '127.0.0.1', localAddress: from }, () => {
      socket.off('error', reject);
      resolve(socket);
    });
    socket.once('error', reject);
  });
}

/** One request on a new connection from `from`, closed after its answer. */
async function requestFrom(port: number, path: string, from = '127.0.0.1'): Promise<RawResponse> {
  const socket = await openFrom(port, from);
  socket.write(`GET ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n`);
  return responseUntilClose(socket);
}

/**
 * Opens `count` keep-alive connections to `port` and has each answered once, so the gateway has counted it before
 * the next is opened; the caller destroys them.
 */
async function holdConnections(port: number, path: string, count: number, held: Socket[]): Promise<void> {
  for (let i = 0; i < count; i++) {
    const socket = await openFrom(port);
    held.push(socket);
    socket.write(`GET ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n`);
    const head = (await readUntil(socket, (d) => d.includes('\r\n\r\n'))).toString('latin1');
    assert.equal(parseHead(head.slice(0, head.indexOf('\r\n\r\n'))).status, 200, `held connection ${i + 1}`);
  }
}

describe('the admin port caps connections per client', () => {
  let gw: InProcessGateway;
  let adminPort: number;
  let proxyPort: number;
  const held: Socket[] = [];

  before(async () => {
    gw = await startInProcess(BASE);
    adminPort = gw.gateway.adminPort!;
    proxyPort = gw.gateway.port;
  });

  after(async () => {
    for (const socket of held) socket.destroy();
    await gw?.close();
  });

  // Each test starts with no connection held: those of the one before are closed, and their slots freed.
  afterEach(releaseAll);

  /** Destroys every held connection and waits until the admin port takes a connection from 127.0.0.1 again. */
  async function releaseAll(): Promise<void> {
    for (const socket of held.splice(0)) socket.destroy();
    // The gateway frees a slot on the socket's 'close', a turn or more after ours: retried until it has.
    await waitFor(async () => (await requestFrom(adminPort, '/ready')).status === 200, 'the admin port to take a connection again');
  }

  test('a client holding its cap of admin connections is refused the next one: 429, logged; another client is not', async () => {
    await holdConnections(adminPort, '/ready', PER_CLIENT, held);
    const from = gw.logs.length;
    const refused = await requestFrom(adminPort, '/ready');
    assert.equal(refused.status, 429);
    assert.equal((JSON.parse(refused.body) as { code?: string }).code, 'too_many_connections');
    assert.equal(refused.headers['retry-after'], '1');
    await waitFor(() => gw.logs.slice(from).some((l) => l.msg === 'Connection Refused'), 'the Connection Refused line');
    const line = gw.logs.slice(from).find((l) => l.msg === 'Connection Refused')!;
    assert.equal(line.listener, 'admin');
    assert.equal(line.client, '127.0.0.1');
    assert.equal(line.error, 'TOO_MANY_CONNECTIONS');
    assert.equal(line.status, 429);
    // A probe from another address is served while the first client holds its cap.
    assert.equal((await requestFrom(adminPort, '/ready', OTHER_CLIENT)).status, 200);
    // The admin port's count is its own: the same client still reaches the proxy port.
    assert.equal((await requestFrom(proxyPort, '/health')).status, 200);
  });

  test('closing one of the held connections lets the next one in', async () => {
    await holdConnections(adminPort, '/ready', PER_CLIENT, held);
    assert.equal((await requestFrom(adminPort, '/ready')).status, 429);
    held.shift()!.destroy();
    await waitFor(async () => (await requestFrom(adminPort, '/ready')).status === 200, 'a slot freed by the close');
  });

  test("the proxy port's connections do not count against the admin port's cap", async () => {
    await holdConnections(proxyPort, '/health', PER_CLIENT, held);
    assert.equal((await requestFrom(proxyPort, '/health')).status, 429);
    assert.equal((await requestFrom(adminPort, '/ready')).status, 200);
  });

  test('a reload that lowers server.max_connections_per_client applies to the admin port', async () => {
    const lowered: Config = parseConfigObject({
      server: { listen_host: '127.0.0.1', listen_port: 0, max_connections_per_client: 1 },
      admin: { listen_host: '127.0.0.1', listen_port: 0 },
      logging: { format: 'json', level: 'info' },
      load_balancing: { ...BASE.load_balancing, health_check: { enabled: false } },
    });
    await gw.gateway.reload(lowered);
    await holdConnections(adminPort, '/ready', 1, held);
    assert.equal((await requestFrom(adminPort, '/ready')).status, 429);
  });
});
