// A large answer handed over whole (end() called with all of it) to an HTTP/2 client that reads it steadily, but
// more slowly than the answer's size over server.timeouts.request_body_chunk, is sent whole. The send bound for such
// answers (listeners/h2-guard.ts) cuts a stream whose held bytes (writableLength) have not gone down for that bound;
// a single write of the whole answer holds all of it until its last DATA frame is out, so a reader taking 160 KB/s
// of a 512 KB plugin answer looked stalled for the whole 3 s and was reset with CANCEL after 1 s.
// Raw TLS h2 client: SETTINGS_INITIAL_WINDOW_SIZE 16 KB and a WINDOW_UPDATE of 16 KB (stream and connection) every
// 100 ms, against a spawned gateway whose plugin answers the request itself.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { frame, FRAME, FLAG, PREFACE, rawH2, requestBlock } from '../helpers/h2-frames.js';
import { tlsStackHooks } from '../helpers/tls-stack.js';
import { waitFor } from '../helpers/wait.js';

const stack = tlsStackHooks('H2 Slow Reader Whole Answer CA');
const { ca, cert } = stack;

const SIZED = new URL('../plugins/fixtures/sized-answer.mjs', import.meta.url).pathname;
const ANSWER_BYTES = 512 * 1024;
const WINDOW_STEP = 16 * 1024;

function settingsWindow(size: number): Buffer {
  const payload = Buffer.alloc(6);
  payload.writeUInt16BE(0x4, 0); // SETTINGS_INITIAL_WINDOW_SIZE
  payload.writeUInt32BE(size, 2);
  return frame(FRAME.SETTINGS, 0, 0, payload);
}

function windowUpdate(stream: number, increment: number): Buffer {
  const payload = Buffer.alloc(4);
  payload.writeUInt32BE(increment, 0);
  return frame(FRAME.WINDOW_UPDATE, 0, stream, payload);
}

test('a large answer handed over whole reaches a steady slow HTTP/2 reader whole', { timeout: 60_000 }, async () => {
  const backend = await stack.backend();
  const gw = await stack.gateway({
    server: { tls: { cert_file: cert.certFile, key_file: cert.keyFile }, timeouts: { request_body_chunk: '1s' } },
    services: { api: { upstreams: [{ name: 'api', address: '127.0.0.1', port: backend.port }] } },
    routes: [{ name: 'api', match: { path_prefix: '/' }, service: 'api' }],
    plugins: [{ name: 'sized', module: SIZED }],
    middleware: { plugins: ['sized'] },
  });
  const client = await rawH2(gw.port, ca.ca);
  const reader = setInterval(() => client.send(windowUpdate(1, WINDOW_STEP), windowUpdate(0, WINDOW_STEP)), 100);
  try {
    client.send(
      PREFACE,
      settingsWindow(WINDOW_STEP),
      frame(FRAME.SETTINGS, FLAG.ACK, 0),
      frame(FRAME.HEADERS, FLAG.END_HEADERS | FLAG.END_STREAM, 1, requestBlock('GET', '/big', [['x-answer-bytes', String(ANSWER_BYTES)]])),
    );
    const data = (): number => client.frames().filter((f) => f.type === FRAME.DATA && f.stream === 1).reduce((n, f) => n + f.payload.length, 0);
    const ended = (): boolean => client.frames().some((f) => f.type === FRAME.DATA && f.stream === 1 && (f.flags & FLAG.END_STREAM) !== 0);
    const reset = (): number | undefined => client.frames().find((f) => f.type === FRAME.RST_STREAM && f.stream === 1)?.payload.readUInt32BE(0);
    await waitFor(() => ended() || reset() !== undefined, 'the answer ended or was reset', 30_000);
    assert.equal(reset(), undefined, `not reset (after ${data()} of ${ANSWER_BYTES} bytes)`);
    assert.equal(data(), ANSWER_BYTES, 'the whole answer');
    const completed = (): Record<string, unknown> | undefined => gw.logs.find((l) => l.msg === 'Request Completed' && l.path === '/big');
    await waitFor(() => completed() !== undefined, 'the request logged', 10_000);
    const line = completed();
    assert.equal(line?.status, 200);
    assert.equal(line?.error, undefined);
  } finally {
    clearInterval(reader);
    client.socket.destroy();
  }
});
