// A named policy's buckets never meet the default policy's, whatever the client address: with ipv6_prefix 128 and a
// policy named like a hex word (abcd), client 1:: on the policy's route and client abcd:1:: on a default route used to
// share the key p:abcd:1::, so one drained the other's bucket.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { startBackend } from '../helpers/backends.js';
import { startInProcess } from '../helpers/gateway.js';
import { createClient } from '../helpers/http.js';
import { sequence, statusCounts } from './ratelimit-helpers.js';

const client = createClient();
const backend = await startBackend('echo');
after(async () => {
  await client.close();
  await backend.stop();
});

test('policy abcd with ipv6_prefix 128: client 1:: on its route and client abcd:1:: on a default route have buckets of their own', async () => {
  const gw = await startInProcess({
    server: { trusted_proxies: ['127.0.0.1'] },
    services: { api: { upstreams: [{ name: 'api', address: '127.0.0.1', port: backend.port }] } },
    routes: [
      { name: 'named', match: { path_prefix: '/named' }, service: 'api', rate_limit: 'abcd' },
      { name: 'plain', match: { path_prefix: '/plain' }, service: 'api' },
    ],
    middleware: {
      // One token a minute for both: the counts are exact however slow the machine is.
      rate_limit: { enabled: true, requests_per_minute: 1, burst_size: 3, ipv6_prefix: 128, policies: { abcd: { requests_per_minute: 1, burst_size: 3 } } },
    },
    admin: { enabled: false },
  });
  after(() => gw.close());

  const named = await sequence(4, () => client.request(`${gw.url}/named/x`, { headers: { 'x-forwarded-for': '1::' } }));
  assert.deepEqual(named.map((r) => r.status), [200, 200, 200, 429]);
  // Another client, on the default policy: a full bucket, not the one client 1:: just drained.
  const plain = await sequence(4, () => client.request(`${gw.url}/plain/x`, { headers: { 'x-forwarded-for': 'abcd:1::' } }));
  assert.deepEqual(plain.map((r) => r.status), [200, 200, 200, 429]);
  assert.equal(plain[0]!.headers['ratelimit-remaining'], '2');
  // And each policy still keeps one client's bucket across requests (1:: stays limited on its route).
  assert.deepEqual(statusCounts([await client.request(`${gw.url}/named/x`, { headers: { 'x-forwarded-for': '1::' } })]), { 429: 1 });
});
