// Plugins that fail: a throw or rejection is a 500 with the catalogue body and a log line naming the plugin and the
// error class (never its message); a hook past middleware.plugin_timeout is abandoned. The gateway lives on.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createClient } from '../helpers/http.js';
import { openSocket, responseUntilClose } from '../helpers/raw.js';
import { events, fixture, gatewayWithPlugins, type PluginGateway } from './helpers.js';

const client = createClient();
after(() => client.close());

describe('plugin failures', () => {
  let p: PluginGateway;
  before(async () => {
    p = await gatewayWithPlugins(
      [
        { name: 'rec', module: fixture('recorder.mjs'), config: { tag: 'R', channel: 'failures' } },
        { name: 'bad', module: fixture('actions.mjs'), config: { channel: 'failures-log' } },
      ],
      ['bad', 'rec'],
      { middleware: { plugin_timeout: '300ms' } },
    );
  });
  after(() => p.close());

  const linesFor = (res: { headers: Record<string, unknown> }) => p.gw.logs.filter((l) => l.request_id === res.headers['x-request-id']);

  for (const action of ['throw-request', 'reject-request']) {
    test(`${action}: 500 with the catalogue body; the log names the plugin and the error class, not its message`, async () => {
      const hits = p.backend.hits;
      const res = await client.request(`${p.gw.url}/x`, { headers: { 'x-plugin-action': action } });
      assert.equal(res.status, 500);
      assert.deepEqual(Object.keys(res.json()).sort(), ['code', 'error', 'request_id']);
      assert.equal(res.json().error, 'Internal Server Error');
      assert.equal(res.json().code, 'plugin_failed');
      assert.equal(p.backend.hits, hits);
      const failed = linesFor(res).find((l) => l.msg === 'Plugin Failed');
      assert.ok(failed);
      assert.equal(failed.plugin, 'bad');
      assert.equal(failed.hook, 'onRequest');
      assert.equal(failed.error, 'PluginBug');
      assert.ok(!JSON.stringify(p.gw.logs).includes('secret-token-that-must-not-be-logged'), 'the error message never reaches a log');
      assert.ok(!res.text.includes('secret-token'));
      const done = linesFor(res).find((l) => l.msg === 'Request Completed');
      assert.equal(done?.status, 500);
      assert.equal(done?.error, 'PLUGIN_FAILED');
    });
  }

  test('respond() with a body that serialises to no JSON text is the plugin\'s failure: plugin_failed, a line naming it', async () => {
    const res = await client.request(`${p.gw.url}/x`, { headers: { 'x-plugin-action': 'respond-no-json' } });
    assert.equal(res.status, 500);
    assert.equal(res.json().code, 'plugin_failed', 'the gateway\'s own 500 (internal), as if the gateway had failed');
    const failed = linesFor(res).find((l) => l.msg === 'Plugin Failed');
    assert.equal(failed?.plugin, 'bad');
    assert.equal(failed?.hook, 'onRequest');
    assert.equal(failed?.error, 'TypeError');
  });

  test('a request hook past plugin_timeout is abandoned with a 504; the next request is served', async () => {
    const started = Date.now();
    const res = await client.request(`${p.gw.url}/x`, { headers: { 'x-plugin-action': 'hang-request' } });
    assert.equal(res.status, 504);
    assert.equal(res.json().error, 'Gateway Timeout');
    assert.equal(res.json().code, 'plugin_timeout');
    assert.ok(Date.now() - started < 3_000);
    const line = linesFor(res).find((l) => l.msg === 'Plugin Timed Out');
    assert.equal(line?.plugin, 'bad');
    assert.equal(line?.hook, 'onRequest');
    assert.equal(line?.timeout_ms, 300);
    assert.equal((await client.request(`${p.gw.url}/x`)).status, 200);
  });

  test('an upstream-request hook past plugin_timeout: 504, nothing forwarded', async () => {
    const hits = p.backend.hits;
    const res = await client.request(`${p.gw.url}/x`, { headers: { 'x-plugin-action': 'hang-upstream' } });
    assert.equal(res.status, 504);
    assert.equal(p.backend.hits, hits);
  });

  test('a response hook that throws turns a proxied response into a 500 (the upstream response is dropped)', async () => {
    const res = await client.request(`${p.gw.url}/x`, { headers: { 'x-plugin-action': 'throw-response' } });
    assert.equal(res.status, 500);
    assert.equal(res.json().error, 'Internal Server Error');
    assert.equal(linesFor(res).find((l) => l.msg === 'Plugin Failed')?.hook, 'onResponse');
    assert.equal(linesFor(res).find((l) => l.msg === 'Request Completed')?.status, 500);
  });

  test('a response hook that throws on a WebSocket upgrade: the 500 the client gets is what the access log and onLog see', async () => {
    const socket = await openSocket(p.gw.gateway.port);
    socket.write(
      'GET /ws HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n' +
        'Sec-WebSocket-Version: 13\r\nX-Plugin-Action: throw-response\r\n\r\n',
    );
    const res = await responseUntilClose(socket);
    assert.equal(res.status, 500);
    const id = res.headers['x-request-id'];
    const lines = p.gw.logs.filter((l) => l.request_id === id);
    const completed = lines.find((l) => l.msg === 'Request Completed');
    assert.equal(completed?.status, 500, 'logged as the 101 the upstream offered');
    assert.equal(completed?.error, 'PLUGIN_FAILED');
    await waitUntil(() => events('failures-log').some((e) => e.startsWith('log:500:')));
  });

  test('a response hook past plugin_timeout is abandoned: the response goes out without it, and a line is logged', async () => {
    const res = await client.request(`${p.gw.url}/x`, { headers: { 'x-plugin-action': 'hang-response' } });
    assert.equal(res.status, 200);
    assert.equal(res.headers['x-trace'], 'R', 'the later plugin still ran');
    assert.equal(linesFor(res).find((l) => l.msg === 'Plugin Timed Out')?.hook, 'onResponse');
  });

  test('a log hook that throws or hangs writes a line and changes nothing for the client', async () => {
    const thrown = await client.request(`${p.gw.url}/x`, { headers: { 'x-plugin-action': 'throw-log' } });
    assert.equal(thrown.status, 200);
    const hung = await client.request(`${p.gw.url}/x`, { headers: { 'x-plugin-action': 'hang-log' } });
    assert.equal(hung.status, 200);
    await waitUntil(() => linesFor(hung).some((l) => l.msg === 'Plugin Timed Out'));
    assert.equal(linesFor(thrown).find((l) => l.msg === 'Plugin Failed')?.hook, 'onLog');
    assert.equal(linesFor(hung).find((l) => l.msg === 'Plugin Timed Out')?.hook, 'onLog');
    // The plugin after the hung one still logged once the hung one was abandoned.
    await waitUntil(() => events('failures').filter((e) => e === 'R:log:200').length >= 2);
  });

  test('onLog sees the status, the upstream and the duration', async () => {
    const log = events('failures-log');
    log.length = 0;
    await client.request(`${p.gw.url}/x`);
    await waitUntil(() => log.length > 0);
    assert.deepEqual(log, ['log:200:b1:true']);
  });
});

// Hooks that return thenables which are not promises, each misbehaving its own way (fixtures/leaky.mjs): each
// failure shape is the plugin's failure (plugin_failed and a Plugin Failed line naming it, never a Request Error
// without it), only the first settlement counts, and the error's message and code reach no log line.
describe('plugin failures through thenables', () => {
  let p: PluginGateway;
  before(async () => {
    p = await gatewayWithPlugins([{ name: 'leaky', module: fixture('leaky.mjs') }], ['leaky'], { middleware: { plugin_timeout: '2s' } });
  });
  after(() => p.close());

  const linesFor = (res: { headers: Record<string, unknown> }) => p.gw.logs.filter((l) => l.request_id === res.headers['x-request-id']);

  const cases: Array<[string, string, string]> = [
    ['onRequest', 'x-leak', 'then-throws'],
    ['onRequest', 'x-leak', 'then-getter'],
    ['onRequest', 'x-leak', 'throw'],
    ['onUpstreamRequest', 'x-leak-upstream', 'then-throws'],
    ['onResponse', 'x-leak-response', 'then-throws'],
    ['onResponse', 'x-leak-response', 'reject'],
  ];
  for (const [hook, header, action] of cases) {
    test(`${hook} returning ${action}: 500 plugin_failed, Plugin Failed naming the plugin, the class alone logged`, async () => {
      const hits = p.backend.hits;
      const res = await client.request(`${p.gw.url}/x`, { headers: { [header]: action } });
      assert.equal(res.status, 500, 'a failing onResponse replaces the response it decorated');
      assert.equal(res.json().code, 'plugin_failed');
      if (hook === 'onRequest' || hook === 'onUpstreamRequest') assert.equal(p.backend.hits, hits, 'nothing forwarded');
      const lines = linesFor(res);
      const failed = lines.filter((l) => l.msg === 'Plugin Failed');
      assert.equal(failed.length, 1);
      assert.equal(failed[0]!.plugin, 'leaky');
      assert.equal(failed[0]!.hook, hook);
      assert.equal(failed[0]!.error, 'ConnectFailed');
      assert.equal(lines.filter((l) => l.msg === 'Request Error').length, 0);
      const done = lines.find((l) => l.msg === 'Request Completed');
      assert.equal(done?.status, 500);
      assert.equal(done?.error, 'PLUGIN_FAILED');
      assert.equal(done?.cause, 'PluginError <- ConnectFailed');
      const text = JSON.stringify(lines);
      assert.ok(!text.includes('hunter2') && !text.includes('postgres://'), `a plugin's code or message was logged: ${text}`);
    });
  }

  test('a thenable that fulfils and then rejects: its first settlement counts, 200 and no Plugin Failed line', async () => {
    for (const header of ['x-leak', 'x-leak-upstream', 'x-leak-response']) {
      const res = await client.request(`${p.gw.url}/x`, { headers: { [header]: 'resolve-then-reject' } });
      assert.equal(res.status, 200, header);
      await new Promise((resolve) => setTimeout(resolve, 20));
      assert.deepEqual(linesFor(res).filter((l) => l.msg === 'Plugin Failed' || l.msg === 'Request Error'), [], header);
    }
  });
});

async function waitUntil(condition: () => boolean, timeoutMs = 3_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}
