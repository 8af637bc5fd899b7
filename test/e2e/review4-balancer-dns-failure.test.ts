// What was wrong: only a few connect-phase error codes (ECONNREFUSED, EHOSTUNREACH, ENETUNREACH, ENOTFOUND, EAI_AGAIN)
// were known as "the request never reached the upstream". An upstream whose name the DNS server refused to resolve
// (getaddrinfo EAI_FAIL: the server's REFUSED, FORMERR or NOTIMP) was a 502 proxy_error: the request was not retried on
// the healthy upstream beside it, and the upstream never left rotation, so every other request failed. A name with
// several addresses whose first one timed out (node's AggregateError, code ETIMEDOUT) passed for a broken connection:
// a POST was not retried though nothing had been sent.
// What is right now: any failure of the name lookup or of connect() is upstream_unreachable: retried on another upstream
// whatever the method, and it takes the upstream out of rotation, as a refused connection does.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import dns from 'node:dns';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { startInProcess } from '../helpers/gateway.js';
import { createClient } from '../helpers/http.js';
import { classifyUpstreamError, failedBeforeSending, isUpstreamHealthFailure } from '../../src/proxy/upstream-error.js';

const FAILING_NAME = 'dns-refused.review4.invalid';
type Lookup = typeof dns.lookup;
const realLookup: Lookup = dns.lookup;

/** getaddrinfo's error for a name the resolver could not resolve for good, as node builds it. */
function eaiFail(hostname: string): NodeJS.ErrnoException {
  return Object.assign(new Error(`getaddrinfo EAI_FAIL ${hostname}`), { code: 'EAI_FAIL', errno: -3007, syscall: 'getaddrinfo', hostname });
}

before(() => {
  // The system resolver cannot be made to answer REFUSED from a test: node's net.connect looks names up through
  // dns.lookup, which is replaced for one name (in this process only; restored after).
  (dns as { lookup: Lookup }).lookup = function lookup(this: unknown, hostname: string, ...rest: unknown[]): void {
    const callback = rest[rest.length - 1] as (err: NodeJS.ErrnoException) => void;
    if (hostname === FAILING_NAME) {
      process.nextTick(callback, eaiFail(hostname));
      return;
    }
    (realLookup as (...args: unknown[]) => void).call(this, hostname, ...rest);
  } as Lookup;
});

const client = createClient();
const bodies: string[] = [];
const good = createServer((req: IncomingMessage, res: ServerResponse) => {
  let body = '';
  req.setEncoding('utf8');
  req.on('data', (chunk: string) => (body += chunk));
  req.on('end', () => {
    bodies.push(body);
    res.end(`good:${body}`);
  });
});

after(async () => {
  (dns as { lookup: Lookup }).lookup = realLookup;
  good.closeAllConnections();
  await new Promise<void>((resolve) => good.close(() => resolve()));
  await client.close();
});

test('an upstream whose name fails to resolve (EAI_FAIL) is retried elsewhere, even for a POST, and leaves rotation', async () => {
  await new Promise<void>((resolve) => good.listen(0, '127.0.0.1', resolve));
  const goodPort = (good.address() as AddressInfo).port;
  const gw = await startInProcess({
    load_balancing: {
      strategy: 'round_robin',
      upstreams: [
        { name: 'unresolvable', address: FAILING_NAME, port: 8080 },
        { name: 'good', address: '127.0.0.1', port: goodPort },
      ],
      retries: 1,
      health_check: { enabled: false, passive_cooldown: '60s' },
    },
  });
  try {
    for (let i = 0; i < 4; i++) {
      const res = await client.request(`${gw.url}/orders`, { method: 'POST', body: `order-${i}` });
      assert.equal(res.status, 200, `request ${i}: ${res.status} ${res.text}`);
      assert.equal(res.text, `good:order-${i}`);
    }
    assert.deepEqual(bodies, ['order-0', 'order-1', 'order-2', 'order-3'], 'each POST reached the good upstream exactly once');
    const down = gw.logs.filter((l) => l.msg === 'Upstream Down');
    assert.equal(down.length, 1, JSON.stringify(down));
    assert.equal(down[0]!.upstream, `${FAILING_NAME}:8080`);
    assert.equal(down[0]!.reason, 'UPSTREAM_UNREACHABLE');
    // Out of rotation after its first failure: one retry in all, not one per request it would have been picked for.
    assert.equal(gw.logs.filter((l) => l.msg === 'Upstream Retry').length, 1);
  } finally {
    await gw.close();
  }
});

test('a name whose every address failed to connect (the first one timed out) never reached the upstream', () => {
  // What node's autoSelectFamily reports when each address of a name failed: the aggregate takes the first one's code.
  const timedOut = Object.assign(new Error('connect ETIMEDOUT 10.0.0.1:8080'), { code: 'ETIMEDOUT', syscall: 'connect', address: '10.0.0.1' });
  const refused = Object.assign(new Error('connect ECONNREFUSED 10.0.0.2:8080'), { code: 'ECONNREFUSED', syscall: 'connect', address: '10.0.0.2' });
  const all = Object.assign(new AggregateError([timedOut, refused]), { code: 'ETIMEDOUT' });
  const error = classifyUpstreamError(all);
  assert.equal(error.code, 'UPSTREAM_UNREACHABLE');
  assert.equal(failedBeforeSending(error), true, 'nothing was sent: any method may be retried');
  assert.equal(isUpstreamHealthFailure(error), true);
  // A connection that broke once established may have carried the request: still a reset, not retried for a POST.
  const reset = classifyUpstreamError(Object.assign(new Error('read ECONNRESET'), { code: 'ECONNRESET', syscall: 'read' }));
  assert.equal(reset.code, 'UPSTREAM_RESET');
  assert.equal(failedBeforeSending(reset), false);
});
