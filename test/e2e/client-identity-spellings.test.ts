// One client, one bucket, however its address is spelt (D3): requests through a trusted proxy (127.0.0.1) whose
// X-Forwarded-For writes one client's address in different spellings share that client's bucket, and different IPv4
// clients written as IPv6 never share one (they all fell into the bucket 0:0:0:0::/64, or 64:ff9b:0:0::/64).
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { startBackend } from '../helpers/backends.js';
import type { InProcessGateway } from '../helpers/gateway.js';
import { createClient, type TestResponse } from '../helpers/http.js';
import { waitFor } from '../helpers/wait.js';
import { behindTrustedProxy } from './ratelimit-helpers.js';

const client = createClient();
const backend = await startBackend('one');
after(async () => {
  await client.close();
  await backend.stop();
});

/** A gateway behind a trusted proxy on 127.0.0.1; rate limit 1 token a minute, so nothing refills during a test. */
const gateway = (burst: number, extra: Record<string, unknown> = {}): Promise<InProcessGateway> => behindTrustedProxy(backend.port, burst, extra);

function via(gw: InProcessGateway, forwardedFor: string): Promise<TestResponse> {
  return client.request(`${gw.url}/r`, { headers: { 'x-forwarded-for': forwardedFor } });
}

/** Sends one request per spelling, in order; returns [status, RateLimit-Remaining] of each. */
async function spend(gw: InProcessGateway, spellings: readonly string[]): Promise<[number, string | undefined][]> {
  const out: [number, string | undefined][] = [];
  for (const s of spellings) {
    const res = await via(gw, s);
    out.push([res.status, res.headers['ratelimit-remaining'] as string | undefined]);
  }
  return out;
}

/** What one bucket of `burst` tokens answers to `burst` requests and one more. */
function oneBucket(burst: number): [number, string][] {
  return [...Array.from({ length: burst }, (_, i): [number, string] => [200, String(burst - 1 - i)]), [429, '0']];
}

test('every spelling of one IPv4 client spends the same bucket', async () => {
  const spellings = [
    '10.0.0.1',
    '::ffff:10.0.0.1',
    '::FFFF:10.0.0.1',
    '::ffff:a00:1',
    '0:0:0:0:0:ffff:10.0.0.1',
    '0000:0000:0000:0000:0000:FFFF:0A00:0001',
    '::ffff:0:10.0.0.1', // SIIT
    '64:ff9b::10.0.0.1', // NAT64
    '[::ffff:10.0.0.1]:443',
    '10.0.0.1:5678',
  ];
  const gw = await gateway(spellings.length);
  assert.deepEqual(await spend(gw, [...spellings, '::ffff:a00:1']), oneBucket(spellings.length));
});

test('different IPv4 clients written as IPv6 each have a bucket of their own', async () => {
  const gw = await gateway(3);
  const clients = [
    '10.0.0.1',
    '::FFFF:10.0.0.2',
    '::ffff:a00:3',
    '0:0:0:0:0:ffff:10.0.0.4',
    '::ffff:0:10.0.0.5',
    '64:ff9b::10.0.0.6',
    '64:ff9b::a00:7',
    '::ffff:10.0.0.8',
  ];
  // Each one's first request finds a full bucket: none was spent by the others.
  assert.deepEqual(await spend(gw, clients), clients.map(() => [200, '2']));
  // And an IPv6 client in the ::/64 next to them (loopback) is not one of them either.
  assert.deepEqual(await spend(gw, ['::1']), [[200, '2']]);
});

test('IPv6 spellings of one address share a bucket at ipv6_prefix 128; the next address has its own', async () => {
  const spellings = ['2001:db8::1', '2001:DB8::1', '2001:0db8::0001', '2001:db8:0:0::1', '2001:db8::1%1', '[2001:db8:0::1]:443'];
  const gw = await gateway(spellings.length, { ipv6_prefix: 128 });
  assert.deepEqual(await spend(gw, [...spellings, '2001:DB8:0:0:0:0:0:1']), oneBucket(spellings.length));
  assert.deepEqual(await spend(gw, ['2001:db8::2']), [[200, String(spellings.length - 1)]]);
});

test('the access log names the client in one canonical form', async () => {
  const gw = await gateway(10);
  for (const s of ['::FFFF:10.0.0.9', '[2001:DB8:0::0001]:443']) assert.equal((await via(gw, s)).status, 200);
  const clients = () => gw.logs.filter((l) => l.msg === 'Request Completed').map((l) => l.client);
  await waitFor(() => clients().length === 2, 'both access-log lines');
  assert.deepEqual(clients(), ['10.0.0.9', '2001:db8::1']);
});
