// /metrics across reloads (SIGHUP, POST /reload): the series of routes, services and upstreams a reload removed
// leave the exposition; those of what is still configured carry on untouched; a name added back starts from zero.
// Through child-process gateways (one process, then server.workers: 2) and real sockets only.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { copyFileSync } from 'node:fs';
import { startBackend, type TestBackend } from '../helpers/backends.js';
import { FAST_HEALTH_CHECKS, spawnGateway, writeConfig, type ConfigInput, type GatewayProcess } from '../helpers/gateway.js';
import { createClient } from '../helpers/http.js';
import { sampleValue, waitFor } from '../helpers/prometheus.js';
import { freshGet } from './ratelimit-helpers.js';

const client = createClient();
after(() => client.close());

/** Two routes, each to a service of its own; `gone` (route, service, upstream) only when `withGone`. */
function twoRoutes(keep: TestBackend, gone: TestBackend, withGone: boolean, extra: ConfigInput = {}): ConfigInput {
  return {
    ...extra,
    services: {
      keep: { upstreams: [{ name: 'k1', address: '127.0.0.1', port: keep.port }] },
      ...(withGone ? { gone: { upstreams: [{ name: 'g1', address: '127.0.0.1', port: gone.port }], health_check: FAST_HEALTH_CHECKS } } : {}),
    },
    routes: [
      { name: 'keep', match: { path_prefix: '/keep' }, service: 'keep' },
      ...(withGone ? [{ name: 'gone', match: { path_prefix: '/gone' }, service: 'gone', strip_prefix: true }] : []),
    ],
  };
}

async function scrape(adminPort: number): Promise<string> {
  // A fresh connection each time: with workers, the admin port is one worker's listener either way.
  const res = await client.request(`http://127.0.0.1:${adminPort}/metrics`);
  assert.equal(res.status, 200);
  return res.text;
}

/** The exposition lines (samples, not comments) that carry any of these label pairs. */
function linesWith(text: string, pairs: readonly string[]): string[] {
  return text.split('\n').filter((line) => !line.startsWith('#') && pairs.some((pair) => line.includes(pair)));
}

function rewrite(gw: GatewayProcess, input: ConfigInput): void {
  copyFileSync(writeConfig(input), gw.configFile);
}

function reloads(gw: GatewayProcess): number {
  return gw.logs.filter((l) => l.msg === 'Config Reloaded').length;
}

async function postReload(adminPort: number): Promise<void> {
  const res = await client.request(`http://127.0.0.1:${adminPort}/reload`, { method: 'POST' });
  assert.equal(res.status, 200, res.text);
}

test('a reload drops the removed route, service and upstream from /metrics; the kept route counts on; re-added, a route starts from zero', async () => {
  const [keep, gone] = await Promise.all([startBackend('keep'), startBackend('gone')]);
  after(() => Promise.all([keep.stop(), gone.stop()]));
  const gw = await spawnGateway(twoRoutes(keep, gone, true), { timeoutMs: 30_000 });
  after(() => gw.cleanup());
  const adminPort = gw.adminPort!;
  const goneUpstream = `127.0.0.1:${gone.port}`;
  const keepLabels = { route: 'keep', service: 'keep', method: 'GET', status: '200', upstream: `127.0.0.1:${keep.port}` };
  const stale = [`route="gone"`, `service="gone"`, `upstream="${goneUpstream}"`];

  for (let i = 0; i < 3; i++) assert.equal((await client.request(`${gw.url}/keep/${i}`)).status, 200);
  for (let i = 0; i < 2; i++) assert.equal((await client.request(`${gw.url}/gone/${i}`)).status, 200);
  // The removed upstream last seen down: the gauge a dashboard would keep showing red.
  await gone.stop();
  await waitFor('the gone upstream reported down', async () => {
    return sampleValue(await scrape(adminPort), 'portcullis_upstream_healthy', { upstream: goneUpstream, name: 'g1', service: 'gone' }) === 0;
  }, 10_000);
  let text = await scrape(adminPort);
  assert.equal(sampleValue(text, 'portcullis_requests_total', keepLabels), 3);
  assert.equal(sampleValue(text, 'portcullis_requests_total', { ...keepLabels, route: 'gone', service: 'gone', upstream: goneUpstream }), 2);
  assert.equal(sampleValue(text, 'portcullis_upstream_duration_seconds_count', { upstream: goneUpstream }), 2);
  assert.equal(sampleValue(text, 'portcullis_rate_limit_decisions_total', { decision: 'pass', route: 'gone' }), 0);

  // SIGHUP: route, service and upstream "gone" leave the config.
  rewrite(gw, twoRoutes(keep, gone, false));
  gw.signal('SIGHUP');
  await waitFor('the SIGHUP reload', () => reloads(gw) === 1, 10_000);
  text = await scrape(adminPort);
  assert.deepEqual(linesWith(text, stale), [], 'no series of the removed route, service or upstream');
  assert.equal(sampleValue(text, 'portcullis_requests_total', keepLabels), 3, 'the kept route keeps its count');
  assert.equal(sampleValue(text, 'portcullis_request_duration_seconds_count', { route: 'keep' }), 3);
  assert.equal(sampleValue(text, 'portcullis_upstream_healthy', { upstream: `127.0.0.1:${keep.port}`, name: 'k1', service: 'keep' }), 1);
  assert.equal((await client.request(`${gw.url}/keep/x`)).status, 200);
  assert.equal(sampleValue(await scrape(adminPort), 'portcullis_requests_total', keepLabels), 4, 'and counts on');
  // Gone from the route table too: a 404 under route "none", never a series of "gone".
  assert.equal((await client.request(`${gw.url}/gone/x`)).status, 404);
  assert.deepEqual(linesWith(await scrape(adminPort), stale), []);

  // POST /reload puts them back: new series, from zero (what Prometheus expects of a series that reappears).
  await gone.restart();
  rewrite(gw, twoRoutes(keep, gone, true));
  await postReload(adminPort);
  text = await scrape(adminPort);
  assert.equal(sampleValue(text, 'portcullis_rate_limit_decisions_total', { decision: 'pass', route: 'gone' }), 0);
  assert.equal(sampleValue(text, 'portcullis_requests_total', { ...keepLabels, route: 'gone', service: 'gone', upstream: goneUpstream }), undefined);
  assert.equal((await client.request(`${gw.url}/gone/again`)).status, 200);
  text = await scrape(adminPort);
  assert.equal(sampleValue(text, 'portcullis_requests_total', { ...keepLabels, route: 'gone', service: 'gone', upstream: goneUpstream }), 1);
  assert.equal(sampleValue(text, 'portcullis_request_duration_seconds_count', { route: 'gone' }), 1);
  assert.equal(sampleValue(text, 'portcullis_upstream_duration_seconds_count', { upstream: goneUpstream }), 1);
  assert.equal(sampleValue(text, 'portcullis_requests_total', keepLabels), 4, 'the kept route untouched by either reload');
});

test('a renamed route: the old name leaves /metrics, the new one counts from zero', async () => {
  const backend = await startBackend('one');
  after(() => backend.stop());
  const named = (name: string): ConfigInput => ({
    services: { api: { upstreams: [{ name: 'a1', address: '127.0.0.1', port: backend.port }] } },
    routes: [{ name, match: { path_prefix: '/api' }, service: 'api' }],
  });
  const gw = await spawnGateway(named('v1'), { timeoutMs: 30_000 });
  after(() => gw.cleanup());
  const adminPort = gw.adminPort!;
  assert.equal((await client.request(`${gw.url}/api/a`)).status, 200);
  assert.equal(sampleValue(await scrape(adminPort), 'portcullis_request_duration_seconds_count', { route: 'v1' }), 1);
  rewrite(gw, named('v2'));
  await postReload(adminPort);
  assert.equal((await client.request(`${gw.url}/api/b`)).status, 200);
  const text = await scrape(adminPort);
  assert.deepEqual(linesWith(text, ['route="v1"']), []);
  assert.equal(sampleValue(text, 'portcullis_request_duration_seconds_count', { route: 'v2' }), 1);
});

test('a request still running on a removed route when the reload lands does not bring its series back', async () => {
  const [keep, gone] = await Promise.all([startBackend('keep'), startBackend('gone')]);
  after(() => Promise.all([keep.stop(), gone.stop()]));
  const gw = await spawnGateway(twoRoutes(keep, gone, true), { timeoutMs: 30_000 });
  after(() => gw.cleanup());
  const adminPort = gw.adminPort!;
  const slow = client.request(`${gw.url}/gone/slow?ms=1500`);
  await waitFor('the slow request at the gone backend', () => gone.active === 1, 5_000);
  rewrite(gw, twoRoutes(keep, gone, false));
  await postReload(adminPort);
  // In flight requests finish on the route they started with (README: hot reload).
  assert.equal((await slow).status, 200);
  const text = await scrape(adminPort);
  assert.deepEqual(linesWith(text, ['route="gone"', 'service="gone"', `upstream="127.0.0.1:${gone.port}"`]), []);
});

test('server.workers: 2: the admin worker drops the removed series at a reload as a single process does', async () => {
  const [keep, gone] = await Promise.all([startBackend('keep'), startBackend('gone')]);
  after(() => Promise.all([keep.stop(), gone.stop()]));
  const gw = await spawnGateway(twoRoutes(keep, gone, true, { server: { workers: 2 } }), { timeoutMs: 30_000 });
  after(() => gw.cleanup());
  await waitFor('both workers to start', () => gw.logs.filter((l) => l.msg === 'Gateway Started').length === 2, 15_000);
  // The admin listener belongs to one worker; its line names the port (see scale-workers.test.ts).
  const adminPort = gw.logs.find((l) => l.msg === 'Gateway Started' && typeof l.admin_port === 'number')?.admin_port as number;
  // Fresh connections: the primary hands them to the workers in turn. Three a round (one "keep", two "gone"), so
  // neither route stays with one worker, until the admin worker has served both.
  const seen = async (route: string) => sampleValue(await scrape(adminPort), 'portcullis_request_duration_seconds_count', { route }) ?? 0;
  await waitFor('the admin worker to serve both routes', async () => {
    for (const path of ['/keep/a', '/gone/a', '/gone/b']) assert.equal((await freshGet(`${gw.url}${path}`)).status, 200);
    return (await seen('keep')) > 0 && (await seen('gone')) > 0;
  }, 15_000);
  const keepCount = await seen('keep');

  rewrite(gw, twoRoutes(keep, gone, false, { server: { workers: 2 } }));
  gw.signal('SIGHUP'); // to the primary, which reloads every worker
  await waitFor('both workers reloaded', () => reloads(gw) === 2, 15_000);
  const text = await scrape(adminPort);
  assert.deepEqual(linesWith(text, ['route="gone"', 'service="gone"', `upstream="127.0.0.1:${gone.port}"`]), []);
  assert.equal(sampleValue(text, 'portcullis_request_duration_seconds_count', { route: 'keep' }), keepCount, 'kept, not reset');
});
