// GET /ready is open to anyone who reaches the admin port (probes carry no token), and each request ran every
// readiness check itself: a store query and a Redis PING per request. A flood of unauthenticated /ready requests
// became as many commands on the connections the proxy listener's rate limiter, revocation checks and logins use,
// and while Redis was slow they piled up in its pending-command queue (bounded: past it, the proxy's own commands
// fail at once). Concurrent /ready requests now share the check that is already running.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Socket } from 'node:net';
import { startBackend } from '../helpers/backends.js';
import { startInProcess, upstreams } from '../helpers/gateway.js';
import { createClient } from '../helpers/http.js';
import { waitFor } from '../helpers/prometheus.js';

/**
 * A stand-in Redis speaking just enough RESP: +OK to the client's connection set-up, and PINGs and the readiness
 * probe's script (EVALSHA: /ready asks for a write, not a PING, since a Redis refusing writes answers PING) counted and
 * held unanswered (a stalled Redis) until `release()`.
 */
async function stalledRedis() {
  let pings = 0;
  const held: Array<{ socket: Socket; reply: string }> = [];
  const sockets = new Set<Socket>();
  const server = createServer((socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => undefined);
    let buffer = '';
    socket.on('data', (chunk) => {
      buffer += chunk.toString('latin1');
      for (;;) {
        const command = readCommand(buffer);
        if (command === undefined) return;
        buffer = buffer.slice(command.length);
        if (command.name === 'PING' || command.name === 'EVALSHA') {
          pings++;
          held.push({ socket, reply: command.name === 'PING' ? '+PONG\r\n' : ':1\r\n' });
        } else {
          socket.write('+OK\r\n');
        }
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as { port: number }).port;
  return {
    url: `redis://127.0.0.1:${port}`,
    get pings() {
      return pings;
    },
    release() {
      for (const { socket, reply } of held.splice(0)) if (!socket.destroyed) socket.write(reply);
    },
    async close() {
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/** One RESP array command at the start of `text`: its upper-case name and length in characters, or undefined. */
function readCommand(text: string): { name: string; length: number } | undefined {
  const header = /^\*(\d+)\r\n/.exec(text);
  if (header === null) return undefined;
  let at = header[0].length;
  const parts: string[] = [];
  for (let i = 0; i < Number(header[1]); i++) {
    const bulk = /^\$(\d+)\r\n/.exec(text.slice(at));
    if (bulk === null) return undefined;
    const start = at + bulk[0].length;
    const end = start + Number(bulk[1]);
    if (text.length < end + 2) return undefined;
    parts.push(text.slice(start, end));
    at = end + 2;
  }
  return { name: (parts[0] ?? '').toUpperCase(), length: at };
}

test('a flood of unauthenticated /ready requests sends Redis one probe at a time, not one per request', async () => {
  const backend = await startBackend('one');
  after(() => backend.stop());
  const redis = await stalledRedis();
  after(() => redis.close());
  const gw = await startInProcess({ load_balancing: { upstreams: upstreams([backend.port]) }, redis: { url: redis.url } });
  after(async () => {
    redis.release();
    await gw.close();
  });
  const client = createClient({ connections: 64 });
  after(() => client.close());

  // The client connects in the background: wait until a probe gets through (then it is connected), then answer it.
  await waitFor('the gateway to reach the stand-in Redis', async () => {
    const probe = client.request(`${gw.adminUrl}/ready`);
    await new Promise((resolve) => setTimeout(resolve, 50));
    redis.release();
    return (await probe).status === 200;
  }, 15_000);
  const before = redis.pings;

  // 40 probes at once while Redis does not answer: each is 503 after the check's 1 s, as before.
  const answers = await Promise.all(Array.from({ length: 40 }, () => client.request(`${gw.adminUrl}/ready`)));
  for (const res of answers) {
    assert.equal(res.status, 503);
    assert.equal(res.json<{ checks: Record<string, string> }>().checks.redis, 'down');
  }
  const sent = redis.pings - before;
  // Probes arriving while one check is outstanding share it. A loaded machine may spread the 40 over a few of the
  // check's 1 s windows; one PING per request (40) is what the flood sent before.
  assert.ok(sent <= 5, `${sent} probes for 40 concurrent /ready requests`);

  // Once Redis answers, a later probe runs the check afresh and is ready.
  redis.release();
  await waitFor('/ready to answer 200 again', async () => {
    const probe = client.request(`${gw.adminUrl}/ready`);
    await new Promise((resolve) => setTimeout(resolve, 50));
    redis.release();
    return (await probe).status === 200;
  }, 10_000);
});
