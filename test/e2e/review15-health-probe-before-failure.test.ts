// Active checks and passive cooldowns that overlap. What was wrong: (1) a probe sent before a passive failure, whose
// answer came after it (a slow health path), ended the cooldown the moment it succeeded, so the upstream that had just
// reset a request was back in rotation and the next requests failed on it; only a probe sent after the failure speaks
// for the upstream since. (2) A reload that gave an upstream a new pool (new pool settings, same address and transport)
// made a new object for it, and the next round probed that object while the old one's probe still waited: a second
// probe of one upstream, queued behind the first and sent the moment it was answered (its verdict counted twice
// toward a threshold), one more with every such reload. (1b) The same for a failure during the cooldown: the
// latest failure counts, not the first. (3) The active checks' verdict lines did not name the service,
// where one upstream may serve several, each with its own checks.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { parseConfigObject } from '../../src/config/load.js';
import { startInProcess, type ConfigInput } from '../helpers/gateway.js';
import { createClient } from '../helpers/http.js';
import { waitFor } from '../helpers/prometheus.js';
import { sleep } from '../helpers/wait.js';
import { closeServers } from '../helpers/servers.js';

const client = createClient();
const servers: ReturnType<typeof createServer>[] = [];
after(async () => {
  await closeServers(servers);
  await client.close();
});

const PROBE_AGENT = 'portcullis-health-check';

interface Upstream {
  port: number;
  /** Probes received so far, and the ones held unanswered. */
  probes: number;
  heldProbes: ServerResponse[];
  /** Probes answered and fully sent. */
  probesAnswered: number;
}

/**
 * A backend whose probes are held (`holdProbes`) or answered at once, and whose proxied requests are reset
 * (`broken`) or answered with its name.
 */
async function upstream(name: string, options: { holdProbes: boolean; broken: boolean }): Promise<Upstream> {
  const state: Upstream = { port: 0, probes: 0, heldProbes: [], probesAnswered: 0 };
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    if (req.headers['user-agent'] === PROBE_AGENT) {
      state.probes++;
      res.on('finish', () => state.probesAnswered++);
      if (options.holdProbes) state.heldProbes.push(res);
      else res.end('up');
    } else if (options.broken) req.socket.destroy();
    else res.end(name);
  });
  servers.push(server);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  state.port = (server.address() as AddressInfo).port;
  return state;
}

const config = (ports: number[], extra: Record<string, unknown> = {}): ConfigInput => ({
  server: { listen_host: '127.0.0.1', listen_port: 0 },
  admin: { listen_host: '127.0.0.1', listen_port: 0 },
  logging: { format: 'json', level: 'info' },
  load_balancing: {
    strategy: 'round_robin',
    retries: 0,
    upstreams: ports.map((port, i) => ({ name: `u${i}`, address: '127.0.0.1', port })),
    health_check: { enabled: true, interval: '1h', timeout: '30s', passive_cooldown: '30s', healthy_threshold: 1, unhealthy_threshold: 1 },
    ...extra,
  },
});

test('a probe sent before a passive failure does not end its cooldown when it succeeds after it', async () => {
  const broken = await upstream('broken', { holdProbes: true, broken: true });
  const good = await upstream('good', { holdProbes: false, broken: false });
  const gw = await startInProcess(config([broken.port, good.port]));
  try {
    await waitFor('the first round probed both', () => broken.probes === 1 && good.probesAnswered === 1, 5_000);
    // Round robin: within two requests one reaches the broken upstream, is reset (retries 0: a 502) and cools it down.
    const first = [(await client.request(`${gw.url}/a`)).status, (await client.request(`${gw.url}/b`)).status];
    assert.deepEqual([...first].sort(), [200, 502], `statuses ${first.join(',')}`);
    assert.ok(gw.logs.some((l) => l.event === 'Upstream Down'), 'the reset cooled the upstream down');
    // The probe sent at start-up, before the failure, now answers 200.
    broken.heldProbes.shift()!.end('up');
    await waitFor('the held probe answered', () => broken.probesAnswered === 1, 5_000);
    await sleep(100); // the gateway has read its end
    const after = [];
    for (let i = 0; i < 6; i++) after.push((await client.request(`${gw.url}/c${i}`)).status);
    assert.deepEqual(after, [200, 200, 200, 200, 200, 200], 'the upstream stayed out of rotation for its cooldown');
  } finally {
    for (const res of broken.heldProbes) res.destroy();
    await gw.close();
  }
});

test('a failure during the cooldown: a probe sent before it does not end the cooldown either', async () => {
  // One upstream that resets every proxied request; its probes are answered at once until `hold` is set, then held.
  const state = { hold: false, probes: 0, held: [] as ServerResponse[], answered: 0 };
  const server = createServer((req, res) => {
    if (req.headers['user-agent'] !== PROBE_AGENT) return void req.socket.destroy();
    state.probes++;
    res.on('finish', () => state.answered++);
    if (state.hold) state.held.push(res);
    else res.end('up');
  });
  servers.push(server);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  const gw = await startInProcess(config([port], { health_check: { enabled: true, interval: '150ms', timeout: '30s', passive_cooldown: '60s', healthy_threshold: 1, unhealthy_threshold: 1 } }));
  const health = async (): Promise<string> =>
    ((await (await client.request(`${gw.adminUrl}/api/status`)).json()) as { upstreams: Array<{ health: string }> }).upstreams[0]!.health;
  try {
    await waitFor('the first probe answered', () => state.answered >= 1, 5_000);
    assert.equal((await client.request(`${gw.url}/first`)).status, 502); // the cooldown starts
    state.hold = true;
    await waitFor('a probe sent after the first failure, held', () => state.held.length === 1, 5_000);
    // The only upstream, cooling down, is still tried (README): this request fails on it after the probe left.
    assert.equal((await client.request(`${gw.url}/second`)).status, 502);
    assert.equal(await health(), 'cooling_down');
    state.held.shift()!.end('up');
    await waitFor('the held probe answered', () => state.answered >= 2, 5_000);
    await sleep(100); // the gateway has read its end (later probes are held: no verdict of theirs)
    assert.equal(await health(), 'cooling_down', 'the upstream failed after that probe left: it stays out');
  } finally {
    for (const res of state.held) res.destroy();
    await gw.close();
  }
});

test('a probe sent after a passive failure still ends the cooldown early', async () => {
  const flaky = { broken: true };
  const state: Upstream = { port: 0, probes: 0, heldProbes: [], probesAnswered: 0 };
  const server = createServer((req, res) => {
    if (req.headers['user-agent'] === PROBE_AGENT) {
      state.probes++;
      res.on('finish', () => state.probesAnswered++);
      res.end('up');
    } else if (flaky.broken) req.socket.destroy();
    else res.end('flaky');
  });
  servers.push(server);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  state.port = (server.address() as AddressInfo).port;
  const good = await upstream('good', { holdProbes: false, broken: false });
  const gw = await startInProcess(config([state.port, good.port], { health_check: { enabled: true, interval: '300ms', timeout: '5s', passive_cooldown: '30s', healthy_threshold: 1, unhealthy_threshold: 1 } }));
  try {
    await waitFor('the first round', () => state.probesAnswered >= 1, 5_000);
    const first = [(await client.request(`${gw.url}/a`)).status, (await client.request(`${gw.url}/b`)).status];
    assert.deepEqual([...first].sort(), [200, 502], `statuses ${first.join(',')}`);
    flaky.broken = false;
    const answered = state.probesAnswered;
    await waitFor('a probe sent after the failure answered', () => state.probesAnswered >= answered + 2, 5_000);
    const bodies = new Set<string>();
    for (let i = 0; i < 4; i++) bodies.add((await client.request(`${gw.url}/c${i}`)).text);
    assert.deepEqual([...bodies].sort(), ['flaky', 'good'], 'the upstream is back in rotation long before its 30 s cooldown');
  } finally {
    await gw.close();
  }
});

test('a reload that gives an upstream a new pool does not start a second probe beside the one still waiting', async () => {
  const slow = await upstream('slow', { holdProbes: true, broken: false });
  const checks = (interval: string, connections: number): ConfigInput =>
    config([slow.port], {
      connections_per_upstream: connections,
      health_check: { enabled: true, interval, timeout: '30s', healthy_threshold: 1, unhealthy_threshold: 1 },
    });
  const gw = await startInProcess(checks('100ms', 32));
  try {
    await waitFor('the first probe', () => slow.probes === 1, 5_000);
    // A new pool, so a new object for the same upstream. The round already due (within 100 ms) still runs; the
    // ones after it are an hour away. A second probe started by that round waits in the probe pool's one connection
    // behind the held one, and goes out the moment the held one is answered.
    await gw.gateway.reload(parseConfigObject(checks('1h', 16)));
    await sleep(400);
    slow.heldProbes.shift()!.end('up');
    await waitFor('the held probe answered', () => slow.probesAnswered === 1, 5_000);
    await sleep(500);
    assert.equal(slow.probes, 1, 'one probe of the upstream at a time, across a reload that renewed its pool');
  } finally {
    for (const res of slow.heldProbes) res.destroy();
    await gw.close();
  }
});

test("the active checks' Upstream Unhealthy and Upstream Up lines name the service whose checks decided", async () => {
  // One upstream in two services: its health path answers 500 to one service's probe path and 200 to the other's.
  let sick = true;
  const server = createServer((req, res) => {
    res.statusCode = req.url === '/strict' && sick ? 500 : 200;
    res.end();
  });
  servers.push(server);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  const checks = (path: string): Record<string, unknown> => ({ enabled: true, interval: '100ms', timeout: '5s', healthy_threshold: 1, unhealthy_threshold: 1, path });
  const gw = await startInProcess({
    services: {
      lenient: { upstreams: [{ name: 'u', address: '127.0.0.1', port }], health_check: checks('/lenient') },
      strict: { upstreams: [{ name: 'u', address: '127.0.0.1', port }], health_check: checks('/strict') },
    },
    routes: [{ name: 'all', match: { path_prefix: '/' }, service: 'lenient' }],
  });
  try {
    await waitFor('Upstream Unhealthy', () => gw.logs.some((l) => l.msg === 'Upstream Unhealthy'), 5_000);
    sick = false;
    await waitFor('Upstream Up', () => gw.logs.some((l) => l.msg === 'Upstream Up'), 5_000);
    const verdicts = gw.logs.filter((l) => l.msg === 'Upstream Unhealthy' || l.msg === 'Upstream Up');
    assert.deepEqual(
      verdicts.map((l) => [l.msg, l.upstream_service, l.upstream]),
      [
        ['Upstream Unhealthy', 'strict', `127.0.0.1:${port}`],
        ['Upstream Up', 'strict', `127.0.0.1:${port}`],
      ],
    );
  } finally {
    await gw.close();
  }
});
