// Review (observability, secrets in logs): a request target the driver refuses (anything but a canonical origin-form
// target is a 400) was still logged as sent, in Request Start and Request Completed: the password of an absolute-form
// target's userinfo (`GET http://user:password@host/x`) and a fragment (`/cb#access_token=...`) went into the access
// log, and from there to every log pipeline. The refusal stands; the line now shows the target without them.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { startBackend } from '../helpers/backends.js';
import { spawnGateway, startInProcess, tempDataDir, upstreams } from '../helpers/gateway.js';
import { rawRequest } from '../helpers/raw.js';
import { waitFor } from '../helpers/wait.js';

const SECRET = 's3cretPW';
const backend = await startBackend('one');
const logDir = tempDataDir();
const logFile = join(logDir, 'access.log');
const gw = await startInProcess({ load_balancing: { upstreams: upstreams([backend.port]) } });
// A real process writing the access-log file in the single-line format: the lines encoded in place (line-bytes.ts),
// not the parsed lines above.
const single = await spawnGateway({
  load_balancing: { upstreams: upstreams([backend.port]) },
  logging: { access_log_file: logFile, access_log_format: 'single' },
});
after(async () => {
  await gw.close();
  await single.cleanup();
  await backend.stop();
  rmSync(logDir, { recursive: true, force: true });
});

/** Each target the family holds, and the path its log lines show. */
const TARGETS: Array<[string, string]> = [
  [`http://user:${SECRET}@a.test/x`, 'http://a.test/x'],
  [`HTTPS://User:${SECRET}@a.test:8443/y?q=1`, 'HTTPS://a.test:8443/y'],
  [`ws://:${SECRET}@a.test/socket`, 'ws://a.test/socket'],
  [`//user:${SECRET}@a.test/z`, '//a.test/z'],
  [`/cb#access_token=${SECRET}`, '/cb'],
];

test('a refused target keeps its 400, and no log line holds its userinfo or fragment', async () => {
  for (const [target, shown] of TARGETS) {
    const before = gw.logs.length;
    const res = await rawRequest(gw.gateway.port, `GET ${target} HTTP/1.1\r\nHost: a.test\r\nConnection: close\r\n\r\n`);
    assert.equal(res.status, 400, target);
    assert.doesNotMatch(res.body, new RegExp(SECRET), target);
    await waitFor(() => gw.logs.slice(before).some((l) => l.msg === 'Request Completed'), `the Request Completed line of ${target}`);
    const lines = gw.logs.slice(before);
    assert.doesNotMatch(JSON.stringify(lines), new RegExp(SECRET), target);
    for (const msg of ['Request Start', 'Request Completed']) {
      assert.equal(lines.find((l) => l.msg === msg)?.path, shown, `${msg}: ${target}`);
    }
  }
  // node's parser refuses an authority without a scheme before any request exists: a bare 400, and no line at all.
  const before = gw.logs.length;
  const refused = await rawRequest(gw.gateway.port, `GET user:${SECRET}@a.test/w HTTP/1.1\r\nHost: a.test\r\nConnection: close\r\n\r\n`);
  assert.equal(refused.status, 400);
  assert.doesNotMatch(JSON.stringify(gw.logs.slice(before)), new RegExp(SECRET));
  // A canonical path with an @ is a path, served and logged as sent.
  const res = await rawRequest(gw.gateway.port, 'GET /users/@me HTTP/1.1\r\nHost: a.test\r\nConnection: close\r\n\r\n');
  assert.equal(res.status, 200);
  await waitFor(() => gw.logs.some((l) => l.msg === 'Request Completed' && l.path === '/users/@me'), 'the /users/@me line');
});

test('the access-log file (single format) shows the same paths, never the secret', async () => {
  for (const [target] of TARGETS) {
    const res = await rawRequest(single.port, `GET ${target} HTTP/1.1\r\nHost: a.test\r\nConnection: close\r\n\r\n`);
    assert.equal(res.status, 400, target);
  }
  const read = (): string => {
    try {
      return readFileSync(logFile, 'utf8');
    } catch {
      return '';
    }
  };
  await waitFor(() => read().trim().split('\n').filter((l) => l.includes('"status":400')).length >= TARGETS.length, 'every line in the file', 10_000);
  const text = read();
  assert.doesNotMatch(text, new RegExp(SECRET));
  const paths = text.trim().split('\n').map((l) => (JSON.parse(l) as { path?: string }).path);
  for (const [, shown] of TARGETS) assert.ok(paths.includes(shown), `${shown} in ${JSON.stringify(paths)}`);
});
