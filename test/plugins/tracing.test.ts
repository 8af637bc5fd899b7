// Plugins with tracing on: the chain's lines about a request (Plugin Failed, Plugin Timed Out) carry its trace_id,
// as the gateway's own request lines do; traceparent, tracestate and tracing.response_header are the gateway's, so
// a plugin's set or delete throws as for any owned header. With tracing off: no trace_id, and those are ordinary.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createClient } from '../helpers/http.js';
import { startOtlpReceiver, type OtlpReceiver } from '../helpers/otlp-receiver.js';
import { waitFor } from '../helpers/wait.js';
import { fixture, gatewayWithPlugins, type PluginGateway } from './helpers.js';

const client = createClient();
after(() => client.close());

const PLUGINS = [
  { name: 'bad', module: fixture('actions.mjs'), config: { channel: 'plugin-tracing' } },
  { name: 'setter', module: fixture('header-setter.mjs') },
];
const TRACEPARENT = '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01';

interface Echoed {
  headers: Record<string, string | undefined>;
}

describe('plugins, tracing on', () => {
  let receiver: OtlpReceiver;
  let p: PluginGateway;
  before(async () => {
    receiver = await startOtlpReceiver();
    p = await gatewayWithPlugins(PLUGINS, ['bad', 'setter'], {
      middleware: { plugin_timeout: '200ms' },
      tracing: { otlp_endpoint: receiver.url, response_header: 'X-Trace-Id' },
    });
  });
  after(async () => {
    await p.close();
    await receiver.close();
  });

  const linesFor = (res: { headers: Record<string, unknown> }) => p.gw.logs.filter((l) => l.request_id === res.headers['x-request-id']);

  for (const [action, msg, hook] of [
    ['throw-request', 'Plugin Failed', 'onRequest'],
    ['hang-request', 'Plugin Timed Out', 'onRequest'],
    ['throw-response', 'Plugin Failed', 'onResponse'],
    ['hang-log', 'Plugin Timed Out', 'onLog'],
  ] as const) {
    test(`${action}: the ${msg} line carries the request's trace_id`, async () => {
      const res = await client.request(`${p.gw.url}/x`, { headers: { 'x-plugin-action': action } });
      const traceId = res.headers['x-trace-id'];
      assert.match(String(traceId), /^[0-9a-f]{32}$/);
      await waitFor(() => linesFor(res).some((l) => l.msg === msg), msg);
      const line = linesFor(res).find((l) => l.msg === msg)!;
      assert.equal(line.hook, hook);
      assert.equal(line.trace_id, traceId);
      assert.equal(linesFor(res).find((l) => l.msg === 'Request Completed')?.trace_id, traceId, 'the gateway line has the same id');
    });
  }

  for (const [how, header] of [
    ['set', { 'x-set-upstream': `traceparent=${TRACEPARENT}` }],
    ['set', { 'x-set-upstream': 'TraceState=vendor=x' }],
    ['delete', { 'x-delete-upstream': 'traceparent' }],
    ['delete', { 'x-delete-upstream': 'tracestate' }],
  ] as const) {
    test(`upstreamHeaders: ${how} ${Object.values(header)[0]} throws (owned while tracing is on); the gateway's goes upstream`, async () => {
      const res = await client.request(`${p.gw.url}/x`, { headers: header });
      const echoed = res.json<Echoed>();
      assert.match(String(echoed.headers['x-set-error']), /^TypeError: header trace(parent|state) is owned by the gateway$/);
      const sent = /^00-([0-9a-f]{32})-[0-9a-f]{16}-0[01]$/.exec(String(echoed.headers.traceparent));
      assert.equal(sent?.[1], res.headers['x-trace-id'], 'the gateway\'s own traceparent');
    });
  }

  for (const header of [{ 'x-set-response': 'x-trace-id=forged' }, { 'x-delete-response': 'X-Trace-Id' }] as Record<string, string>[]) {
    test(`responseHeaders: ${Object.values(header)[0]} throws (tracing.response_header is owned)`, async () => {
      const res = await client.request(`${p.gw.url}/x`, { headers: header });
      assert.equal(res.headers['x-set-error'], 'TypeError: header x-trace-id is owned by the gateway');
      assert.match(String(res.headers['x-trace-id']), /^[0-9a-f]{32}$/);
    });
  }
});

describe('plugins, tracing off', () => {
  let p: PluginGateway;
  before(async () => {
    p = await gatewayWithPlugins(PLUGINS, ['bad', 'setter']);
  });
  after(() => p.close());

  test('traceparent and tracestate are ordinary headers: a plugin sets them and they go upstream', async () => {
    const res = await client.request(`${p.gw.url}/x`, { headers: { 'x-set-upstream': `traceparent=${TRACEPARENT}` } });
    assert.equal(res.json<Echoed>().headers.traceparent, TRACEPARENT);
    assert.equal(res.json<Echoed>().headers['x-set-error'], undefined);
    const state = await client.request(`${p.gw.url}/x`, { headers: { 'x-set-upstream': 'tracestate=vendor=x' } });
    assert.equal(state.json<Echoed>().headers.tracestate, 'vendor=x');
  });

  test('a header named like a trace response header is ordinary', async () => {
    const res = await client.request(`${p.gw.url}/x`, { headers: { 'x-set-response': 'x-trace-id=mine' } });
    assert.equal(res.headers['x-trace-id'], 'mine');
  });

  test('a Plugin Failed line has request_id and no trace_id', async () => {
    const res = await client.request(`${p.gw.url}/x`, { headers: { 'x-plugin-action': 'throw-request' } });
    const line = p.gw.logs.find((l) => l.msg === 'Plugin Failed' && l.request_id === res.headers['x-request-id']);
    assert.ok(line);
    assert.equal('trace_id' in line, false);
  });
});
