// What was wrong: jwt's keys are loaded at start and its settings are restart-only, but a key file rewritten in
// place (a rotation: the config's text unchanged) passed a reload as "reloaded" while the old key stayed in use. In a
// cluster, a worker restarted later (a crash, the watchdog) loaded the new key beside siblings on the old one: the
// JWKS alternated between two keys and every other request with a valid token got 401.
// What is right now: a reload whose key files now hold another key is refused with the reason; a replacement worker
// whose key differs from its siblings' refuses to start (restarted with backoff) rather than serve with it.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startBackend } from '../helpers/backends.js';
import { spawnGateway } from '../helpers/gateway.js';
import { freePort } from '../helpers/ports.js';
import { alive, endGroup, workerPids } from '../helpers/workers.js';
import { waitFor } from '../helpers/wait.js';
import { FAST_ARGON2 } from '../helpers/auth-gateway.js';
import { REDIS_URL, requireRedis } from '../kv/redis-helpers.js';
import { deleteRedisKeys, runId } from './ratelimit-helpers.js';

const skipRedis = await requireRedis(); // throws under CI=true when Redis is missing

function writeKey(file: string): void {
  const { privateKey } = generateKeyPairSync('ed25519');
  writeFileSync(file, privateKey.export({ type: 'pkcs8', format: 'pem' }), { mode: 0o600 });
}

test('a key file rotated in place: the reload is refused, a replacement worker does not serve with the new key', { timeout: 90_000, skip: skipRedis }, async () => {
  const keyPrefix = `portcullis-test:review16-keys:${runId()}:`;
  const dir = mkdtempSync(join(tmpdir(), 'review16-keys-'));
  const keyFile = join(dir, 'key.pem');
  writeKey(keyFile);
  const backend = await startBackend('one');
  const adminPort = await freePort();
  const gw = await spawnGateway(
    {
      server: { workers: 2 },
      admin: { listen_host: '127.0.0.1', listen_port: adminPort },
      jwt: { algorithm: 'EdDSA', private_key_file: keyFile },
      redis: { url: REDIS_URL, key_prefix: keyPrefix },
      load_balancing: { upstreams: [{ name: 'a', address: '127.0.0.1', port: backend.port }] },
      middleware: { auth: { enabled: true, argon2: FAST_ARGON2 }, rate_limit: { enabled: false } },
    },
    { group: true, env: { PORTCULLIS_DATA_DIR: dir } },
  );
  try {
    await waitFor(() => gw.logs.filter((l) => l.msg === 'Gateway Started').length >= 2, 'two workers started', 20_000);
    const register = await fetch(`${gw.url}/auth/register`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ email: `k${Date.now()}@example.com`, password: 'Correct-Horse-9' }),
    });
    assert.equal(register.status, 201);
    const token = ((await register.json()) as { access_token: string }).access_token;
    const jwks = async (): Promise<string> => JSON.stringify(await (await fetch(`${gw.url}/.well-known/jwks.json`)).json());
    const before = await jwks();

    writeKey(keyFile); // the rotation, in place
    const reload = await fetch(`http://127.0.0.1:${adminPort}/reload`, { method: 'POST' });
    const body = (await reload.json()) as { status?: string; reason?: string };
    assert.notEqual(body.status, 'reloaded', JSON.stringify(body));
    assert.match(String(body.reason), /key files .*changed on disk/);

    // A worker dies; its replacement reads the new key: it must not serve with it.
    const [first] = workerPids(gw.child.pid!);
    process.kill(first!, 'SIGKILL');
    await waitFor(() => gw.stderr().includes('jwt: the key files'), 'the replacement refused the new key', 20_000);
    assert.ok(alive(gw.child.pid!), 'the primary runs on');
    for (let i = 0; i < 6; i++) {
      const res = await fetch(`${gw.url}/p${i}`, { headers: { authorization: `Bearer ${token}`, connection: 'close' } });
      assert.equal(res.status, 200, `request ${i}`);
      assert.equal(await jwks(), before, 'one key published');
    }
  } finally {
    await endGroup(gw);
    await backend.stop();
    await deleteRedisKeys(REDIS_URL, keyPrefix);
    rmSync(dir, { recursive: true, force: true });
  }
});
