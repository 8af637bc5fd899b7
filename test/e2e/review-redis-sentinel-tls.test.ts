// rediss:// sentinel URLs are spoken to over TLS, never in cleartext.
// Was wrong: redis-sentinel.ts took only the host and port (and the credentials) from `redis.sentinel.nodes`, so a
// rediss:// URL, accepted by the config like `redis.url`'s, was connected to in cleartext: the password in the URL
// went over the wire as plain text (HELLO ... AUTH), to the sentinels and to the master they named, where the same
// URL in `redis.url` or `redis.cluster` means TLS.
// Right now: any rediss:// sentinel URL turns TLS on for the sentinels and the data nodes alike (never a downgrade).
// Shown through a recording TCP link in front of a real sentinel (plain text, so a TLS hello gets no further).
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { connect, createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { createRedisKvStore, type RedisKvStore } from '../../src/kv/redis.js';
import { uniquePrefix } from '../kv/redis-helpers.js';
import { requireRedisServer, ThrowawaySentinel, until } from '../kv/redis-processes.js';

const skip = await requireRedisServer();
const SECRET = 'sentinel-tls-secret-7f3a';

/** A TCP link to `port` that keeps every byte the client sent. */
async function recordingLink(port: number): Promise<{ port: number; sent: () => Buffer; close: () => Promise<void> }> {
  const chunks: Buffer[] = [];
  const sockets = new Set<Socket>();
  const server: Server = createServer((client) => {
    const upstream = connect(port, '127.0.0.1');
    for (const s of [client, upstream]) {
      sockets.add(s);
      s.on('error', () => undefined);
      s.once('close', () => {
        sockets.delete(s);
        client.destroy();
        upstream.destroy();
      });
    }
    client.on('data', (chunk: Buffer) => chunks.push(chunk));
    client.pipe(upstream);
    upstream.pipe(client);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as AddressInfo).port,
    sent: () => Buffer.concat(chunks),
    close: async () => {
      for (const s of sockets) s.destroy();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}

describe('review: rediss:// sentinel URLs', { skip }, () => {
  let setup: ThrowawaySentinel;
  let link: Awaited<ReturnType<typeof recordingLink>>;
  let store: RedisKvStore | undefined;

  before(async () => {
    setup = await ThrowawaySentinel.start();
    link = await recordingLink(setup.sentinels[0]!.port);
  });
  after(async () => {
    await store?.close();
    await link?.close();
    await setup?.stop();
  });

  test('the first bytes to a rediss:// sentinel are a TLS handshake, and the password never crosses in clear', async () => {
    store = createRedisKvStore({
      sentinel: { name: setup.name, nodes: [`rediss://:${SECRET}@127.0.0.1:${link.port}`] },
      keyPrefix: uniquePrefix('review-sentinel-tls'),
      commandTimeoutMs: 500,
      connectTimeoutMs: 1_000,
    });
    await until('the store to send something to the sentinel', async () => link.sent().length > 0, 10_000);
    // A few reconnect attempts' worth of bytes.
    await new Promise((r) => setTimeout(r, 1_500));
    const sent = link.sent();
    assert.equal(sent[0], 0x16, `the first byte is a TLS handshake record, not cleartext RESP (${JSON.stringify(sent.subarray(0, 24).toString('latin1'))})`);
    assert.ok(!sent.includes(Buffer.from(SECRET)), 'the password went over the wire in clear text');
    await assert.rejects(store.ping(), 'a plain-text sentinel behind a rediss:// URL is never used');
  });
});
