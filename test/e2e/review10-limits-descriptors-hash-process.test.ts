// What was wrong: the password-hashing process (auth/hash-process.ts) is started on first use, and restarted on the
// next call once it has died. With the gateway's descriptors used up (RLIMIT_NOFILE), that fork failed with EMFILE,
// which node reports as an 'error' event on the child: nobody listened, so the first register or login of the
// episode was an uncaught exception, and the whole gateway drained and exited 1. The request itself was a 500
// (the failed child has no send()). And a login whose hashing process could not be reached counted as a wrong
// password: 401 invalid_credentials for the right one.
// What is right now: a hashing process that cannot be started is a 503 password_hasher_busy with Retry-After, for a
// register and a login alike; the gateway runs on, and hashes again once descriptors are free.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { connectedSocket, fillDescriptors, openDescriptors, postOn, spawnLimitedAuthGateway } from '../helpers/descriptor-limit.js';
import { childrenOf } from '../helpers/workers.js';
import { waitFor } from '../helpers/wait.js';

const NOFILE = 160;
const cleanups: Array<() => Promise<void> | void> = [];
after(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup();
});

test('descriptors used up: a hashing process that cannot start is a 503, never a crash of the gateway nor a 401', async () => {
  const gw = await spawnLimitedAuthGateway(NOFILE, cleanups);
  const pid = gw.child.pid!;
  const user = { email: 'fd@example.com', password: 'SecurePass123!' };
  const early = await connectedSocket(gw.port, cleanups);
  assert.equal((await postOn(early, '/auth/register', user)).status, 201);
  // The hashing process dies; the next call would start another.
  for (const child of childrenOf(pid)) process.kill(child, 'SIGKILL');
  await waitFor(() => childrenOf(pid).length === 0, 'the hashing process gone', 5_000);

  const flood = await fillDescriptors(gw.port, pid, NOFILE);
  cleanups.push(() => flood.release());
  const login = await postOn(early, '/auth/login', user);
  assert.equal(login.status, 503, `the right password is not refused as a wrong one: ${login.body}`);
  assert.equal(JSON.parse(login.body).code, 'password_hasher_busy');
  assert.equal(login.retryAfter, '1');
  const register = await postOn(early, '/auth/register', { email: 'fd2@example.com', password: 'SecurePass123!' });
  assert.equal(register.status, 503, register.body);
  assert.equal(gw.child.exitCode, null, 'the gateway is still running');
  assert.ok(!gw.logs.some((l) => l.msg === 'Uncaught Exception'), 'no uncaught exception');

  flood.release();
  await waitFor(() => openDescriptors(pid) < NOFILE / 2, 'the flood gone', 10_000);
  const later = await connectedSocket(gw.port, cleanups);
  assert.equal((await postOn(later, '/auth/login', user)).status, 200, 'hashing again once descriptors are free');
});
