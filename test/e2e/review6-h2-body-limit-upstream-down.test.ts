// What was wrong: HTTP/2 uploads with no declared length, over a route's max_body_size, to a service whose upstream
// refused connections, took the gateway down: "Uncaught Exception", exit 1, after a few dozen uploads eight at a time.
// The body-limit phase pipes the client's stream into a counter, whose error (the 413) undici hears only while its
// request lives; the attempt had already failed (502, connection refused) while the stream went on feeding the pipe
// until the answer and its reset were out, and the counter's error, with no listener left, was rethrown by the pipe.
// What is right now: every upload gets its 502 (or 413, when the counter spoke first), and the gateway keeps serving.
// curl over TLS h2 against a spawned gateway; the race hit in the first or second round of 40 before the fix.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { tlsStackHooks } from '../helpers/tls-stack.js';
import { closedPort } from '../helpers/backends.js';
import { logsReadSoFar } from '../helpers/gateway.js';

const stack = tlsStackHooks('H2 Body Limit Upstream Down CA');
const { ca, cert, dir } = stack;

const UPLOAD = 10 * 1024 * 1024;
const CONCURRENCY = 8;
// Two rounds of 40 (see above): with the fix reverted, 80 uploads still logged the Uncaught Exception in 3 runs of 3.
const TOTAL = 80;

/** One curl upload without a length; resolves with the status curl saw (000 when the connection failed). */
function curlUpload(port: number, file: string, path: string): Promise<string> {
  return new Promise((resolve) => {
    execFile(
      'curl',
      ['-sS', '--max-time', '20', '--http2', '--cacert', ca.caFile, '--resolve', `a.test:${port}:127.0.0.1`,
        '-H', 'transfer-encoding: chunked', '--data-binary', `@${file}`, '-o', '/dev/null', '-w', '%{http_code}',
        `https://a.test:${port}${path}`],
      (_err, stdout) => resolve(stdout),
    );
  });
}

test('h2 uploads over max_body_size to an upstream that refuses connections: answered, and the gateway lives', { timeout: 120_000 }, async () => {
  const down = await closedPort();
  const gw = await stack.gateway({
    server: { tls: { cert_file: cert.certFile, key_file: cert.keyFile } },
    services: { api: { upstreams: [{ name: 'api', address: '127.0.0.1', port: down }] } },
    routes: [{ name: 'small', match: { path_prefix: '/small' }, service: 'api', max_body_size: '1KB' }],
  });
  let exited = false;
  void gw.exited.then(() => (exited = true));
  const file = join(dir, 'upload.bin');
  writeFileSync(file, Buffer.alloc(UPLOAD, 'u'));
  const outcomes: string[] = [];
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < TOTAL && !exited) {
      const path = `/small/u${next++}`;
      outcomes.push(`${path} ${await curlUpload(gw.port, file, path)}`);
    }
  };
  await Promise.all(Array.from({ length: CONCURRENCY }, worker));
  // An Uncaught Exception line is written with the answer it follows, and may still be on its way: read all first.
  await logsReadSoFar(gw, { tls: true });
  const uncaught = gw.logs.filter((l) => l.msg === 'Uncaught Exception');
  assert.deepEqual(uncaught, [], 'no exception went uncaught');
  assert.equal(exited, false, 'the gateway is still running');
  for (const outcome of outcomes) assert.match(outcome, / (502|413)$/, outcome);
  assert.equal(outcomes.length, TOTAL);
  // And it goes on answering: 502 when the refused connection comes first, 413 when the body's first kilobyte does
  // (the two race on a loaded machine; README: a body already over the limit is answered 413 even when its upstream
  // failed).
  assert.match(await curlUpload(gw.port, file, '/small/after'), /^(502|413)$/);
});
