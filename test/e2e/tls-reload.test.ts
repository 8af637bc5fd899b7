// Certificate rotation: new files + SIGHUP under steady HTTPS and h2 load; new handshakes see the new certificate at
// once, connections already open keep working, and not one request fails.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { copyFileSync, renameSync } from 'node:fs';
import { join } from 'node:path';
import { startBackend } from '../helpers/backends.js';
import { spawnGateway, upstreams } from '../helpers/gateway.js';
import { createTestCa, pkiDir, type IssuedCertificate } from '../helpers/tls.js';
import { h2connect, h2request, httpsGet } from '../helpers/h2.js';
import { waitFor } from '../helpers/wait.js';

/** Replaces a file atomically (copy beside it, then rename), as a certificate manager would. */
function install(from: string, to: string): void {
  copyFileSync(from, `${to}.tmp`);
  renameSync(`${to}.tmp`, to);
}

function installPair(cert: IssuedCertificate, live: { cert: string; key: string }): void {
  install(cert.certFile, live.cert);
  install(cert.keyFile, live.key);
}

test('SIGHUP loads new certificate files without a failed request or a dropped connection', async () => {
  const pki = pkiDir();
  const backend = await startBackend('reload-backend');
  const ca = createTestCa('Reload CA', pki.path);
  const first = ca.issue('a.test', { san: ['DNS:a.test', 'IP:127.0.0.1'], stem: 'first' });
  const second = ca.issue('a.test', { san: ['DNS:a.test', 'IP:127.0.0.1'], stem: 'second' });
  const live = { cert: join(pki.path, 'live.pem'), key: join(pki.path, 'live.key') };
  installPair(first, live);
  const gw = await spawnGateway({ server: { tls: { cert_file: live.cert, key_file: live.key } }, load_balancing: { upstreams: upstreams([backend.port]) } });
  const session = await h2connect(gw.port, ca.ca);
  try {
    const serialOf = async () => (await httpsGet(gw.port, ca.ca, 'a.test', '/echo')).cert.serialNumber;
    const firstSerial = await serialOf();
    let ok = 0;
    const failures: string[] = [];
    let running = true;
    // Steady load: four loops of fresh HTTPS connections (a handshake each) and two on the h2 session opened before.
    const loops = [
      ...Array.from({ length: 4 }, async () => {
        while (running) {
          try {
            const r = await httpsGet(gw.port, ca.ca, 'a.test', '/echo');
            if (r.status === 200) ok++;
            else failures.push(`https ${r.status}`);
          } catch (err) {
            failures.push(`https ${(err as Error).message}`);
          }
        }
      }),
      ...Array.from({ length: 2 }, async () => {
        while (running) {
          try {
            const r = await h2request(session, { ':path': '/echo', ':method': 'GET' });
            if (r.status === 200) ok++;
            else failures.push(`h2 ${r.status}`);
          } catch (err) {
            failures.push(`h2 ${(err as Error).message}`);
          }
        }
      }),
    ];
    await waitFor(() => ok >= 20, 'load before the reload', 15_000);
    installPair(second, live);
    gw.signal('SIGHUP');
    await waitFor(() => gw.logs.some((l) => l.msg === 'Certificates Reloaded'), 'Certificates Reloaded', 10_000);
    const afterReload = ok;
    // The very next handshake gets the new certificate.
    const newSerial = await serialOf();
    await waitFor(() => ok >= afterReload + 20, 'load after the reload', 15_000);
    running = false;
    await Promise.all(loops);
    assert.notEqual(newSerial, firstSerial);
    assert.deepEqual(failures, []);
    assert.ok(!session.destroyed && !session.closed, 'the h2 connection opened before the reload is still up');
    assert.equal((await h2request(session, { ':path': '/echo', ':method': 'GET' })).status, 200);
  } finally {
    session.destroy();
    await gw.cleanup();
    await backend.stop();
    pki.remove();
  }
});
