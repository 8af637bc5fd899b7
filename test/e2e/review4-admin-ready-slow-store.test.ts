// GET /ready needs no token, and the README promises that a flood of probes "costs the user store and Redis one query
// at a time per check": probes arriving while a check runs share it. But a check was shared only until its 1 s bound:
// past it the probe answered "down" and the next probe started a new ping while the first was still running. With
// PostgreSQL slow to answer (up to its 5 s statement timeout) a flood of probes kept one more `SELECT 1` per second
// in flight, each holding a connection of the pool the proxy's logins, refreshes and API-key lookups wait on.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { connect, createServer, type Server, type Socket } from 'node:net';
import { startAuthStack, type AuthStack } from '../helpers/auth-gateway.js';
import { isolatedDatabase, type IsolatedDatabase } from '../helpers/postgres-db.js';
import { DATABASE_URL } from '../helpers/services.js';
import { PING_SQL } from '../../src/store/postgres.js';
import { waitFor } from '../helpers/prometheus.js';

/**
 * A TCP relay to PostgreSQL that counts the store's ping (PING_SQL) and, while `stall()` is on, holds the answers on
 * every connection that sends one: a ping that PostgreSQL is slow to answer, while the pool's other connections work.
 */
async function stallingRelay() {
  const target = new URL(DATABASE_URL);
  const PING = Buffer.from(`${PING_SQL}\0`);
  let pings = 0;
  let stalling = false;
  const held: Array<() => void> = [];
  const sockets = new Set<Socket>();
  const server: Server = createServer((client) => {
    const upstream = connect(Number(target.port || 5432), target.hostname);
    let stalled = false;
    for (const s of [client, upstream]) {
      sockets.add(s);
      s.on('close', () => sockets.delete(s));
      s.on('error', () => {
        client.destroy();
        upstream.destroy();
      });
    }
    client.on('data', (chunk: Buffer) => {
      for (let at = chunk.indexOf(PING); at !== -1; at = chunk.indexOf(PING, at + 1)) {
        pings++;
        if (stalling) stalled = true;
      }
      upstream.write(chunk);
    });
    upstream.on('data', (chunk: Buffer) => {
      if (stalled) held.push(() => client.write(chunk));
      else client.write(chunk);
    });
    client.on('close', () => upstream.destroy());
    upstream.on('close', () => client.destroy());
    releases.push(() => (stalled = false));
  });
  const releases: Array<() => void> = [];
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as { port: number }).port,
    get pings() {
      return pings;
    },
    stall() {
      stalling = true;
    },
    release() {
      stalling = false;
      for (const unstall of releases) unstall();
      for (const write of held.splice(0)) write();
    },
    async close() {
      this.release();
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

let relay: Awaited<ReturnType<typeof stallingRelay>>;
let db: IsolatedDatabase;
let stack: AuthStack;

before(async () => {
  relay = await stallingRelay();
  db = await isolatedDatabase();
  const url = new URL(DATABASE_URL);
  url.host = `127.0.0.1:${relay.port}`;
  url.pathname = `/${db.name}`;
  stack = await startAuthStack({ database: { url: url.toString() }, admin: { enabled: true } });
  await waitFor('the gateway to be ready', async () => (await stack.client.request(`${stack.gw.adminUrl}/ready`)).status === 200);
});
after(async () => {
  relay?.release();
  await stack?.close();
  await relay?.close();
  await db?.cleanup('');
});

test('probes flooding /ready while the user store is slow keep one ping in flight, not one more per second', async () => {
  const before = relay.pings;
  relay.stall();
  const answers: number[] = [];
  const started = Date.now();
  try {
    // 3.5 s of probes, 10 at a time, while no answer comes back from PostgreSQL (well within its 5 s statement timeout).
    while (Date.now() - started < 3_500) {
      const round = await Promise.all(Array.from({ length: 10 }, () => stack.client.request(`${stack.gw.adminUrl}/ready`)));
      answers.push(...round.map((r) => r.status));
    }
  } finally {
    relay.release();
  }
  assert.ok(answers.every((status) => status === 503), `every probe is not ready while the store is silent: ${answers.join(',')}`);
  await waitFor('/ready to answer 200 again', async () => (await stack.client.request(`${stack.gw.adminUrl}/ready`)).status === 200, 10_000);
  const sent = relay.pings - before;
  // One ping for the whole stall, plus the one that finds the store answering again (and perhaps one more: the first
  // probe after the release may start while the stalled answer is still on its way).
  assert.ok(sent <= 3, `${sent} pings for ${answers.length} probes over 3.5 s of a silent store`);
});
