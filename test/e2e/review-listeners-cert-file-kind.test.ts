// A certificate or key path that is not a regular file (a FIFO, a device) at a reload.
// What was wrong: the certificate and key files were read with a blocking readFileSync, with no check of what they
// are: a cert_file or key_file that had become a FIFO (a secrets tool's named pipe, a mistaken `mkfifo`, a path
// pointing at a device) blocked the reload's open() for ever, on the event loop: SIGHUP stopped the whole gateway
// (every request, every listener) rather than being refused, and /dev/zero would have been read until memory ran
// out. check-config and start hung alike. What is right now: they are read as the config file is (regular-file.ts:
// opened without waiting, a regular file only, at most 1 MiB), so such a reload is refused with one line
// (`Config Rejected`, `server.tls.cert_file: cannot read <path> (not a regular file)`) and the certificate in use
// keeps serving.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { copyFileSync, renameSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { spawnGateway } from '../helpers/gateway.js';
import { httpsGet } from '../helpers/h2.js';
import { createTestCa, pkiDir } from '../helpers/tls.js';
import { waitFor } from '../helpers/wait.js';

const pki = pkiDir();
after(() => pki.remove());

test('a reload whose cert_file has become a FIFO is refused with one line, and the certificate in use keeps serving', async () => {
  const ca = createTestCa('Cert Kind CA', pki.path);
  const served = ca.issue('a.test', { san: ['DNS:a.test', 'IP:127.0.0.1'], stem: 'served' });
  const live = { cert: join(pki.path, 'live.pem'), key: join(pki.path, 'live.key') };
  copyFileSync(served.certFile, live.cert);
  copyFileSync(served.keyFile, live.key);
  const gw = await spawnGateway({
    server: { tls: { cert_file: live.cert, key_file: live.key } },
    load_balancing: { upstreams: [{ name: 'b', address: '127.0.0.1', port: 9 }] },
  });
  try {
    const before = await httpsGet(gw.port, ca.ca, 'a.test', '/health');
    assert.equal(before.status, 200);
    const fifo = join(pki.path, 'fifo.pem');
    execFileSync('mkfifo', [fifo]);
    renameSync(fifo, live.cert);
    gw.signal('SIGHUP');
    await waitFor(() => gw.logs.some((l) => l.msg === 'Config Rejected'), 'Config Rejected', 10_000);
    const rejected = gw.logs.find((l) => l.msg === 'Config Rejected')!;
    assert.equal(rejected.reason, `server.tls.cert_file: cannot read ${live.cert} (not a regular file)`);
    assert.ok(!gw.logs.some((l) => l.msg === 'Certificates Reloaded'));
    const afterReload = await httpsGet(gw.port, ca.ca, 'a.test', '/health');
    assert.equal(afterReload.status, 200);
    assert.equal(afterReload.cert.serialNumber, before.cert.serialNumber);
    // The file restored: the next reload takes it.
    rmSync(live.cert);
    copyFileSync(served.certFile, live.cert);
    gw.signal('SIGHUP');
    await waitFor(() => gw.logs.some((l) => l.msg === 'Certificates Reloaded'), 'Certificates Reloaded', 10_000);
  } finally {
    await gw.cleanup();
  }
});
