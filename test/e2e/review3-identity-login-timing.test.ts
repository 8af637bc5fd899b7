// "A wrong password and an unknown email get the same answer in about the same time" after the argon2 parameters are
// raised too. An unknown email is verified against a dummy in the current parameters; a registered user who has not
// logged in since the change still has a hash in the old ones, and a wrong password was verified against that alone:
// with 8 MiB x 1 before and 64 MiB x 3 after, such a login was answered in 30-180 ms and an unknown email in 1-1.7 s,
// so the registered emails could be told apart. Now a verify against a hash in other parameters runs the dummy beside
// it. Checked by the argon2 work each login asks of the hashing process (which parameters it verifies), not by time.
import { after, before, describe, test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { startBackend, type TestBackend } from '../helpers/backends.js';
import { createClient } from '../helpers/http.js';
import { AUTH_PROTECTIONS_OFF, FAST_ARGON2, memoryStoreGateways, register, uniqueEmail } from '../helpers/auth-gateway.js';
import { HashProcess } from '../../src/auth/hash-process.js';

/** The parameters after the change: still cheap, but other than FAST_ARGON2's. */
const RAISED = { memory_kib: 2048, iterations: 2, parallelism: 1 } as const;
const RAISED_PARAMS = `m=${RAISED.memory_kib},p=${RAISED.parallelism},t=${RAISED.iterations}`;
const OLD_PARAMS = `m=${FAST_ARGON2.memory_kib},p=${FAST_ARGON2.parallelism},t=${FAST_ARGON2.iterations}`;

/** The parameters (`m=…,p=…,t=…`) of every hash the hashing process is asked to verify against. */
function verifiedParams(t: TestContext): string[] {
  const seen: string[] = [];
  const original = HashProcess.prototype.verify;
  t.mock.method(HashProcess.prototype, 'verify', function (this: HashProcess, hash: string, password: string) {
    // argon2 writes m, p, t; the dummy m, t, p: compared in one order.
    seen.push((hash.split('$')[3] ?? '').split(',').sort().join(','));
    return original.call(this, hash, password);
  });
  return seen;
}

const client = createClient();
let backend: TestBackend;

before(async () => {
  backend = await startBackend('echo');
});
after(async () => {
  await client.close();
  await backend?.stop();
});

describe('a wrong password costs the current argon2 parameters, as an unknown email does', () => {
  const start = memoryStoreGateways(() => ({}), () => backend.port);
  const withArgon2 = (argon2: object) => ({
    middleware: { auth: { enabled: true, argon2 }, rate_limit: AUTH_PROTECTIONS_OFF },
  });

  test('a user whose hash is in the old parameters', async (t) => {
    const first = await start(withArgon2(FAST_ARGON2));
    const user = await register({ client, url: first.url });
    await first.gateway.close();

    const raised = await start(withArgon2(RAISED));
    const login = (email: string, password: string) => client.postJson(`${raised.url}/auth/login`, { email, password });
    const seen = verifiedParams(t);

    assert.equal((await login(uniqueEmail(), 'Wrong-password-1')).status, 401);
    assert.deepEqual(seen.splice(0), [RAISED_PARAMS], 'an unknown email: the dummy, in the current parameters');

    assert.equal((await login(user.email, 'Wrong-password-1')).status, 401);
    assert.deepEqual(seen.splice(0).sort(), [OLD_PARAMS, RAISED_PARAMS].sort(), 'a wrong password: its hash, and the dummy beside it');

    // The right password logs in and replaces the hash; from then on one verify in the current parameters.
    assert.equal((await login(user.email, user.password)).status, 200);
    seen.splice(0);
    assert.equal((await login(user.email, 'Wrong-password-1')).status, 401);
    assert.deepEqual(seen.splice(0), [RAISED_PARAMS], 'after the re-hash: one verify');
  });
});
