// `portcullis users set-password` waits for its hash however long it takes: middleware.auth.argon2.timeout bounds
// the gateway's hashes, not the CLI's. With the bound, a starved hashing process (SIGSTOP stands in) made the command
// print "password hashing timed out", wait for the hash all the same (its call holds the hashing process's channel)
// and leave the password unchanged (found by review). An operator at a terminal can stop it with Ctrl-C.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { startBackend, type TestBackend } from '../helpers/backends.js';
import { startInProcess, tempDataDir, upstreams, writeConfig, type InProcessGateway } from '../helpers/gateway.js';
import { createClient } from '../helpers/http.js';
import { runPortcullis } from '../helpers/identity.js';
import { cliHashChild } from '../helpers/hash-children.js';
import { sleep } from '../helpers/wait.js';
import { FAST_ARGON2, register, TEST_SECRET } from '../helpers/auth-gateway.js';

const client = createClient();
let backend: TestBackend;
let gw: InProcessGateway;
const dataDir = tempDataDir();
let configFile: string;

function configFor() {
  return {
    load_balancing: { upstreams: upstreams([backend.port]) },
    jwt: { secret: TEST_SECRET },
    middleware: { auth: { enabled: true, argon2: { ...FAST_ARGON2, timeout: '1s' } }, rate_limit: { auth: { enabled: false } } },
  };
}

before(async () => {
  backend = await startBackend('echo');
  configFile = writeConfig(configFor());
  gw = await startInProcess(configFor(), dataDir);
});
after(async () => {
  await gw?.close();
  await client.close();
  await backend?.stop();
});

test('users set-password with its hashing process starved past argon2.timeout: it waits, then sets the password (exit 0)', async () => {
  const user = await register({ client, url: gw.url });
  const started = performance.now();
  let endedAt: number | undefined;
  const running = runPortcullis(['users', 'set-password', user.email, '--config', configFile], {
    stdin: 'Brand-new-password-9\n',
    env: { PORTCULLIS_DATA_DIR: dataDir },
  }).then((r) => {
    endedAt = performance.now() - started;
    return r;
  });
  const hasher = await cliHashChild();
  process.kill(hasher, 'SIGSTOP');
  await sleep(5_000);
  const endedWhileStopped = endedAt;
  process.kill(hasher, 'SIGCONT');
  const done = await running;
  const login = await client.postJson(`${gw.url}/auth/login`, { email: user.email, password: 'Brand-new-password-9' });
  assert.equal(endedWhileStopped, undefined);
  assert.equal(done.code, 0, done.stderr);
  assert.equal(login.status, 200, 'the new password works');
});
