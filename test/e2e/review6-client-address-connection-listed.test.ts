// A trusted proxy's forwarding headers listed in its Connection header were still used: the gateway read the client
// from `X-Forwarded-For` (or `Forwarded`, `X-Real-IP`) although `Connection: close, X-Forwarded-For` made it hop-by-hop,
// and sent the chain on upstream, where RFC 9110 §7.6.1 has a proxy remove it. Removing it is no fix either: it is the
// "hop-by-hop header abuse" that takes the client's address off a request, so that it reads as the proxy's own (an
// internal address). Envoy refuses such a request (400); so does the gateway now, for a trusted proxy's request:
// 400 BAD_REQUEST before any phase, nothing sent upstream, the access log naming the peer alone. An untrusted peer's
// forwarding headers are never read nor passed on, so its Connection header changes nothing; other headers a trusted
// proxy lists there are removed as before.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { connect, type Socket } from 'node:net';
import { startBackend, type EchoBody, type TestBackend } from '../helpers/backends.js';
import { startInProcess, upstreams, type InProcessGateway } from '../helpers/gateway.js';
import { responseUntilClose, type RawResponse } from '../helpers/raw.js';
import { waitFor } from '../helpers/wait.js';

const CLIENT = '203.0.113.9';
/** The trusted proxy: the gateway trusts 127.0.0.1 alone. */
const PROXY = '127.0.0.1';
/** A peer the gateway does not trust. */
const UNTRUSTED = '127.0.0.2';
/** Each forwarding header, naming CLIENT. */
const FORWARDING = `X-Forwarded-For: ${CLIENT}\r\nForwarded: for=${CLIENT}\r\nX-Real-IP: ${CLIENT}\r\nX-Forwarded-Proto: https\r\nX-Forwarded-Host: public.example\r\n`;

let backend: TestBackend;
let gw: InProcessGateway;

before(async () => {
  backend = await startBackend('echo');
  gw = await startInProcess({
    server: { trusted_proxies: [PROXY] },
    load_balancing: { upstreams: upstreams([backend.port]) },
  });
});

after(async () => {
  await gw?.close();
  await backend?.stop();
});

function openFrom(from: string): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const socket = connect({ port: gw.gateway.port, host: '127.0.0.1', localAddress: from }, () => {
      socket.off('error', reject);
      resolve(socket);
    });
    socket.once('error', reject);
  });
}

let sequence = 0;

/**
 * One request from `from` with `headers` (lines ending in CRLF) and Connection: close after them; resolves with the
 * answer and the `client` of its access-log line.
 */
async function send(from: string, headers: string, path = '/echo'): Promise<{ res: RawResponse; client: unknown; hits: number }> {
  const target = `${path}?n=${++sequence}`;
  const hitsBefore = backend.hits;
  const socket = await openFrom(from);
  socket.write(`GET ${target} HTTP/1.1\r\nHost: a.test\r\n${headers}Connection: close\r\n\r\n`);
  const res = await responseUntilClose(socket);
  const line = () => gw.logs.find((l) => l.msg === 'Request Completed' && l.path === path && l.request_id === res.headers['x-request-id']);
  await waitFor(() => line() !== undefined, `the access-log line of ${target}`);
  return { res, client: line()!.client, hits: backend.hits - hitsBefore };
}

/** Asserts the refusal: 400 bad_request, nothing upstream, logged as the peer. */
function assertRefused(result: { res: RawResponse; client: unknown; hits: number }, what: string): void {
  assert.equal(result.res.status, 400, `${what}: status (body ${result.res.body})`);
  const body = JSON.parse(result.res.body) as { code?: string; details?: string };
  assert.equal(body.code, 'bad_request', what);
  assert.equal(body.details, 'Connection names a forwarding header', what);
  assert.equal(result.hits, 0, `${what}: nothing sent upstream`);
  assert.equal(result.client, PROXY, `${what}: logged as the peer, the forwarding headers not believed`);
}

describe("a trusted proxy's forwarding headers listed in its Connection header", () => {
  test('control: a trusted proxy whose Connection header lists none is believed and its chain extended', async () => {
    const result = await send(PROXY, `${FORWARDING}Connection: keep-alive\r\n`);
    assert.equal(result.res.status, 200);
    assert.equal(result.client, CLIENT);
    const echo = JSON.parse(result.res.body) as EchoBody;
    assert.equal(echo.headers['x-forwarded-for'], `${CLIENT}, ${PROXY}`);
  });

  const family: ReadonlyArray<[string, string]> = [
    ['X-Forwarded-For alone', 'X-Forwarded-For'],
    ['X-Forwarded-For after close', 'close, X-Forwarded-For'],
    ['x-forwarded-for in lower case', 'x-forwarded-for'],
    ['X-FORWARDED-FOR in upper case', 'X-FORWARDED-FOR'],
    ['X-Forwarded-For with spaces and tabs around it', 'keep-alive ,\t x-Forwarded-For \t'],
    ['Forwarded', 'Forwarded'],
    ['forwarded among other tokens', 'keep-alive, X-Unrelated, forwarded, X-Other'],
    ['X-Real-IP', 'X-Real-IP'],
    ['x-real-ip among other tokens, mixed case', 'X-Something,x-REAL-ip,close'],
    ['X-Forwarded-Proto', 'X-Forwarded-Proto'],
    ['X-Forwarded-Host', 'close, X-Forwarded-Host'],
  ];
  for (const [what, connection] of family) {
    test(`Connection: ${JSON.stringify(connection)} (${what}): 400, nothing upstream, logged as the peer`, async () => {
      assertRefused(await send(PROXY, `${FORWARDING}Connection: ${connection}\r\n`), what);
    });
  }

  test('listed on a second Connection line: refused the same', async () => {
    assertRefused(await send(PROXY, `${FORWARDING}Connection: keep-alive\r\nConnection: X-Forwarded-For\r\n`), 'a second line');
  });

  test('only X-Real-IP sent and listed (client_address_header auto falls to it): refused', async () => {
    assertRefused(await send(PROXY, `X-Real-IP: ${CLIENT}\r\nConnection: X-Real-IP\r\n`), 'X-Real-IP alone');
  });

  test('a WebSocket upgrade listing X-Forwarded-For beside Upgrade: refused, never tunnelled', async () => {
    const result = await send(
      PROXY,
      `${FORWARDING}Upgrade: websocket\r\nConnection: Upgrade, X-Forwarded-For\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n`,
      '/ws',
    );
    assertRefused(result, 'the upgrade');
  });

  test('another header a trusted proxy lists is removed upstream as before, and the request served', async () => {
    const result = await send(PROXY, `${FORWARDING}X-Secret: 1\r\nConnection: keep-alive, X-Secret\r\n`);
    assert.equal(result.res.status, 200);
    assert.equal(result.client, CLIENT);
    const echo = JSON.parse(result.res.body) as EchoBody;
    assert.equal(echo.headers['x-secret'], undefined);
    assert.equal(echo.headers['x-forwarded-for'], `${CLIENT}, ${PROXY}`);
  });

  test("an untrusted peer listing them: served, its own forwarding headers replaced as always (the gateway's own)", async () => {
    const result = await send(UNTRUSTED, `${FORWARDING}Connection: X-Forwarded-For, Forwarded, X-Real-IP\r\n`);
    assert.equal(result.res.status, 200);
    assert.equal(result.client, UNTRUSTED);
    const echo = JSON.parse(result.res.body) as EchoBody;
    assert.equal(echo.headers['x-forwarded-for'], UNTRUSTED);
    assert.equal(echo.headers.forwarded, undefined);
    assert.equal(echo.headers['x-real-ip'], undefined);
  });
});
