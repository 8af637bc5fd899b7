// A request held in an async hook across a reload must be served by the upstream it would have reached without the
// reload. What was wrong: a reload closed the pools of the services and upstreams it removed at once (the undici pool
// only waits for requests already given to it), so a request that had matched its route (or picked its upstream)
// and was still in an async phase (a plugin's onRequest or onUpstreamRequest, a store lookup) was dispatched to a
// closed pool afterwards and answered 502 proxy_error "upstream pool closed". What is right now: a removed service or
// upstream keeps its pool until every request that picked it, or whose route uses it, has ended; then it is closed.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startBackend } from '../helpers/backends.js';
import { startInProcess, upstreams, type ConfigInput } from '../helpers/gateway.js';
import { createClient } from '../helpers/http.js';
import { waitFor } from '../helpers/prometheus.js';
import { parseConfigObject } from '../../src/config/load.js';

const client = createClient();
after(() => client.close());

const dir = mkdtempSync(join(tmpdir(), 'review-reload-pools-'));
after(() => rmSync(dir, { recursive: true, force: true }));

/** A plugin whose hook (`config.hook`) waits until the test opens the gate named `config.gate`. */
const gatePlugin = join(dir, 'gate.mjs');
writeFileSync(
  gatePlugin,
  `const gates = (globalThis.__reviewReloadGates ??= {});
export default {
  name: 'gate',
  create(config) {
    const wait = async () => {
      const gate = (gates[config.gate] ??= {});
      gate.waiting = (gate.waiting ?? 0) + 1;
      await (gate.open ??= new Promise((resolve) => (gate.release = resolve)));
    };
    return config.hook === 'onRequest' ? { onRequest: wait } : { onUpstreamRequest: wait };
  },
};
`,
);

interface Gate {
  waiting?: number;
  open?: Promise<void>;
  release?: () => void;
}
function gate(name: string): Gate {
  const gates = ((globalThis as { __reviewReloadGates?: Record<string, Gate> }).__reviewReloadGates ??= {});
  return (gates[name] ??= {});
}
function openGate(name: string): void {
  const g = gate(name);
  g.open ??= Promise.resolve();
  g.release?.();
}

function base(): ConfigInput {
  return {
    server: { listen_host: '127.0.0.1', listen_port: 0 },
    admin: { enabled: false, listen_host: '127.0.0.1', listen_port: 0 },
    logging: { format: 'json', level: 'info' },
  };
}

test('a request in an async onRequest hook when a reload removes its service is served by that service', async () => {
  const old = await startBackend('old');
  const fresh = await startBackend('fresh');
  const plugins = [{ name: 'gate', module: gatePlugin, config: { gate: 'service', hook: 'onRequest' } }];
  const first: ConfigInput = {
    ...base(),
    plugins,
    services: { old: { upstreams: upstreams([old.port]), retries: 0 } },
    routes: [{ name: 'all', match: { path_prefix: '/' }, service: 'old', plugins: ['gate'] }],
  };
  const second: ConfigInput = {
    ...base(),
    plugins,
    services: { fresh: { upstreams: upstreams([fresh.port]), retries: 0 } },
    routes: [{ name: 'all', match: { path_prefix: '/' }, service: 'fresh', plugins: ['gate'] }],
  };
  const gw = await startInProcess(first);
  try {
    const held = client.request(`${gw.url}/held`, { timeoutMs: 10_000 });
    await waitFor('the request to wait in its onRequest hook', () => gate('service').waiting === 1, 5_000);
    await gw.gateway.reload(parseConfigObject(second));
    openGate('service');
    const res = await held;
    assert.equal(res.status, 200, `answered ${res.status} ${res.text}: the route it matched lost its service's pool to the reload`);
    assert.equal(res.json().backend, 'old');
    const after = await client.request(`${gw.url}/next`);
    assert.equal(after.json().backend, 'fresh');
  } finally {
    openGate('service');
    await gw.close();
    await old.stop();
    await fresh.stop();
  }
});

test('a request in an async onUpstreamRequest hook when a reload replaces its upstream is sent to that upstream', async () => {
  const old = await startBackend('old');
  const fresh = await startBackend('fresh');
  const plugins = [{ name: 'gate', module: gatePlugin, config: { gate: 'upstream', hook: 'onUpstreamRequest' } }];
  const config = (port: number): ConfigInput => ({
    ...base(),
    plugins,
    services: { api: { upstreams: upstreams([port]), retries: 0 } },
    routes: [{ name: 'all', match: { path_prefix: '/' }, service: 'api', plugins: ['gate'] }],
  });
  const gw = await startInProcess(config(old.port));
  try {
    const held = client.request(`${gw.url}/held`, { timeoutMs: 10_000 });
    await waitFor('the request to wait in its onUpstreamRequest hook', () => gate('upstream').waiting === 1, 5_000);
    await gw.gateway.reload(parseConfigObject(config(fresh.port)));
    openGate('upstream');
    const res = await held;
    assert.equal(res.status, 200, `answered ${res.status} ${res.text}: the upstream it had picked lost its pool to the reload`);
    assert.equal(res.json().backend, 'old');
    const after = await client.request(`${gw.url}/next`);
    assert.equal(after.json().backend, 'fresh');
  } finally {
    openGate('upstream');
    await gw.close();
    await old.stop();
    await fresh.stop();
  }
});
