// The HTTP→HTTPS redirect listener checks the Host as the proxy listener does (pipeline/host-check.ts) and refuses
// what it refuses with the same 400: it used to redirect a request with two Host lines to the first of them, which
// the https listener then refused (another reader could have taken the second), and to answer a missing Host with
// node's bare 400.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { connect as tlsConnect } from 'node:tls';
import { openSocket, parseHead } from '../helpers/raw.js';
import { redirectGatewayHooks } from '../helpers/redirect-gateway.js';

interface Answer {
  readonly status: number;
  readonly headers: Record<string, string>;
  readonly body: string;
  /** The connection was still open 300 ms after the answer (keep-alive). */
  readonly open: boolean;
}

/** Writes `request` on `socket` and reads one answer (content-length framed; none to HEAD), then closes the socket. */
function exchange(socket: import('node:net').Socket, request: string): Promise<Answer> {
  return new Promise((resolve, reject) => {
    let data = '';
    let closed = false;
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`no answer: ${JSON.stringify(data)}`));
    }, 5_000);
    let done = false;
    const finish = (): void => {
      done = true;
      const split = data.indexOf('\r\n\r\n');
      const { status, headers } = parseHead(data.slice(0, split));
      const body = data.slice(split + 4);
      // Wait a little: a connection the server closes after the answer is seen as closed.
      setTimeout(() => {
        clearTimeout(timer);
        resolve({ status, headers, body, open: !closed });
        socket.destroy();
      }, 300);
    };
    socket.setEncoding('latin1');
    socket.on('data', (chunk: string) => {
      data += chunk;
      if (done) return;
      const split = data.indexOf('\r\n\r\n');
      if (split === -1) return;
      const length = request.startsWith('HEAD ') ? 0 : Number(parseHead(data.slice(0, split)).headers['content-length'] ?? 0);
      if (data.length - split - 4 >= length) finish();
    });
    socket.once('close', () => (closed = true));
    socket.once('error', reject);
    socket.write(request);
  });
}

describe('redirect listener: the Host as the proxy listener checks it', () => {
  const r = redirectGatewayHooks('Redirect CA');

  const toRedirect = async (request: string) => exchange(await openSocket(r.redirectPort), request);
  const toProxy = (request: string) =>
    new Promise<Answer>((resolve, reject) => {
      const socket = tlsConnect({ host: '127.0.0.1', port: r.gw.gateway.port, ca: r.ca.ca, servername: 'a.test', ALPNProtocols: ['http/1.1'] });
      socket.once('secureConnect', () => exchange(socket, request).then(resolve, reject));
      socket.once('error', reject);
    });

  /** Both listeners answer 400 bad_request with the same details, JSON and gateway headers; no Location. */
  async function assertRefusedAlike(request: string, details: string): Promise<void> {
    const [redirect, proxy] = [await toRedirect(request), await toProxy(request)];
    for (const [name, answer] of [['redirect', redirect], ['proxy', proxy]] as const) {
      assert.equal(answer.status, 400, `${name}: ${JSON.stringify(request)}`);
      assert.equal(answer.headers.location, undefined, name);
      assert.equal(answer.headers['content-type'], 'application/json; charset=utf-8', name);
      assert.equal(answer.headers['x-proxy-by'], 'Portcullis', name);
      const body = JSON.parse(answer.body) as Record<string, unknown>;
      assert.equal(body.code, 'bad_request', name);
      assert.equal(body.error, 'Bad Request', name);
      assert.equal(body.details, details, `${name}: ${JSON.stringify(request)}`);
    }
    assert.equal(redirect.open, proxy.open, 'the connection is kept or closed alike');
  }

  test('two Host lines: 400, whichever comes first, never a redirect to the first', async () => {
    await assertRefusedAlike('GET /x HTTP/1.1\r\nHost: a.test\r\nHost: evil.test\r\n\r\n', 'invalid Host: more than one Host header');
    await assertRefusedAlike('GET /x HTTP/1.1\r\nhost: evil.test\r\nHOST: a.test\r\n\r\n', 'invalid Host: more than one Host header');
  });

  test('an authority the proxy refuses is refused with its reason', async () => {
    await assertRefusedAlike('GET /x HTTP/1.1\r\nHost: x@a.test\r\n\r\n', 'invalid Host: user information (@) in the host');
    await assertRefusedAlike('GET /x HTTP/1.1\r\nHost: 127.1\r\n\r\n', 'invalid Host: numeric host that is not a dotted-quad IPv4 address');
    await assertRefusedAlike('GET /x HTTP/1.1\r\nHost: a.test:99999\r\n\r\n', 'invalid Host: port out of range');
  });

  test('HTTP/1.1 without Host: the gateway\'s 400, not node\'s bare one', async () => {
    await assertRefusedAlike('GET /x HTTP/1.1\r\n\r\n', 'invalid Host: no Host header (HTTP/1.1 requires one)');
  });

  test('HEAD with two Host lines: 400 without a body', async () => {
    const answer = await toRedirect('HEAD /x HTTP/1.1\r\nHost: a.test\r\nHost: evil.test\r\n\r\n');
    assert.equal(answer.status, 400);
    assert.equal(answer.body, '');
  });

  test('HTTP/1.0 without Host: nowhere to redirect to, a 400 of the same shape', async () => {
    const answer = await toRedirect('GET /x HTTP/1.0\r\n\r\n');
    assert.equal(answer.status, 400);
    assert.deepEqual(JSON.parse(answer.body), { error: 'Bad Request', code: 'bad_request', details: 'no Host to redirect to' });
  });

  test('one acceptable Host is still redirected, on a connection kept open', async () => {
    const answer = await toRedirect('POST /a/b?c=1 HTTP/1.1\r\nHost: A.test:8080\r\nContent-Length: 2\r\n\r\nhi');
    assert.equal(answer.status, 308);
    assert.equal(answer.headers.location, `https://a.test:${r.gw.gateway.port}/a/b?c=1`);
    assert.ok(answer.open);
  });
});
