// The SQLite user store holds password hashes and emails. Its data directory is made 0700 only when the gateway
// creates it: in one made beforehand (a Docker volume, a systemd state directory: 0755), SQLite created the file by
// the umask (0644) and its -wal and -shm files copied that mode, so every local user could copy the hashes for
// offline cracking. A new file is the owner's alone, and one left readable by others by an earlier version is not.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startInProcess, upstreams } from '../helpers/gateway.js';
import { createClient } from '../helpers/http.js';
import { authConfig, register, runId } from './ratelimit-helpers.js';

const modeOf = (path: string) => statSync(path).mode & 0o777;

test('the SQLite store and its -wal and -shm files are 0600 in a data directory made beforehand, and unreadable by others again', async () => {
  const dataDir = mkdtempSync(join(tmpdir(), 'portcullis-mode-'));
  after(() => rmSync(dataDir, { recursive: true, force: true }));
  chmodSync(dataDir, 0o755);
  const client = createClient();
  after(() => client.close());
  const config = { load_balancing: { upstreams: upstreams([1]) }, middleware: { auth: authConfig() } };
  const db = join(dataDir, 'portcullis.db');

  const gw = await startInProcess(config, dataDir);
  await register(client, gw.url, `mode-${runId()}@example.com`);
  for (const path of [db, `${db}-wal`, `${db}-shm`]) assert.equal(modeOf(path).toString(8), '600', path);
  await gw.gateway.close(); // the files stay (close() would remove the data directory)

  // As an earlier version left it: readable by all (a umask's doing).
  chmodSync(db, 0o644);
  const again = await startInProcess(config, dataDir);
  await register(client, again.url, `mode-${runId()}@example.com`);
  for (const path of [db, `${db}-wal`, `${db}-shm`]) assert.equal(modeOf(path).toString(8), '600', path);
  await again.gateway.close();

  // Readable by its group on purpose (a backup sidecar's): left as it is.
  chmodSync(db, 0o640);
  const third = await startInProcess(config, dataDir);
  after(() => third.close());
  await register(client, third.url, `mode-${runId()}@example.com`);
  assert.equal(modeOf(db).toString(8), '640');
});
