// The interval of the ALPN-refusal line (upstream-tls-log.ts), on a clock the test moves: one line per upstream per
// interval, the next one with the count of refusals it stands for; other TLS failures one line each. The e2e side
// (real upstreams, real handshakes) is test/e2e/review7-websocket-h2-alpn-refusal-log.test.ts.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { GatewayError } from '../errors.js';
import { EVENTS } from '../observability/events.js';
import { markConnectError } from '../proxy/upstream-error.js';
import type { RequestContext } from './context.js';
import type { Peer } from './upstream.js';
import { UpstreamTlsLog } from './upstream-tls-log.js';

function capture(): { lines: Array<Record<string, unknown>>; log: UpstreamTlsLog; clock: { now: number } } {
  const lines: Array<Record<string, unknown>> = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, done) {
      for (const line of chunk.toString().split('\n')) if (line) lines.push(JSON.parse(line) as Record<string, unknown>);
      done();
    },
  });
  const clock = { now: 0 };
  return { lines, log: new UpstreamTlsLog(pino({ level: 'info' }, sink), 60_000, () => clock.now), clock };
}

/** The facts the log reads of a request and an upstream (their other members are never read). */
function peer(label: string): Peer {
  return { label, transport: { http2: true }, group: { name: 'grpc' } } as unknown as Peer;
}
const WEBSOCKET = { id: 'r1', upgrade: true, slots: [] } as unknown as RequestContext;
const PLAIN = { id: 'r2', upgrade: false, slots: [] } as unknown as RequestContext;
/** A handshake's failure, as the TLS connector reports it (marked: no request byte was sent). */
const atHandshake = (code: string): Error => {
  const err = Object.assign(new Error('alert'), { code });
  markConnectError(err);
  return err;
};
const refusal = (): GatewayError => new GatewayError('UPSTREAM_TLS', { retryable: true, cause: atHandshake('ERR_SSL_TLSV1_ALERT_NO_APPLICATION_PROTOCOL') });
const badCertificate = (): GatewayError => new GatewayError('UPSTREAM_TLS', { retryable: true, cause: atHandshake('ERR_TLS_CERT_ALTNAME_INVALID') });
/** An alert on an established connection (an upstream's answer to a refused renegotiation): not marked. */
const lateAlert = (): GatewayError =>
  new GatewayError('UPSTREAM_TLS', { retryable: true, cause: Object.assign(new Error('alert'), { code: 'ERR_SSL_SSLV3_ALERT_HANDSHAKE_FAILURE' }) });

test('an ALPN-refused WebSocket: one line per upstream per minute, the next with the refusals it stands for', async () => {
  const { lines, log, clock } = capture();
  const a = peer('10.0.0.1:443');
  const b = peer('10.0.0.2:443');
  for (let i = 0; i < 4; i++) log.failed(WEBSOCKET, a, refusal());
  log.failed(WEBSOCKET, b, refusal());
  clock.now = 59_999;
  log.failed(WEBSOCKET, a, refusal());
  clock.now = 60_000;
  log.failed(WEBSOCKET, a, refusal());
  await new Promise((resolve) => setImmediate(resolve));
  const refusals = lines.filter((l) => l.msg === EVENTS.upstreamNoHttp1ForWebSocket);
  assert.deepEqual(
    refusals.map((l) => [l.upstream, l.suppressed]),
    [['10.0.0.1:443', 0], ['10.0.0.2:443', 0], ['10.0.0.1:443', 4]],
  );
  assert.equal(lines.filter((l) => l.msg === EVENTS.upstreamTlsFailed).length, 0);
});

test('a real TLS failure, or the same alert on a plain request, is Upstream TLS Failed every time', async () => {
  const { lines, log } = capture();
  const a = peer('10.0.0.1:443');
  log.failed(WEBSOCKET, a, badCertificate());
  log.failed(WEBSOCKET, a, badCertificate());
  log.failed(PLAIN, a, refusal());
  log.failed(PLAIN, a, lateAlert());
  await new Promise((resolve) => setImmediate(resolve));
  assert.deepEqual(
    lines.map((l) => [l.msg, l.reason]),
    [
      [EVENTS.upstreamTlsFailed, 'name mismatch'],
      [EVENTS.upstreamTlsFailed, 'name mismatch'],
      [EVENTS.upstreamTlsFailed, 'handshake failed: tlsv1 alert no application protocol'],
      [EVENTS.upstreamTlsFailed, 'alert after the handshake: sslv3 alert handshake failure'],
    ],
  );
});
