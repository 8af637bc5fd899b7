// Plugins with tracing on: the chain's lines about a request (Plugin Failed, Plugin Timed Out) carry its trace_id,
// as the gateway's own request lines do; with tracing off they carry none.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createClient } from '../helpers/http.js';
import { startOtlpReceiver, type OtlpReceiver } from '../helpers/otlp-receiver.js';
import { waitFor } from '../helpers/wait.js';
import { fixture, gatewayWithPlugins, type PluginGateway } from './helpers.js';

const client = createClient();
after(() => client.close());

const PLUGINS = [{ name: 'bad', module: fixture('actions.mjs'), config: { channel: 'plugin-tracing' } }];

describe('plugins, tracing on', () => {
  let receiver: OtlpReceiver;
  let p: PluginGateway;
  before(async () => {
    receiver = await startOtlpReceiver();
    p = await gatewayWithPlugins(PLUGINS, ['bad'], {
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
});

describe('plugins, tracing off', () => {
  let p: PluginGateway;
  before(async () => {
    p = await gatewayWithPlugins(PLUGINS, ['bad']);
  });
  after(() => p.close());

  test('a Plugin Failed line has request_id and no trace_id', async () => {
    const res = await client.request(`${p.gw.url}/x`, { headers: { 'x-plugin-action': 'throw-request' } });
    const line = p.gw.logs.find((l) => l.msg === 'Plugin Failed' && l.request_id === res.headers['x-request-id']);
    assert.ok(line);
    assert.equal('trace_id' in line, false);
  });
});
