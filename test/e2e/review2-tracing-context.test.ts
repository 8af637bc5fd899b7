// Tracing review (2): what the server span says about the connection, and what a client's trace context may cost.
// url.scheme followed the cleartext listener on every request, so spans of HTTPS and HTTP/2 requests said "http".
// Spans wait in the export queue while a collector hangs (2,048 at most), and each held client text far beyond what
// it exports: the tracestate as sent (up to node's 16 KB head), the whole path behind url.path's 1,024-character cut
// (V8 keeps a substring as a view of its parent), the whole request target, query string included, behind url.path.
// About 15 MB more per 1,200 requests each, measured here against the same requests without that text.
import { test, after, describe } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { startBackend } from '../helpers/backends.js';
import { startInProcess, upstreams, type InProcessGateway } from '../helpers/gateway.js';
import { createClient } from '../helpers/http.js';
import { h2connect, h2request, httpsGet } from '../helpers/h2.js';
import { startOtlpReceiver, SPAN_KIND, type OtlpReceiver } from '../helpers/otlp-receiver.js';
import { createTestCa, pkiDir } from '../helpers/tls.js';
import { waitFor } from '../helpers/wait.js';

async function serverSpanScheme(receiver: OtlpReceiver, traceId: string): Promise<unknown> {
  await waitFor(() => receiver.spans.some((s) => s.traceId === traceId && s.kind === SPAN_KIND.server), `server span of ${traceId}`, 10_000, 50);
  return receiver.spans.find((s) => s.traceId === traceId && s.kind === SPAN_KIND.server)!.attrs['url.scheme'];
}

describe('url.scheme of the server span', () => {
  test('https for HTTPS/1.1 and HTTP/2 requests on the TLS listener, http on a cleartext one', async () => {
    const pki = pkiDir();
    const ca = createTestCa('review2 tracing CA', pki.path);
    const cert = ca.issue('a.test', { san: ['DNS:a.test', 'IP:127.0.0.1'] });
    const receiver = await startOtlpReceiver();
    const backend = await startBackend('echo');
    const gateways: InProcessGateway[] = [];
    const client = createClient();
    after(async () => {
      await client.close();
      for (const gw of gateways) await gw.close();
      await backend.stop();
      await receiver.close();
      pki.remove();
    });
    const common = {
      load_balancing: { upstreams: upstreams([backend.port]) },
      tracing: { otlp_endpoint: receiver.url, response_header: 'x-trace-id' },
    };
    const tls = await startInProcess({ ...common, server: { tls: { cert_file: cert.certFile, key_file: cert.keyFile } } });
    gateways.push(tls);
    const plain = await startInProcess(common);
    gateways.push(plain);

    const h1 = await httpsGet(tls.gateway.port, ca.ca, 'a.test', '/scheme/h1');
    assert.equal(h1.status, 200);
    assert.equal(await serverSpanScheme(receiver, String(h1.headers['x-trace-id'])), 'https', 'HTTPS/1.1');

    const session = await h2connect(tls.gateway.port, ca.ca);
    try {
      const h2 = await h2request(session, { ':path': '/scheme/h2', ':method': 'GET' });
      assert.equal(h2.status, 200);
      assert.equal(await serverSpanScheme(receiver, String(h2.headers['x-trace-id'])), 'https', 'HTTP/2');
    } finally {
      session.close();
    }

    const clear = await client.request(`${plain.url}/scheme/clear`);
    assert.equal(clear.status, 200);
    assert.equal(await serverSpanScheme(receiver, String(clear.headers['x-trace-id'])), 'http', 'cleartext');
  });
});

/**
 * Heap in use after full collections (the test process holds the in-process gateway). Held as sent, each text below
 * cost 14.7 to 18.6 MB more over 1,200 requests; copied, 0.5 to 6.3 MB (runs vary): the bound is 9 MB.
 */
function heapAfterGc(): number {
  setFlagsFromString('--expose-gc');
  const gc = runInNewContext('gc') as () => void;
  gc();
  gc();
  return process.memoryUsage().heapUsed;
}

/**
 * Heap held after `requests` sampled requests carrying `tracestate`, each continuing (or linking) its own trace,
 * through a gateway whose collector never answers: the spans stay queued.
 */
async function heldBy(trust_incoming: boolean, requests: number, path: (i: number) => string, tracestate?: string): Promise<number> {
  // Holds every export until the measure is taken, then answers all: a stop flushes the queued spans, and waited out
  // its export timeout (5 s) on a collector that never answers.
  let answering = false;
  const held: ServerResponse[] = [];
  const hanging = createServer((_req, res) => (answering ? res.end() : held.push(res)));
  await new Promise<void>((resolve) => hanging.listen(0, '127.0.0.1', resolve));
  const backend = await startBackend('one');
  const gw = await startInProcess({
    load_balancing: { upstreams: upstreams([backend.port]) },
    tracing: { otlp_endpoint: `http://127.0.0.1:${(hanging.address() as AddressInfo).port}/v1/traces`, trust_incoming },
  });
  const client = createClient({ connections: 8 });
  try {
    const before = heapAfterGc();
    // Eight at a time, one per connection (one by one, the file took about 70 s of the suite).
    let next = 0;
    const sender = async (): Promise<void> => {
      for (let i = next++; i < requests; i = next++) {
        const traceId = `${i.toString(16).padStart(8, '0')}77b34da6a3ce929d0e0e4736`;
        const headers = { traceparent: `00-${traceId}-00f067aa0ba902b7-01`, ...(tracestate === undefined ? {} : { tracestate }) };
        const res = await client.request(`${gw.url}${path(i)}`, { headers });
        assert.equal(res.status, 200);
        gw.logs.length = 0; // the test's capture of the log lines (each holds the path), not the gateway's
      }
    };
    await Promise.all(Array.from({ length: 8 }, sender));
    return heapAfterGc() - before;
  } finally {
    await client.close();
    answering = true;
    for (const res of held.splice(0)) res.end();
    await gw.close();
    await backend.stop();
    hanging.closeAllConnections();
    await new Promise<void>((resolve) => hanging.close(() => resolve()));
  }
}

/** A tracestate of one small member: sent by every measure but the one of a huge tracestate. */
const SMALL_STATE = 'k0=vvvvvvvvvvvvvvv';

/**
 * What 1,200 plain requests hold (short paths, SMALL_STATE), measured once per trust_incoming and shared by the tests
 * that compare against it: each measure is 1,200 requests through a gateway of its own, and three of the file's four
 * baselines were the same measure (eight measures, now six). Each compared measure differs from its baseline in the
 * one text it names.
 */
const baselines = new Map<boolean, Promise<number>>();
function baseline(trust_incoming: boolean): Promise<number> {
  let held = baselines.get(trust_incoming);
  if (held === undefined) {
    held = heldBy(trust_incoming, 1200, (i) => `/base/${i}`, SMALL_STATE);
    baselines.set(trust_incoming, held);
  }
  return held;
}

describe("a client's tracestate", () => {
  // 700 valid members, 14.6 KB: the propagator keeps 512 characters of it, and the gateway must hold no more.
  const huge = Array.from({ length: 700 }, (_, i) => `k${i}=${'v'.repeat(15)}`).join(',');
  for (const trust_incoming of [true, false]) {
    test(`trust_incoming ${trust_incoming}: queued spans hold what is kept of it, not the header as sent`, async () => {
      const small = await baseline(trust_incoming);
      const big = await heldBy(trust_incoming, 1200, (i) => `/state/${i}`, huge);
      const extraMb = (big - small) / 1e6;
      // Held as sent: 15 to 20 MB more (1,024 requests' spans queued, 14.6 KB each). Kept at 512 characters: about 0.5 MB.
      assert.ok(extraMb < 9, `a 14.6 KB tracestate held ${extraMb.toFixed(1)} MB more over 1,200 requests`);
    });
  }
});

describe("a client's long path", () => {
  test('queued spans hold url.path cut to 1,024 characters, not the path as sent', async () => {
    const short = await baseline(true);
    const long = await heldBy(true, 1200, (i) => `/path/${i}/${'p'.repeat(14_000)}`, SMALL_STATE);
    const extraMb = (long - short) / 1e6;
    // Two spans a request, each with url.path: cut to 1,024 characters, about 2 MB for the 2,048 spans queued.
    assert.ok(extraMb < 9, `a 14 KB path held ${extraMb.toFixed(1)} MB more over 1,200 requests`);
  });

  test('queued spans hold url.path alone, not the query string it was cut from', async () => {
    const bare = await baseline(true);
    const query = await heldBy(true, 1200, (i) => `/query-string/${i}?token=${'s'.repeat(14_000)}`, SMALL_STATE);
    const extraMb = (query - bare) / 1e6;
    assert.ok(extraMb < 9, `a 14 KB query string held ${extraMb.toFixed(1)} MB more over 1,200 requests`);
  });
});
