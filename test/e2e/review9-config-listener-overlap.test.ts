// Two listeners on one port, judged by address rather than by spelling. The overlap check compared the hosts' text:
// 127.0.0.1 and ::ffff:127.0.0.1 (one IPv4 address), or ::1 and 0:0:0:0:0:0:0:1, passed check-config, and start
// failed binding the second (EADDRINUSE); 0.0.0.0 and ::1 (two families: both bind) were refused by both readers.
// Now both readers judge by what each host occupies: the first two refused alike, the third ok and served.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { checkConfigVerdict, startVerdict } from '../helpers/config-error.js';
import { freePort } from '../helpers/ports.js';

const dir = mkdtempSync(join(tmpdir(), 'portcullis-review9-overlap-'));
after(() => rmSync(dir, { recursive: true, force: true }));
const TOKEN = 'review9-admin-token-0123456789';

let files = 0;
function configFile(server: string, admin: string, port: number): string {
  const path = join(dir, `config-${++files}.yaml`);
  writeFileSync(
    path,
    `server: {listen_host: '${server}', listen_port: ${port}}
admin: {listen_host: '${admin}', listen_port: ${port}, token: ${TOKEN}}
logging: {format: json}
load_balancing:
  health_check: {enabled: false}
  upstreams: [{name: a, address: 127.0.0.1, port: 1}]
`,
  );
  return path;
}

const OVERLAP = 'portcullis: config error: admin.listen_port: the same port as server.listen_port, on addresses that overlap (both listeners cannot bind it)';

test('one address spelt two ways is one socket address; two families are two: check-config and start agree', async () => {
  const cases: Array<[string, string, string]> = [
    ['127.0.0.1', '::ffff:127.0.0.1', OVERLAP],
    ['::1', '0:0:0:0:0:0:0:1', OVERLAP],
    ['0.0.0.0', '::1', 'ok'],
  ];
  for (const [server, admin, verdict] of cases) {
    const path = configFile(server, admin, await freePort());
    assert.equal(await checkConfigVerdict(path, {}, dir), verdict, `check-config, ${server} and ${admin}`);
    assert.equal(await startVerdict(path, {}, dir), verdict, `start, ${server} and ${admin}`);
  }
});
