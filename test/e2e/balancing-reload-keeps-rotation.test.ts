// What was wrong: every reload built each service's balancing strategy anew, even for a service the reload did not
// touch, so round robin started over at the first upstream. A config reloaded every few seconds (a deploy tool, a
// certificate renewal) sent the first upstream more than its share, and weighted round robin lost its spread.
// What is right now: a reload that leaves a service's upstreams, their order and weights and its strategy as they
// were keeps the rotation where it was; changing any of them starts it over.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseConfigObject } from '../../src/config/load.js';
import { startBackend, type EchoBody } from '../helpers/backends.js';
import { startInProcess, upstreams, type ConfigInput } from '../helpers/gateway.js';
import { createClient } from '../helpers/http.js';

const config = (ports: number[], weights: number[], routeCount: number): ConfigInput => ({
  server: { listen_host: '127.0.0.1', listen_port: 0 },
  admin: { listen_host: '127.0.0.1', listen_port: 0 },
  logging: { format: 'json', level: 'warn' },
  load_balancing: {
    strategy: 'round_robin',
    upstreams: upstreams(ports, weights),
    health_check: { enabled: false },
  },
  // Something for the reload to change that is not the service.
  routes: Array.from({ length: routeCount }, (_, i) => ({ name: `r${i}`, match: { path: `/r${i}` }, service: 'default' })),
});

test('a reload that does not touch a service keeps its round robin where it was; one that changes it starts over', async () => {
  const backends = await Promise.all(['a', 'b', 'c'].map((n) => startBackend(n)));
  const ports = backends.map((b) => b.port);
  const client = createClient();
  const gw = await startInProcess(config(ports, [1, 1, 1], 1));
  const pick = async (): Promise<string> => {
    const res = await client.request(`${gw.url}/r0`);
    assert.equal(res.status, 200, res.text);
    return (JSON.parse(res.text) as EchoBody).backend;
  };
  try {
    const seen: string[] = [];
    seen.push(await pick());
    for (let i = 2; i <= 5; i++) {
      await gw.gateway.reload(parseConfigObject(config(ports, [1, 1, 1], i)));
      seen.push(await pick());
    }
    // One request between reloads: with the rotation restarted by each reload, all five went to "a".
    assert.deepEqual(seen, ['a', 'b', 'c', 'a', 'b']);

    // Weights changed: the service's rotation starts over (a smooth weighted round robin of 2,1,1 begins a, b, c, a).
    await gw.gateway.reload(parseConfigObject(config(ports, [2, 1, 1], 5)));
    const weighted: string[] = [];
    for (let i = 0; i < 4; i++) weighted.push(await pick());
    assert.deepEqual(weighted, ['a', 'b', 'c', 'a']);
  } finally {
    await gw.close();
    await client.close();
    await Promise.all(backends.map((b) => b.stop()));
  }
});
