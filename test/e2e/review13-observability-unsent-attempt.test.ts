// A request that an upstream-request hook ends before it is sent (a plugin's respond(), a throw) never reached the
// upstream, yet it was counted as the upstream's: in portcullis_requests_total (service and upstream labels, which
// say "none" when not proxied) and in the dashboard's per-upstream request count. It now names the upstream only
// when it was sent there.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { expressionGateway, type PluginGateway } from '../plugins/helpers.js';
import { createClient } from '../helpers/http.js';
import type { TestResponse } from '../helpers/http.js';

let g: PluginGateway & { call(headers: Record<string, string>): Promise<TestResponse> };
const client = createClient();
before(async () => {
  const started = await expressionGateway('memory');
  if (typeof started === 'string') throw new Error(started);
  g = started;
});
after(async () => {
  await client.close();
  await g?.close();
});

const upstreamRequests = async (): Promise<number> =>
  (await client.request(`${g.gw.adminUrl}/api/status`)).json<{ upstreams: { requests: number }[] }>().upstreams[0]!.requests;

test('requests an upstream hook answers or fails are nobody\'s upstream requests', async () => {
  const hits = g.backend.hits;
  const counted = await upstreamRequests();
  assert.equal((await g.call({ 'x-upstream': `ctx.respond(403, 'no')` })).status, 403);
  assert.equal((await g.call({ 'x-upstream': `(() => { throw new Error('boom') })()` })).status, 500);
  assert.equal(g.backend.hits, hits, 'nothing reached the upstream');
  assert.equal(await upstreamRequests(), counted, 'the dashboard counts no request of the upstream');
  const metrics = (await client.request(`${g.gw.adminUrl}/metrics`)).text;
  const series = metrics.split('\n').filter((l) => l.startsWith('portcullis_requests_total{') && /status="(403|500)"/.test(l));
  assert.equal(series.length, 2, metrics);
  for (const line of series) assert.match(line, /service="none".*upstream="none"/, line);
  assert.equal((await g.call({})).status, 200);
  assert.equal(await upstreamRequests(), counted + 1, 'a request that is sent still counts');
});
