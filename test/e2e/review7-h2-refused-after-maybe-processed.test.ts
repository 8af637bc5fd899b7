// REFUSED_STREAM goes to an HTTP/2 client only when no attempt of its request may have been processed
// (pipeline/h2-refused.ts). A GET whose first attempt broke in a way that may have reached the upstream (its HTTP/2
// session destroyed as the stream arrived), then refused by the second upstream (RST_STREAM REFUSED_STREAM), must not
// be passed off as "not processed": the client gets a 502, and the access log says the refusal was the last failure.
// In-process TLS h2 gateway, two h2c upstreams in round robin (the first gets the first attempt).
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { constants } from 'node:http2';
import type { AddressInfo } from 'node:net';
import { startInProcess, upstreams } from '../helpers/gateway.js';
import { h2connect } from '../helpers/h2.js';
import { refusingUpstream } from '../helpers/refusing-upstream.js';
import { sessionKillingUpstream } from '../helpers/session-killing-upstream.js';
import { createTestCa, pkiDir } from '../helpers/tls.js';
import { waitFor } from '../helpers/wait.js';

const pki = pkiDir();
const cleanups: Array<() => Promise<void>> = [];
after(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup();
  pki.remove();
});

test('a GET that may have been processed by its first upstream and was refused by the second is a 502, not REFUSED_STREAM', async () => {
  const ca = createTestCa('Refused After Reset CA', pki.path);
  const cert = ca.issue('a.test', { san: ['DNS:a.test', 'IP:127.0.0.1'] });
  const killer = await sessionKillingUpstream(cleanups);
  const refuser = await refusingUpstream('headers');
  cleanups.push(() => refuser.close());
  const gw = await startInProcess({
    server: { tls: { cert_file: cert.certFile, key_file: cert.keyFile } },
    load_balancing: { http2: true, retries: 1, upstreams: upstreams([(killer.address() as AddressInfo).port, refuser.port]) },
  });
  cleanups.push(() => gw.close());
  const session = await h2connect(gw.gateway.port, ca.ca);
  try {
    const outcome = await new Promise<{ status: number; rstCode: number | undefined }>((resolve) => {
      const stream = session.request({ ':method': 'GET', ':path': '/twice' });
      let status = 0;
      stream.on('response', (h) => (status = Number(h[':status'])));
      stream.on('error', () => {});
      stream.resume();
      stream.on('close', () => resolve({ status, rstCode: stream.rstCode }));
    });
    assert.equal(refuser.streams(), 1, 'the retry reached the refusing upstream');
    assert.deepEqual(outcome, { status: 502, rstCode: constants.NGHTTP2_NO_ERROR });
  } finally {
    session.close();
  }
  const line = (): Record<string, unknown> | undefined => gw.logs.find((l) => l.msg === 'Request Completed' && l.path === '/twice');
  await waitFor(() => line() !== undefined, 'the request logged');
  assert.deepEqual([line()!.status, line()!.error], [502, 'UPSTREAM_RESET']);
});
