// A client that pipelines requests and reads none of the answers, on the two listeners whose answers the gateway
// makes itself: the redirect listener (308s) and the admin port (the dashboard's files). Each answer is small, but
// enough of them fill the socket buffers, and node then holds the answer in progress and waits: no header, request
// or keep-alive bound runs while an answer is still being written, so the connection (and its client's connection
// slot) was held for as long as the client kept it (seen: 20 s against a 1 s idle bound on the redirect port, 40 s
// against the admin port's 5 s). Now an answer whose bytes the kernel has not taken for the send bound is cut with
// its connection: server.timeouts.request_body_chunk on the redirect port, as on the proxy port; 10 s on the admin
// port, whose bounds are fixed.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { Socket } from 'node:net';
import { startInProcess, type InProcessGateway } from '../helpers/gateway.js';
import { openSocket } from '../helpers/raw.js';
import { aTestCertificateHooks } from '../helpers/tls.js';
import { sleep, waitFor } from '../helpers/wait.js';
import { readFileSync } from 'node:fs';

/** The admin port's send bound (admin/server.ts). */
const ADMIN_SEND_MS = 10_000;
const REDIRECT_SEND_MS = 1_000;

/**
 * Bytes the kernel holds unsent on the gateway's side of the connection from `clientPort` to `serverPort` (Linux
 * /proc/net/tcp: tx_queue), or undefined when the connection is not listed (closed).
 */
function serverTxQueue(serverPort: number, clientPort: number): number | undefined {
  const hex = (port: number): string => `:${port.toString(16).toUpperCase().padStart(4, '0')}`;
  for (const line of readFileSync('/proc/net/tcp', 'utf8').split('\n').slice(1)) {
    const fields = line.trim().split(/\s+/);
    if (fields.length > 4 && fields[1]!.endsWith(hex(serverPort)) && fields[2]!.endsWith(hex(clientPort))) {
      return Number.parseInt(fields[4]!.split(':')[0]!, 16);
    }
  }
  return undefined;
}

/**
 * The bytes of one answer to `request`: its head and the Content-Length bytes of body it announces. (Read until the
 * listener's keep-alive bound closed the connection, it cost 5 s on the admin port, 1 s on the redirect port.)
 */
async function answerBytes(port: number, request: string): Promise<number> {
  const socket = await openSocket(port);
  let got = Buffer.alloc(0);
  let whole: number | undefined;
  socket.on('data', (chunk: Buffer) => {
    got = Buffer.concat([got, chunk]);
    const end = got.indexOf('\r\n\r\n');
    const length = end < 0 ? null : /\r\ncontent-length: *(\d+)\r\n/i.exec(got.subarray(0, end + 2).toString('latin1'));
    if (length !== null && got.length >= end + 4 + Number(length[1])) whole = got.length;
  });
  socket.write(request);
  try {
    await waitFor(() => whole !== undefined || socket.destroyed, 'one whole answer', 15_000);
  } finally {
    socket.destroy();
  }
  assert.ok(whole !== undefined, `no whole answer with a Content-Length: ${JSON.stringify(got.toString('latin1').slice(0, 200))}`);
  return whole;
}

/** What pipelineUnread saw: the requests written, and the bytes read once the client read on. */
interface Unread {
  readonly requests: number;
  readonly read: number;
  readonly closed: boolean;
}

/**
 * Pipelines `request` five at a time, reading nothing, until the gateway's send queue for the connection stops
 * growing (the socket buffers both ways are full: the gateway now holds the answer in progress), so that no more than
 * a few requests wait behind it (more than 128 waiting would close the connection: pipelining.ts). Then reads nothing
 * for `holdMs`, then reads on for up to 15 s: what it got, and whether the connection ended.
 */
async function pipelineUnread(port: number, request: string, holdMs: number): Promise<Unread> {
  const socket: Socket = await openSocket(port);
  socket.pause();
  socket.on('error', () => undefined); // a reset of the cut connection ends the read like a close
  let closed = false;
  socket.once('close', () => (closed = true));
  try {
    let requests = 0;
    let queued = 0;
    let still = 0;
    while (still < 3 && requests < 5_000 && !closed) {
      socket.write(request.repeat(5));
      requests += 5;
      await sleep(50);
      const now = serverTxQueue(port, socket.localPort!) ?? 0;
      still = now > 0 && now <= queued ? still + 1 : 0;
      queued = Math.max(queued, now);
    }
    await sleep(holdMs);
    let read = 0;
    socket.on('data', (chunk: Buffer) => (read += chunk.length));
    socket.resume();
    const deadline = performance.now() + 15_000;
    while (!closed && performance.now() < deadline) await sleep(50);
    return { requests, read, closed };
  } finally {
    socket.destroy();
  }
}

// The two tests run at once, each on its own gateway: one after another they took 13 s and 30 s.
describe('pipelined answers a client never reads', { timeout: 180_000, concurrency: true }, () => {
  const certificate = aTestCertificateHooks('Pipelined Unread CA');

  async function gateway(): Promise<InProcessGateway> {
    const gw = await startInProcess({
      server: {
        tls: { cert_file: certificate.certFile, key_file: certificate.keyFile },
        http_redirect: { listen_port: 0 },
        timeouts: { header: '1s', request: '2s', idle: '1s', request_body_chunk: `${REDIRECT_SEND_MS}ms` },
      },
      load_balancing: { upstreams: [{ name: 'nowhere', address: '127.0.0.1', port: 9 }] },
    });
    certificate.gateways.push(gw);
    return gw;
  }

  test('redirect port: the connection is cut mid-answers once the kernel takes nothing for request_body_chunk', async () => {
    const gw = await gateway();
    const redirectPort = gw.logs.find((l) => l.msg === 'Gateway Started')!.redirect_port as number;
    // Some 4 KB per 308 (its Location repeats the path): several hundred fill the socket buffers. Not more: the heads
    // waiting behind the stalled answer are bounded to 128 KiB (pipelining.ts), which would close the connection
    // before the send bound this test is about.
    const path = `/${'a'.repeat(4_000)}`;
    const request = `GET ${path} HTTP/1.1\r\nHost: a.test\r\n\r\n`;
    const each = await answerBytes(redirectPort, request);
    const seen = await pipelineUnread(redirectPort, request, 6 * REDIRECT_SEND_MS);
    assert.ok(seen.read < seen.requests * each, `cut before all ${seen.requests} answers of ${each} bytes (read ${seen.read})`);
    assert.equal(seen.closed, true, 'the connection ended');
  });

  test('admin port: the connection is cut mid-answers once the kernel takes nothing for 10 s', async () => {
    const gw = await gateway();
    const request = 'GET /dashboard.js HTTP/1.1\r\nHost: localhost\r\n\r\n';
    const each = await answerBytes(gw.gateway.adminPort!, request);
    const seen = await pipelineUnread(gw.gateway.adminPort!, request, 2 * ADMIN_SEND_MS);
    assert.ok(seen.read < seen.requests * each, `cut before all ${seen.requests} answers of ${each} bytes (read ${seen.read})`);
    assert.equal(seen.closed, true, 'the connection ended');
  });
});
