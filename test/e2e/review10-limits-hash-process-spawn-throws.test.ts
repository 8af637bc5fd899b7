// What was wrong: bc53eee made a hashing process that could not be started a 503 password_hasher_busy, but only for
// the fork failures node reports as an 'error' event (EMFILE, ENFILE, EAGAIN, ENOENT, EACCES). The others node throws
// from fork() itself: ENOMEM (the host out of memory) and E2BIG (an environment too large to exec, such as a .env
// value over 128 KiB). Thrown inside the login's verify, that was taken for a mismatch: the right password refused
// with 401 invalid_credentials for as long as it lasted, and a registration was a 500.
// What is right now: a fork that throws is a HashProcessStartError like one that reports an 'error': 503
// password_hasher_busy with Retry-After for a login and a registration alike. (E2BIG is the one a test can cause
// without starving the host: a .env value of 200 KB, which the gateway reads into its environment after its own exec.)
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startBackend } from '../helpers/backends.js';
import { AUTH_PROTECTIONS_OFF, FAST_ARGON2, TEST_SECRET } from '../helpers/auth-gateway.js';
import { spawnGateway, tempDataDir, upstreams } from '../helpers/gateway.js';

const cleanups: Array<() => Promise<void> | void> = [];
after(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup();
});

async function post(url: string, json: unknown): Promise<{ status: number; retryAfter: string | null; body: string }> {
  const res = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(json) });
  return { status: res.status, retryAfter: res.headers.get('retry-after'), body: await res.text() };
}

test('a hashing process whose fork throws (E2BIG) is a 503 for a login and a registration, never a 401 for the right password', async () => {
  const b = await startBackend('echo');
  cleanups.push(() => b.stop());
  const dataDir = tempDataDir();
  cleanups.push(() => rmSync(dataDir, { recursive: true, force: true }));
  const config = {
    admin: { enabled: false },
    load_balancing: { upstreams: upstreams([b.port]) },
    jwt: { secret: TEST_SECRET },
    middleware: { auth: { enabled: true, argon2: FAST_ARGON2 }, rate_limit: AUTH_PROTECTIONS_OFF },
  };
  const user = { email: 'big-env@example.com', password: 'SecurePass123!' };
  // First run: the user registered, with an ordinary environment.
  const first = await spawnGateway(config, { dataDir });
  cleanups.push(() => first.cleanup());
  assert.equal((await post(`${first.url}/auth/register`, user)).status, 201);
  await first.cleanup();

  // Second run, on the same store, from a directory whose .env holds a value too large for any exec.
  const cwd = mkdtempSync(join(tmpdir(), 'portcullis-big-env-'));
  cleanups.push(() => rmSync(cwd, { recursive: true, force: true }));
  writeFileSync(join(cwd, '.env'), `PORTCULLIS_TEST_BIG=${'x'.repeat(200_000)}\n`);
  const gw = await spawnGateway(config, { dataDir, cwd });
  cleanups.push(() => gw.cleanup());
  const login = await post(`${gw.url}/auth/login`, user);
  assert.equal(login.status, 503, `the right password is not refused as a wrong one: ${login.body}`);
  assert.equal(JSON.parse(login.body).code, 'password_hasher_busy');
  assert.equal(login.retryAfter, '1');
  const register = await post(`${gw.url}/auth/register`, { email: 'other@example.com', password: 'SecurePass123!' });
  assert.equal(register.status, 503, register.body);
  // An unknown email is answered as the known one (no enumeration by status).
  const unknown = await post(`${gw.url}/auth/login`, { email: 'nobody@example.com', password: 'SecurePass123!' });
  assert.equal(unknown.status, 503, unknown.body);
  assert.equal(gw.child.exitCode, null, 'the gateway is still running');
});
