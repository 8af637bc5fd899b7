// A client that leaves while a plugin's hook is still waiting: the request is logged then (499) and every plugin's
// onLog runs, so nothing of the chain may be called for it afterwards. Before, the next plugins' onRequest,
// onUpstreamRequest or onResponse still ran once the slow hook settled: after onLog (a plugin that takes something
// in onRequest and gives it back in onLog leaked it on every early disconnect), and after close() when a reload had
// retired the instance in between.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { request } from 'node:http';
import { parseConfigObject } from '../../src/config/load.js';
import { startBackend, type TestBackend } from '../helpers/backends.js';
import { startInProcess, upstreams, type ConfigInput, type InProcessGateway } from '../helpers/gateway.js';
import { sleep, waitFor } from '../helpers/wait.js';
import { events, fixture } from './helpers.js';

const stops: Array<() => Promise<void>> = [];
after(async () => {
  for (const stop of stops.reverse()) await stop();
});

/** Sends GET `url` and destroys the request after `ms`, before any answer. */
async function leaveAfter(url: string, ms: number): Promise<void> {
  const req = request(url);
  req.on('error', () => undefined);
  req.end();
  await sleep(ms);
  req.destroy();
}

/** Plugins a (its `hook` slow) and b, in that order, spelt out whole so that a reload changes only b's config. */
function config(backend: TestBackend, channel: string, hook: string, bTag: string): ConfigInput {
  return {
    server: { listen_host: '127.0.0.1', listen_port: 0 },
    admin: { listen_host: '127.0.0.1', listen_port: 0 },
    logging: { format: 'json', level: 'info' },
    load_balancing: { upstreams: upstreams([backend.port]), health_check: { enabled: false } },
    plugins: [
      { name: 'a', module: fixture('recorder.mjs'), config: { tag: 'A', channel, slow: { [hook]: 400 } } },
      { name: 'b', module: fixture('recorder.mjs'), config: { tag: bTag, channel } },
    ],
    middleware: { plugins: ['a', 'b'] },
  };
}

for (const hook of ['onRequest', 'onUpstreamRequest', 'onResponse'] as const) {
  test(`a client gone while the first plugin's ${hook} waits: the second plugin's hooks are never called after onLog`, async () => {
    const backend = await startBackend('echo');
    stops.push(() => backend.stop());
    const channel = `departed-${hook}`;
    const log = events(channel);
    const gw: InProcessGateway = await startInProcess(config(backend, channel, hook, 'B'));
    stops.push(() => gw.close());
    log.length = 0;
    await leaveAfter(`${gw.url}/x`, 100);
    await waitFor(() => log.includes('B:log:499'), 'the request logged as 499', 5_000);
    // A reload that re-creates b (a new config) while a's hook still waits: the old b is closed, being drained.
    await gw.gateway.reload(parseConfigObject(config(backend, channel, hook, 'B2')));
    await sleep(600); // a's hook has settled by now
    const afterLog = log.slice(log.indexOf('B:log:499') + 1).filter((e) => e.startsWith('B:') && e !== 'B:close');
    assert.deepEqual(afterLog, [], `b called after its onLog: ${log.join(' ')}`);
  });
}
