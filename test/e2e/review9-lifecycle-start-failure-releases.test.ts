// A gateway whose start fails at a later listener leaves nothing open behind it. startGateway (the embedding API,
// src/index.ts) listened on the proxy port, then failed on the admin port (taken by another process) and threw: the
// proxy port kept listening with no gateway object to close it, so the embedding process could never exit (a test
// file running one hung until its timeout in CI when another file held the admin port). Now the error still comes
// out, and the proxy port, the health checks, stores and plugins are closed first.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, connect, type Server } from 'node:net';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { parseConfigText } from '../../src/config/load.js';
import { startGateway } from '../../src/server.js';
import { freePort } from '../helpers/ports.js';

function hold(port: number): Promise<Server> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(port, '127.0.0.1', () => resolve(server));
  });
}

/** 'refused' when nothing listens on the port, 'open' when something accepts. */
function probe(port: number): Promise<'open' | 'refused'> {
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1');
    socket.once('connect', () => {
      socket.destroy();
      resolve('open');
    });
    socket.once('error', () => resolve('refused'));
  });
}

test('the admin port taken: startGateway rejects naming admin.listen_port, and the proxy port is no longer listening', async () => {
  const proxyPort = await freePort();
  const adminPort = await freePort();
  const taken = await hold(adminPort);
  try {
    const sink = new Writable({ write: (_chunk, _enc, done) => done() });
    const config = parseConfigText(
      `server: { listen_host: 127.0.0.1, listen_port: ${proxyPort} }\nadmin: { listen_host: 127.0.0.1, listen_port: ${adminPort} }\n` +
        `load_balancing: { upstreams: [{ name: a, address: 127.0.0.1, port: 9 }] }\n`,
    );
    await assert.rejects(startGateway(config, { logger: pino({ level: 'silent' }, sink), logSink: sink, dataDir: mkdtempSync(join(tmpdir(), 'review9-start-failure-')) }), (err: Error) => {
      assert.match(err.message, /^admin\.listen_port: cannot listen on 127\.0\.0\.1:\d+ \(EADDRINUSE/);
      return true;
    });
    assert.equal(await probe(proxyPort), 'refused', 'the proxy port was left listening');
  } finally {
    taken.close();
  }
});
