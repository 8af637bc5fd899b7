// Tracing through a real OTLP/HTTP receiver: one trace per request whose spans fit together with the traceparent
// the backend got, incoming trace context continued (or not, when untrusted), sampling 0 exports nothing.
import { test, after, describe } from 'node:test';
import assert from 'node:assert/strict';
import { startBackend, type EchoBody } from '../helpers/backends.js';
import { startInProcess, upstreams, type ConfigInput, type InProcessGateway } from '../helpers/gateway.js';
import { createClient } from '../helpers/http.js';
import { startOtlpReceiver, SPAN_KIND, type OtlpReceiver, type ReceivedSpan } from '../helpers/otlp-receiver.js';
import { waitFor } from '../helpers/wait.js';
import { FAST_ARGON2, TEST_SECRET, uniqueEmail, type SessionBody } from '../helpers/auth-gateway.js';

const TRACEPARENT = /^00-([0-9a-f]{32})-([0-9a-f]{16})-0([01])$/;
const INCOMING_TRACE = '4bf92f3577b34da6a3ce929d0e0e4736';
const INCOMING_SPAN = '00f067aa0ba902b7';

interface Stack {
  gw: InProcessGateway;
  receiver: OtlpReceiver;
  client: ReturnType<typeof createClient>;
  backendPort: number;
}

/** Receiver + echo backend + gateway with `tracing` (endpoint filled in) and `extra` config. */
async function startStack(tracing: ConfigInput, extra: ConfigInput = {}): Promise<Stack> {
  const receiver = await startOtlpReceiver();
  const backend = await startBackend('echo');
  const gw = await startInProcess({
    load_balancing: { upstreams: upstreams([backend.port]) },
    admin: { enabled: true },
    ...extra,
    tracing: { otlp_endpoint: receiver.url, ...tracing },
  });
  const client = createClient();
  after(async () => {
    await client.close();
    await gw.close();
    await backend.stop();
    await receiver.close();
  });
  return { gw, receiver, client, backendPort: backend.port };
}

function spansOf(receiver: OtlpReceiver, traceId: string): ReceivedSpan[] {
  return receiver.spans.filter((s) => s.traceId === traceId);
}

/** Waits until the receiver holds a span named `name` in trace `traceId`, and returns the trace. */
async function traceWith(receiver: OtlpReceiver, traceId: string, names: readonly string[]): Promise<ReceivedSpan[]> {
  await waitFor(
    () => names.every((n) => spansOf(receiver, traceId).some((s) => s.name === n)),
    `spans ${names.join(', ')} of trace ${traceId}`,
    10_000,
    50,
  );
  return spansOf(receiver, traceId);
}

describe('tracing on, auth on', () => {
  test('one trace per request: server span, token check, store call, attempt span parenting the backend', async () => {
    const stack = await startStack(
      { response_header: 'X-Trace-Id' },
      {
        jwt: { secret: TEST_SECRET },
        middleware: { auth: { enabled: true, argon2: FAST_ARGON2 } },
      },
    );
    const { client, gw, receiver } = stack;
    const email = uniqueEmail('trace');
    const password = 'Trace-Pass-123';
    const reg = await client.postJson(`${gw.url}/auth/register`, { email, password });
    assert.equal(reg.status, 201);
    const session = reg.json<SessionBody>();

    // Register: hashing and the user store, under the request's server span.
    const regTrace = String(reg.headers['x-trace-id']);
    assert.match(regTrace, /^[0-9a-f]{32}$/);
    const regSpans = await traceWith(receiver, regTrace, ['POST', 'auth.hash_password', 'user_store.registerUser']);
    const regServer = regSpans.find((s) => s.kind === SPAN_KIND.server)!;
    for (const name of ['auth.hash_password', 'user_store.registerUser']) {
      assert.equal(regSpans.find((s) => s.name === name)!.parentSpanId, regServer.spanId, `${name} is a child of the request`);
    }
    assert.equal(regSpans.find((s) => s.name === 'user_store.registerUser')!.attrs['db.system.name'], 'sqlite');

    // A proxied request with the new token: verified (not cached yet), checked for revocation, forwarded once.
    const res = await client.request(`${gw.url}/orders/42?secret=q`, { headers: { authorization: `Bearer ${session.access_token}` } });
    assert.equal(res.status, 200);
    const traceId = String(res.headers['x-trace-id']);
    const seen = res.json<EchoBody>().headers;
    const match = TRACEPARENT.exec(String(seen.traceparent));
    assert.ok(match, `the backend got a traceparent: ${String(seen.traceparent)}`);
    assert.equal(match[1], traceId, 'the backend continues the same trace');
    assert.equal(match[3], '1', 'sampled');

    const spans = await traceWith(receiver, traceId, ['GET', 'auth.verify_token', 'kv.isRevoked']);
    await waitFor(() => spansOf(receiver, traceId).some((s) => s.kind === SPAN_KIND.client && s.name === 'GET'), 'the attempt span', 10_000);
    const all = spansOf(receiver, traceId);
    const server = all.find((s) => s.kind === SPAN_KIND.server)!;
    const attempt = all.find((s) => s.kind === SPAN_KIND.client && s.name === 'GET')!;
    assert.equal(server.parentSpanId ?? '', '', 'a new trace: the server span is the root');
    assert.equal(attempt.parentSpanId, server.spanId, 'the attempt is a child of the server span');
    assert.equal(match[2], attempt.spanId, "the backend's parent is the gateway's attempt span");
    assert.equal(spans.find((s) => s.name === 'auth.verify_token')!.parentSpanId, server.spanId);
    assert.equal(spans.find((s) => s.name === 'kv.isRevoked')!.attrs['db.system.name'], 'memory');

    // HTTP semantic-convention attributes; the user id, never the token or the query string.
    assert.equal(server.service, 'portcullis');
    assert.equal(server.attrs['http.request.method'], 'GET');
    assert.equal(server.attrs['url.path'], '/orders/42');
    assert.equal(server.attrs['http.response.status_code'], 200);
    assert.equal(server.attrs['client.address'], '127.0.0.1');
    assert.equal(server.attrs['user.id'], session.user_id);
    assert.equal(server.attrs['portcullis.route'], 'proxy');
    assert.equal(server.attrs['portcullis.upstream'], 'b1');
    assert.equal(server.attrs['portcullis.request_id'], res.headers['x-request-id']);
    assert.equal(attempt.attrs['portcullis.upstream'], 'b1');
    assert.equal(attempt.attrs['portcullis.attempt'], 1);
    assert.equal(attempt.attrs['server.address'], '127.0.0.1');
    assert.equal(attempt.attrs['server.port'], stack.backendPort);
    assert.equal(attempt.attrs['http.response.status_code'], 200);
    const exported = JSON.stringify(receiver.spans);
    assert.ok(!exported.includes(session.access_token), 'no token in any span');
    assert.ok(!exported.includes(password), 'no password in any span');
    assert.ok(!exported.includes('secret=q'), 'no query string in any span');

    // trace_id in every log line of the request.
    const lines = gw.logs.filter((l) => l.request_id === res.headers['x-request-id']);
    assert.deepEqual(lines.map((l) => l.msg).sort(), ['Request Completed', 'Request Start', 'Select Upstream']);
    for (const line of lines) assert.equal(line.trace_id, traceId, String(line.msg));

    // The same token again: verified from the cache, so no verification span this time.
    const again = await client.request(`${gw.url}/orders/43`, { headers: { authorization: `Bearer ${session.access_token}` } });
    const againTrace = String(again.headers['x-trace-id']);
    await traceWith(receiver, againTrace, ['GET', 'kv.isRevoked']);
    assert.ok(!spansOf(receiver, againTrace).some((s) => s.name === 'auth.verify_token'));

    // Login: password verification and the store lookup.
    const login = await client.postJson(`${gw.url}/auth/login`, { email, password });
    assert.equal(login.status, 200);
    await traceWith(receiver, String(login.headers['x-trace-id']), ['auth.verify_password', 'user_store.findUserByEmail']);
  });
});

describe('incoming trace context', () => {
  test('a valid incoming traceparent is continued, its tracestate passed on, the client\'s header replaced', async () => {
    const { client, gw, receiver } = await startStack({});
    const res = await client.request(`${gw.url}/continued`, {
      headers: { traceparent: `00-${INCOMING_TRACE}-${INCOMING_SPAN}-01`, tracestate: 'vendor=abc' },
    });
    assert.equal(res.status, 200);
    const seen = res.json<EchoBody>().headers;
    const match = TRACEPARENT.exec(String(seen.traceparent))!;
    assert.equal(match[1], INCOMING_TRACE);
    assert.notEqual(match[2], INCOMING_SPAN, "the backend's parent is the gateway's span, not the client's");
    assert.equal(seen.tracestate, 'vendor=abc');
    const spans = await traceWith(receiver, INCOMING_TRACE, ['GET']);
    await waitFor(() => spansOf(receiver, INCOMING_TRACE).length >= 2, 'both spans', 10_000);
    const server = spans.find((s) => s.kind === SPAN_KIND.server)!;
    assert.equal(server.parentSpanId, INCOMING_SPAN);
    assert.equal(spansOf(receiver, INCOMING_TRACE).find((s) => s.kind === SPAN_KIND.client)!.spanId, match[2]);
    assert.ok(!('x-trace-id' in res.headers), 'no trace id header unless response_header names one');
  });

  test('a long client path is cut to 1,024 characters in the spans (a client cannot make every span 16 KB)', async () => {
    const { client, gw, receiver } = await startStack({});
    const long = `/${'a'.repeat(6000)}`;
    const res = await client.request(`${gw.url}${long}`, { headers: { traceparent: `00-${INCOMING_TRACE.replace(/^4/, '5')}-${INCOMING_SPAN}-01` } });
    assert.equal(res.status, 200);
    const traceId = INCOMING_TRACE.replace(/^4/, '5');
    await waitFor(() => spansOf(receiver, traceId).length >= 2, 'both spans', 10_000);
    for (const span of spansOf(receiver, traceId)) {
      const path = span.attrs['url.path'];
      if (path === undefined) continue;
      assert.equal(String(path).length, 1024, `${span.name}: url.path of ${String(path).length} characters`);
      assert.equal(path, long.slice(0, 1024));
    }
  });

  // The propagator drops what it cannot keep of a tracestate (an entry too long, a malformed list; a list too long
  // is cut to its first entries, as W3C Trace Context allows) and, left with nothing, still wrote the header empty.
  test('a tracestate the gateway cannot keep is not sent upstream at all, rather than empty', async () => {
    const { client, gw } = await startStack({});
    for (const tracestate of [`k=${'v'.repeat(600)}`, 'x'.repeat(600), '=,,==']) {
      const res = await client.request(`${gw.url}/state`, { headers: { traceparent: `00-${INCOMING_TRACE}-${INCOMING_SPAN}-00`, tracestate } });
      assert.equal(res.status, 200);
      const seen = res.json<EchoBody>().headers;
      assert.ok(TRACEPARENT.test(String(seen.traceparent)));
      assert.ok(!('tracestate' in seen), `tracestate sent: ${JSON.stringify(seen.tracestate)}`);
    }
  });

  test('a malformed traceparent starts a new trace', async () => {
    const { client, gw } = await startStack({});
    const res = await client.request(`${gw.url}/bad`, { headers: { traceparent: '00-zz-nothex-01' } });
    const match = TRACEPARENT.exec(String(res.json<EchoBody>().headers.traceparent))!;
    assert.ok(match, 'the gateway sent its own traceparent');
    const line = gw.logs.find((l) => l.request_id === res.headers['x-request-id'] && l.msg === 'Request Completed')!;
    assert.equal(line.trace_id, match[1]);
  });

  test('trust_incoming false: the incoming trace is not continued (only linked)', async () => {
    const { client, gw, receiver } = await startStack({ trust_incoming: false, response_header: 'trace-id' });
    const res = await client.request(`${gw.url}/untrusted`, { headers: { traceparent: `00-${INCOMING_TRACE}-${INCOMING_SPAN}-01` } });
    const traceId = String(res.headers['trace-id']);
    assert.notEqual(traceId, INCOMING_TRACE);
    const match = TRACEPARENT.exec(String(res.json<EchoBody>().headers.traceparent))!;
    assert.equal(match[1], traceId, 'the backend gets the gateway\'s own trace');
    const spans = await traceWith(receiver, traceId, ['GET']);
    const server = spans.find((s) => s.kind === SPAN_KIND.server)!;
    assert.equal(server.parentSpanId ?? '', '');
    assert.equal(server.links?.[0]?.traceId, INCOMING_TRACE);
    assert.equal(spansOf(receiver, INCOMING_TRACE).length, 0);
  });

  test('an invalid incoming context (all-zero trace or span id) is neither continued nor linked, trusted or not', async () => {
    const invalid = [`00-${'0'.repeat(32)}-${INCOMING_SPAN}-01`, `00-${INCOMING_TRACE}-${'0'.repeat(16)}-01`];
    for (const trust_incoming of [false, true]) {
      const { client, gw, receiver } = await startStack({ trust_incoming, response_header: 'trace-id' });
      for (const traceparent of invalid) {
        const res = await client.request(`${gw.url}/invalid-context`, { headers: { traceparent } });
        assert.equal(res.status, 200);
        const traceId = String(res.headers['trace-id']);
        assert.match(traceId, /^[0-9a-f]{32}$/);
        assert.notEqual(traceId, '0'.repeat(32));
        assert.notEqual(traceId, INCOMING_TRACE, `trust_incoming ${trust_incoming}: ${traceparent} was continued`);
        const server = (await traceWith(receiver, traceId, ['GET'])).find((s) => s.kind === SPAN_KIND.server)!;
        assert.equal(server.parentSpanId ?? '', '', `trust_incoming ${trust_incoming}: ${traceparent} became a parent`);
        assert.deepEqual(server.links ?? [], [], `trust_incoming ${trust_incoming}: ${traceparent} became a link`);
      }
    }
  });
});

describe('sampling', () => {
  test('sample_ratio 0 exports nothing, yet the backend still gets a (not sampled) traceparent and logs a trace id', async () => {
    const { client, gw, receiver } = await startStack({ sample_ratio: 0 });
    for (let i = 0; i < 20; i++) {
      const res = await client.request(`${gw.url}/unsampled/${i}`);
      assert.equal(res.status, 200);
      const match = TRACEPARENT.exec(String(res.json<EchoBody>().headers.traceparent))!;
      assert.equal(match[3], '0', 'flags say not sampled');
    }
    await gw.gateway.close(); // flushes whatever was queued
    assert.equal(receiver.spans.length, 0);
    assert.equal(receiver.requests, 0);
    assert.ok(gw.logs.filter((l) => l.msg === 'Request Completed').every((l) => /^[0-9a-f]{32}$/.test(String(l.trace_id))));
  });
});

describe('sampling follows the parent', () => {
  test('sample_ratio 0 still records a trace whose sampled caller asked for it', async () => {
    const { client, gw, receiver } = await startStack({ sample_ratio: 0 });
    const res = await client.request(`${gw.url}/parent-sampled`, { headers: { traceparent: `00-${INCOMING_TRACE}-${INCOMING_SPAN}-01` } });
    assert.equal(TRACEPARENT.exec(String(res.json<EchoBody>().headers.traceparent))![3], '1');
    await traceWith(receiver, INCOMING_TRACE, ['GET']);
  });
});

describe('not sampled', () => {
  test("a caller's unsampled trace is continued unsampled: its trace id and tracestate upstream, a fresh span id, nothing exported", async () => {
    const { client, gw, receiver } = await startStack({ sample_ratio: 1, response_header: 'X-Trace-Id' });
    const spanIds = new Set<string>();
    for (let i = 0; i < 5; i++) {
      const res = await client.request(`${gw.url}/caller-unsampled/${i}`, {
        headers: { traceparent: `00-${INCOMING_TRACE}-${INCOMING_SPAN}-00`, tracestate: 'vendor=abc' },
      });
      const seen = res.json<EchoBody>().headers;
      const match = TRACEPARENT.exec(String(seen.traceparent))!;
      assert.equal(match[1], INCOMING_TRACE);
      assert.equal(match[3], '0', 'flags say not sampled');
      assert.notEqual(match[2], INCOMING_SPAN);
      spanIds.add(match[2]!);
      assert.equal(seen.tracestate, 'vendor=abc');
      assert.equal(res.headers['x-trace-id'], INCOMING_TRACE);
    }
    assert.equal(spanIds.size, 5, 'every attempt has a span id of its own');
    await gw.gateway.close();
    assert.equal(receiver.spans.length, 0);
  });

  test('sample_ratio 0.5 samples about half of new traces, and exactly the ones the backend was told were sampled', async () => {
    const { client, gw, receiver } = await startStack({ sample_ratio: 0.5 });
    const flags = new Map<string, string>();
    for (let i = 0; i < 200; i++) {
      const res = await client.request(`${gw.url}/half/${i}`);
      const match = TRACEPARENT.exec(String(res.json<EchoBody>().headers.traceparent))!;
      flags.set(match[1]!, match[3]!);
    }
    assert.equal(flags.size, 200, 'a new trace id per request');
    const sampled = [...flags].filter(([, f]) => f === '1').map(([id]) => id);
    assert.ok(sampled.length > 60 && sampled.length < 140, `${sampled.length} of 200 sampled`);
    await gw.gateway.close(); // flushes the batch
    const exported = new Set(receiver.spans.map((s) => s.traceId));
    assert.deepEqual([...exported].sort(), [...sampled].sort());
  });
});

describe('tracing off', () => {
  test("a client's traceparent and tracestate pass through untouched, none is generated, no trace_id is logged", async () => {
    const backend = await startBackend('echo');
    const gw = await startInProcess({ load_balancing: { upstreams: upstreams([backend.port]) } });
    const client = createClient();
    after(async () => {
      await client.close();
      await gw.close();
      await backend.stop();
    });
    const sent = `00-${INCOMING_TRACE}-${INCOMING_SPAN}-01`;
    const passed = await client.request(`${gw.url}/a`, { headers: { traceparent: sent, tracestate: 'k=v' } });
    assert.equal(passed.json<EchoBody>().headers.traceparent, sent);
    assert.equal(passed.json<EchoBody>().headers.tracestate, 'k=v');
    const none = await client.request(`${gw.url}/b`);
    assert.equal(none.json<EchoBody>().headers.traceparent, undefined);
    assert.ok(gw.logs.every((l) => !('trace_id' in l)));
  });
});
