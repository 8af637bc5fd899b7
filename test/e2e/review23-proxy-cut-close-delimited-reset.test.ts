// A response the upstream broke off after it began must read as broken to the client. Node answers an HTTP/1.0
// client without chunks, so a body whose upstream gave no Content-Length ends where the connection ends: the
// gateway's orderly close after the upstream failed passed 1,000 bytes of a longer body as the whole answer (curl
// --http1.0 exited 0). Such a connection is now reset. Bodies whose framing already shows the cut (chunked to an
// HTTP/1.1 client, a Content-Length) keep their orderly close, and an upstream's own close-delimited body that ends
// normally is still passed on whole. Over TLS the cut ends the stream without close_notify (see cut-response.ts).
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import net, { type AddressInfo, type Socket } from 'node:net';
import { startInProcess, type InProcessGateway } from '../helpers/gateway.js';
import { createTestCa, pkiDir } from '../helpers/tls.js';
import { waitFor } from '../helpers/wait.js';

const PART = 'x'.repeat(1_000);
const chunk = (text: string): string => `${text.length.toString(16)}\r\n${text}\r\n`;

/** Answers by path; each answer is sent, then the connection ended as the path says. */
const ANSWERS: Record<string, { head: string; body: string; then: 'end' | 'reset' | 'stall' }> = {
  '/chunked-fin': { head: 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n', body: chunk(PART), then: 'end' },
  '/chunked-rst': { head: 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n', body: chunk(PART), then: 'reset' },
  '/chunked-stall': { head: 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n', body: chunk(PART), then: 'stall' },
  '/length-fin': { head: 'HTTP/1.1 200 OK\r\nContent-Length: 5000\r\n\r\n', body: PART, then: 'end' },
  '/whole-close-delimited': { head: 'HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n', body: PART, then: 'end' },
};

let upstream: net.Server;
const upstreamSockets = new Set<Socket>();
let plain: InProcessGateway;
let secure: InProcessGateway;
const pki = pkiDir();

before(async () => {
  upstream = net.createServer((socket) => {
    upstreamSockets.add(socket);
    socket.once('close', () => upstreamSockets.delete(socket));
    socket.on('error', () => undefined);
    let head = '';
    socket.on('data', (data) => {
      head += data.toString('latin1');
      if (!head.includes('\r\n\r\n')) return;
      const path = /^GET ([^\s?]+)/.exec(head)?.[1] ?? '';
      const answer = ANSWERS[path];
      if (answer === undefined) return void socket.destroy();
      socket.write(answer.head + answer.body, () => {
        // A moment for the gateway to relay the part, so the cut comes after the response began.
        setTimeout(() => {
          if (answer.then === 'end') socket.end();
          else if (answer.then === 'reset') socket.resetAndDestroy();
        }, 100);
      });
    });
  });
  await new Promise<void>((resolve) => upstream.listen(0, '127.0.0.1', resolve));
  const port = (upstream.address() as AddressInfo).port;
  const ca = createTestCa('Cut CA', pki.path);
  const cert = ca.issue('a.test', { san: ['DNS:a.test', 'IP:127.0.0.1'] });
  const config = {
    load_balancing: { upstreams: [{ name: 'raw', address: '127.0.0.1', port }] },
    server: { timeouts: { upstream_body: '400ms' } },
  };
  plain = await startInProcess(config);
  secure = await startInProcess({ ...config, server: { ...config.server, tls: { cert_file: cert.certFile, key_file: cert.keyFile } } });
});

after(async () => {
  await plain?.close();
  await secure?.close();
  for (const socket of upstreamSockets) socket.destroy();
  await new Promise<void>((resolve) => upstream?.close(() => resolve()));
  pki.remove();
});

interface Outcome {
  readonly head: string;
  readonly bodyBytes: number;
  /** How the connection ended: reset (ECONNRESET) or an orderly end. */
  readonly ended: 'reset' | 'end';
}

async function fetchRaw(gw: InProcessGateway, path: string, version: '1.0' | '1.1'): Promise<Outcome> {
  const { port } = new URL(gw.url);
  const socket = net.connect(Number(port), '127.0.0.1');
  const chunks: Buffer[] = [];
  socket.on('data', (data: Buffer) => chunks.push(data));
  const ended = await new Promise<'reset' | 'end'>((resolve, reject) => {
    socket.once('connect', () => {
      socket.write(`GET ${path} HTTP/${version}\r\nHost: a.test\r\n${version === '1.1' ? 'Connection: close\r\n' : ''}\r\n`);
    });
    socket.once('error', (err: NodeJS.ErrnoException) => (err.code === 'ECONNRESET' ? resolve('reset') : reject(err)));
    socket.once('close', () => resolve('end'));
  });
  socket.destroy();
  const raw = Buffer.concat(chunks).toString('latin1');
  const split = raw.indexOf('\r\n\r\n');
  assert.ok(split > 0, `no response head: ${JSON.stringify(raw.slice(0, 200))}`);
  return { head: raw.slice(0, split), bodyBytes: raw.length - split - 4, ended };
}

/** An HTTP/1.0 GET through `openssl s_client` (what curl and browsers use): its output and its errors, together. */
async function openssl(gw: InProcessGateway, path: string): Promise<string> {
  const { port } = new URL(gw.url);
  const child = spawn('openssl', ['s_client', '-connect', `127.0.0.1:${port}`, '-servername', 'a.test', '-ign_eof'], { stdio: ['pipe', 'pipe', 'pipe'] });
  let out = '';
  child.stdout.on('data', (data: Buffer) => (out += data.toString('latin1')));
  child.stderr.on('data', (data: Buffer) => (out += data.toString('latin1')));
  child.stdin.write(`GET ${path} HTTP/1.0\r\nHost: a.test\r\n\r\n`);
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const bound = setTimeout(() => child.kill(), 10_000);
  await exited;
  clearTimeout(bound);
  return out;
}

describe('HTTP/1.0 client, close-delimited answer: a cut resets the connection', () => {
  for (const path of ['/chunked-fin', '/chunked-rst', '/chunked-stall']) {
    test(`upstream ${path.slice(1)}: the client reads a reset, not a whole answer`, async () => {
      const outcome = await fetchRaw(plain, path, '1.0');
      assert.match(outcome.head, /^HTTP\/1\.1 200/);
      assert.doesNotMatch(outcome.head, /content-length|transfer-encoding/i, 'close-delimited');
      assert.equal(outcome.ended, 'reset', `${outcome.bodyBytes} body bytes, then an orderly end`);
    });
  }

  test("over TLS the stream ends without close_notify, which OpenSSL reports; a whole answer's close sends one", async () => {
    const cut = await openssl(secure, '/chunked-fin');
    assert.match(cut, /^HTTP\/1\.1 200/m);
    assert.match(cut, /unexpected eof while reading/i, cut.slice(-300));
    const whole = await openssl(secure, '/whole-close-delimited');
    assert.match(whole, /^HTTP\/1\.1 200/m);
    assert.doesNotMatch(whole, /unexpected eof/i, whole.slice(-300));
    assert.match(whole, /^closed$/m, whole.slice(-300)); // s_client's word for a close_notify received
  });

  test('the cut is logged as the upstream failure it was', async () => {
    const before = plain.logs.length;
    await fetchRaw(plain, '/chunked-rst', '1.0');
    const logged = (): Record<string, unknown> | undefined => plain.logs.slice(before).find((l) => l.msg === 'Request Completed');
    await waitFor(() => logged() !== undefined, 'the request logged');
    assert.equal(logged()?.error, 'UPSTREAM_RESET', JSON.stringify(logged()));
  });
});

describe('answers whose framing shows the cut, or that are whole, end in order', () => {
  test('HTTP/1.0 client, Content-Length kept: fewer bytes than it says, then an orderly end', async () => {
    const outcome = await fetchRaw(plain, '/length-fin', '1.0');
    assert.match(outcome.head, /\r\ncontent-length: 5000/i);
    assert.equal(outcome.bodyBytes, PART.length);
    assert.equal(outcome.ended, 'end');
  });

  test('HTTP/1.1 client, chunked: no last chunk, then an orderly end', async () => {
    const outcome = await fetchRaw(plain, '/chunked-fin', '1.1');
    assert.match(outcome.head, /\r\ntransfer-encoding: chunked/i);
    assert.equal(outcome.ended, 'end');
  });

  test("HTTP/1.0 client, the upstream's own close-delimited body ended normally: passed on whole, in order", async () => {
    const outcome = await fetchRaw(plain, '/whole-close-delimited', '1.0');
    assert.match(outcome.head, /^HTTP\/1\.1 200/);
    assert.equal(outcome.bodyBytes, PART.length);
    assert.equal(outcome.ended, 'end');
  });
});
