// What was wrong: c912bc4 took every EADDRNOTAVAIL on connect for the gateway's own shortage of local ports (503
// gateway_resources_exhausted, never held against the upstream, active checks giving no verdict, one Local Resources
// Exhausted line). But connect() says EADDRNOTAVAIL just as well for an upstream this host has no way to reach: an
// IPv6 address on a host or container with IPv6 disabled (the [::1] of `localhost`), an address of a family or scope
// it has no source address for. Such an upstream failed every request with a 503 that blamed the gateway, stayed in
// rotation for ever (passive and active health both blind to it), and the log said so once, as a resource
// shortage, with no Upstream Down to point at the upstream. Before c912bc4 it was an unreachable upstream.
// What is right now: EADDRNOTAVAIL is the upstream's connect failure again (502 upstream_unreachable, retried on
// another upstream, out of rotation): a shortage of local ports is per destination too, so that destination is
// unreachable from here until the ports come back, which the active checks see. EMFILE, ENFILE, ENOBUFS and ENOMEM,
// which say nothing of the destination, stay the gateway's own (review10-limits-descriptors-upstream).
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { FAST_HEALTH_CHECKS } from '../helpers/gateway.js';
import { getInNamespaceOf, spawnGatewayWithoutIpv6 } from '../helpers/netns.js';
import { waitFor } from '../helpers/wait.js';

const cleanups: Array<() => Promise<void> | void> = [];
after(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup();
});

test('an upstream at an address this host cannot connect from (EADDRNOTAVAIL) is an unreachable upstream, taken out of rotation', async () => {
  const gw = await spawnGatewayWithoutIpv6({
    admin: { enabled: false },
    load_balancing: {
      upstreams: [{ name: 'v6only', address: '::1', port: 8080 }],
      health_check: FAST_HEALTH_CHECKS,
    },
    routes: [{ name: 'all', match: { path_prefix: '/' }, service: 'default' }],
  });
  cleanups.push(() => gw.cleanup());
  const first = await getInNamespaceOf(gw.child.pid!, `${gw.url}/first`);
  assert.equal(first.status, 502, first.body);
  assert.notEqual(JSON.parse(first.body).code, 'gateway_resources_exhausted');
  // The active checks (every 100 ms) call it unhealthy, or the request's failure took it out: either names it.
  await waitFor(
    () => gw.logs.some((l) => (l.msg === 'Upstream Down' || l.msg === 'Upstream Unhealthy') && String(l.upstream).includes('::1')),
    `the upstream taken out of rotation, by name: ${JSON.stringify(gw.logs.filter((l) => String(l.msg).startsWith('Upstream')))}`,
    10_000,
  );
  assert.ok(!gw.logs.some((l) => l.msg === 'Local Resources Exhausted'), 'no local shortage claimed');
  const completed = (l: Record<string, unknown>): boolean => l.msg === 'Request Completed' && l.path === '/first';
  await waitFor(() => gw.logs.some(completed), 'the request line', 10_000);
  const line = gw.logs.find(completed)!;
  assert.equal(line.status, 502);
  // Out of rotation (or, at the very first request, unreachable): the upstream's failure either way.
  assert.match(String(line.error), /^(NO_HEALTHY_UPSTREAM|UPSTREAM_UNREACHABLE)$/);
});
