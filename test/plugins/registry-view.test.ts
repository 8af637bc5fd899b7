// api.metrics.registry acts on the plugins' own metrics only (found by the plugins review, 2026-12-07): it was the
// gateway's registry itself, so a plugin's registry.clear() (a plausible "unregister my metrics") took every
// portcullis_ series off /metrics until a restart, and resetMetrics() zeroed the gateway's counters.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { createClient } from '../helpers/http.js';
import { sampleValue } from '../helpers/prometheus.js';
import { fixture, gatewayWithPlugins, type PluginGateway } from './helpers.js';

const client = createClient();
let p: PluginGateway;
before(async () => {
  p = await gatewayWithPlugins([{ name: 'reg', module: fixture('registry-misuse.mjs') }], ['reg']);
});
after(async () => {
  await p?.close();
  await client.close();
});

const scrape = async () => (await client.request(`${p.gw.adminUrl}/metrics`)).text;
const requests = (text: string) => sampleValue(text, 'portcullis_requests_total', { route: 'proxy', service: 'default', method: 'GET', status: '200', upstream: 'default' });

test("resetMetrics() and clear() reach the plugin's own metrics, never the gateway's", async () => {
  for (let i = 0; i < 3; i++) assert.equal((await client.request(`${p.gw.url}/x`)).status, 200);
  const before = await scrape();
  assert.match(before, /^mine_total 3$/m);
  const counted = Number(before.match(/^portcullis_requests_total\{[^}]*status="200"[^}]*\} (\d+)$/m)?.[1]);
  assert.ok(counted >= 3, before.slice(0, 500));

  assert.equal((await client.request(`${p.gw.url}/x`, { headers: { 'x-do': 'reset' } })).status, 200);
  let text = await scrape();
  assert.match(text, /^mine_total 0$/m, 'its own counter reset');
  assert.ok(Number(text.match(/^portcullis_requests_total\{[^}]*status="200"[^}]*\} (\d+)$/m)?.[1]) > counted, "the gateway's counter kept");

  assert.equal((await client.request(`${p.gw.url}/x`, { headers: { 'x-do': 'clear' } })).status, 200);
  text = await scrape();
  assert.doesNotMatch(text, /^mine_total/m, 'its own metric gone');
  assert.match(text, /^portcullis_requests_total\{/m, "the gateway's series still served");
  assert.match(text, /^portcullis_requests_in_flight /m);
  void requests;
});

test("removing a gateway metric or changing the registry's settings throws: the plugin's failure, a 500, and /metrics unchanged", async () => {
  for (const what of ['remove-gateway', 'default-labels']) {
    const res = await client.request(`${p.gw.url}/x`, { headers: { 'x-do': what } });
    assert.equal(res.status, 500, what);
    assert.equal(res.json<{ code: string }>().code, 'plugin_failed');
  }
  const text = await scrape();
  assert.match(text, /^portcullis_requests_total\{/m);
  assert.doesNotMatch(text, /team="x"/);
});

test("the ways round the view reach no gateway metric: a metric's registers, prom-client's internals, its prototype", async () => {
  const before = await scrape();
  const counted = Number(before.match(/^portcullis_requests_total\{[^}]*status="200"[^}]*\} (\d+)$/m)?.[1]);
  // No effect (the view shows no internals for them to reach):
  for (const what of ['metric-registers', 'internals', 'prototype-reset']) assert.equal((await client.request(`${p.gw.url}/x`, { headers: { 'x-do': what } })).status, 200, what);
  // A TypeError, the plugin's failure:
  for (const what of ['delete-internals']) assert.equal((await client.request(`${p.gw.url}/x`, { headers: { 'x-do': what } })).status, 500, what);
  const res = await client.request(`${p.gw.url}/x`);
  assert.equal(res.status, 200);
  const after = await client.request(`${p.gw.adminUrl}/metrics`);
  assert.equal(after.status, 200);
  assert.ok(Number(after.text.match(/^portcullis_requests_total\{[^}]*status="200"[^}]*\} (\d+)$/m)?.[1]) > counted, 'counts kept, not reset');
  assert.doesNotMatch(after.text, /team="y"/);
});
