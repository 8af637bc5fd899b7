// The per-client connection cap over real sockets: a client is what the rate limiter calls one (an IPv4 address, an
// IPv6 /64 by default), so one IPv6 end site cannot take server.max_connections with a handful of its addresses.
// This machine's loopback has one IPv6 address, so each accepted socket is given the peer address a test names (the
// one thing not real here); the cap's answer and the connection's fate are what a client really sees.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, connect, type Server, type Socket } from 'node:net';
import { once } from 'node:events';
import { ClientConnectionLimit, type ConnectionLimitSettings } from './connection-limit.js';
import { TrustedProxies } from './pipeline/client-address.js';

interface CapServer {
  /** Opens a connection that the server sees as coming from `address`; resolves with what the server did with it. */
  readonly from: (address: string) => Promise<{ readonly socket: Socket; readonly verdict: 'open' | 429 }>;
  readonly limit: ClientConnectionLimit;
}

const servers: Server[] = [];
const sockets: Socket[] = [];
after(() => {
  for (const s of sockets) s.destroy();
  for (const s of servers) s.close();
});

async function capServer(settings: Omit<ConnectionLimitSettings, 'trusted' | 'proxyBy'>): Promise<CapServer> {
  const limit = new ClientConnectionLimit({ trusted: new TrustedProxies([]), proxyBy: 'Portcullis', ...settings });
  const pretend: string[] = [];
  const server = createServer();
  servers.push(server);
  server.on('connection', (socket: Socket) => Object.defineProperty(socket, 'remoteAddress', { value: pretend.shift() }));
  server.on('connection', limit.listener(false));
  // A connection the cap let through is told so; a refused one has had its 429 written and is closing.
  server.on('connection', (socket: Socket) => {
    if (!socket.writableEnded) socket.write('open\n');
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as { port: number };
  const from = async (address: string) => {
    pretend.push(address);
    const socket = connect(port, '127.0.0.1');
    sockets.push(socket);
    socket.setEncoding('utf8');
    const [first] = (await once(socket, 'data')) as [string];
    if (first.startsWith('open')) return { socket, verdict: 'open' as const };
    assert.match(first, /^HTTP\/1\.1 429 /);
    await once(socket, 'close');
    return { socket, verdict: 429 as const };
  };
  return { from, limit };
}

test('addresses of one IPv6 /64 share one cap; the next /64 is another client; a closed connection frees its slot', async () => {
  const { from, limit } = await capServer({ maxPerClient: 2 });
  const verdicts: ('open' | 429)[] = [];
  const opened: Socket[] = [];
  // Ten privacy addresses of one end site, one connection each (a rotator): the site is one client.
  for (let i = 1; i <= 10; i++) {
    const { socket, verdict } = await from(`2001:db8:0:1:${i.toString(16)}::${i}`);
    verdicts.push(verdict);
    if (verdict === 'open') opened.push(socket);
  }
  assert.deepEqual(verdicts, ['open', 'open', 429, 429, 429, 429, 429, 429, 429, 429]);
  assert.equal(limit.openFrom('2001:db8:0:1::ffff'), 2);
  assert.equal((await from('2001:db8:0:2::1')).verdict, 'open', 'the neighbouring /64 is another client');

  opened[0]!.destroy();
  while (limit.openFrom('2001:db8:0:1::1') !== 1) await new Promise((resolve) => setTimeout(resolve, 5));
  assert.equal((await from('2001:db8:0:1::77')).verdict, 'open', 'the slot another address of the /64 held is free again');
});

test('every spelling of one address is one client; distinct IPv4 addresses are distinct clients', async () => {
  const { from } = await capServer({ maxPerClient: 1 });
  assert.equal((await from('10.0.0.1')).verdict, 'open');
  assert.equal((await from('10.0.0.2')).verdict, 'open');
  assert.equal((await from('::ffff:10.0.0.1')).verdict, 429, 'a dual-stack socket reports 10.0.0.1 this way');
  assert.equal((await from('::ffff:a00:2')).verdict, 429);
});

test('ipv6Prefix 128 (middleware.rate_limit.ipv6_prefix): single addresses, whatever their spelling', async () => {
  const { from } = await capServer({ maxPerClient: 1, ipv6Prefix: 128 });
  assert.equal((await from('2001:db8::1')).verdict, 'open');
  assert.equal((await from('2001:db8::2')).verdict, 'open');
  assert.equal((await from('2001:DB8:0::0001')).verdict, 429);
  assert.equal((await from('fe80::1%eth0')).verdict, 'open');
  assert.equal((await from('fe80::1%eth1')).verdict, 429, 'a zone id names our interface, not another client');
});
