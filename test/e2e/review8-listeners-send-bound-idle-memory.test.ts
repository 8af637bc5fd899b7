// The HTTP/1.x send bound (listeners/h1-send-bound.ts) notes, per connection, the answer its sweep last judged. An
// answer the sweep saw still being taken (end() called, bytes still queued) stayed noted after it was all sent and the
// connection went idle: its response, its request's context and a plugin's whole answer (ctx.respond's body) stayed
// reachable for as long as the client kept the keep-alive connection open. Four idle clients that had each read a
// 32 MB plugin answer a little slowly held some 130 MB of the gateway's memory; 10,000 idle keep-alive clients could
// each hold their last answer. Now an idle connection's entry forgets it, and the memory is freed while they stay open.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { connect, type Socket } from 'node:net';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { startInProcess, type InProcessGateway } from '../helpers/gateway.js';
import { startBackend, type TestBackend } from '../helpers/backends.js';
import { sleep, waitFor } from '../helpers/wait.js';

setFlagsFromString('--expose_gc');
/** A full collection, from a context made after the flag was set (the main one never gets `gc`). */
const collect = runInNewContext('gc') as () => void;

const SIZED = new URL('../plugins/fixtures/sized-answer.mjs', import.meta.url).pathname;
const ANSWER_BYTES = 32 * 1024 * 1024;
const CLIENTS = 4;
/** The send bound: its sweep runs every second, and no client below is silent for anywhere near it. */
const SEND_BOUND = '4s';

/** Bytes of ArrayBuffers (node Buffers and the plugin's Uint8Array answers) this process holds after a full collection. */
function arrayBufferBytes(): number {
  collect();
  collect();
  return process.memoryUsage().arrayBuffers;
}

describe('an idle keep-alive connection after an answer the send bound watched', { timeout: 120_000 }, () => {
  let backend: TestBackend;
  let gw: InProcessGateway;
  const clients: Socket[] = [];

  before(async () => {
    backend = await startBackend('api');
    gw = await startInProcess({
      server: { timeouts: { request_body_chunk: SEND_BOUND, idle: '120s' } },
      services: { api: { upstreams: [{ name: 'api', address: '127.0.0.1', port: backend.port }] } },
      routes: [{ name: 'api', match: { path_prefix: '/' }, service: 'api' }],
      plugins: [{ name: 'sized', module: SIZED }],
      middleware: { plugins: ['sized'] },
    });
  });
  after(async () => {
    for (const client of clients) client.destroy();
    await gw?.close();
    await backend?.stop();
  });

  test('holds none of its answers while the clients stay connected', async () => {
    const base = arrayBufferBytes();
    for (let i = 0; i < CLIENTS; i++) {
      const client = connect(gw.gateway.port, '127.0.0.1');
      clients.push(client);
      client.on('error', () => undefined);
      client.pause();
      let got = 0;
      client.on('data', (chunk: Buffer) => (got += chunk.length));
      client.write(`GET /idle-${i} HTTP/1.1\r\nHost: a.test\r\nX-Answer-Bytes: ${ANSWER_BYTES}\r\n\r\n`);
      // Long enough for a sweep to see the answer handed over and not yet taken, well inside the bound.
      await sleep(2_500);
      client.resume();
      await waitFor(() => got >= ANSWER_BYTES || client.destroyed, 'the whole answer read', 30_000);
      assert.ok(!client.destroyed, 'a client that paused within the bound is not cut');
    }
    await waitFor(() => gw.logs.filter((l) => l.msg === 'Request Completed').length >= CLIENTS, 'every answer logged', 10_000);
    // Every client is connected and idle; within a few sweeps the gateway holds none of their answers.
    let held = Infinity;
    const deadline = Date.now() + 15_000;
    while (Date.now() < deadline) {
      held = arrayBufferBytes() - base;
      if (held < ANSWER_BYTES) break;
      await sleep(500);
    }
    assert.ok(clients.every((c) => !c.destroyed), 'the keep-alive connections are still open');
    assert.ok(held < ANSWER_BYTES, `idle connections hold ${Math.round(held / 1e6)} MB (${CLIENTS} answers of ${ANSWER_BYTES / 1e6} MB)`);
  });
});
