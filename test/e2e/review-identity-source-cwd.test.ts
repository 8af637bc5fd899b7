// A gateway run from the TypeScript sources (what bin/portcullis.js does whenever src/ is newer than the build) in a
// working directory other than the checkout: its password hashing process must start there too. It was forked with
// `--import tsx`, a bare name resolved from the working directory, so outside the checkout the child died at once
// (a Node stack trace on stderr), every register answered 500 and every login with a right password 401.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { startBackend } from '../helpers/backends.js';
import { startProcess, upstreams, writeConfig, type GatewayProcess } from '../helpers/gateway.js';
import { createClient } from '../helpers/http.js';
import { FAST_ARGON2, TEST_SECRET } from '../helpers/auth-gateway.js';

const CLI = new URL('../../src/cli.ts', import.meta.url).href;
/** bin/portcullis.js's source branch, word for word, with tsx found from the checkout as bin finds it. */
const TSX_API = import.meta.resolve('tsx/esm/api');

test('a gateway run from the sources outside the checkout registers and logs users in', { timeout: 60_000 }, async () => {
  const backend = await startBackend('echo');
  const cwd = mkdtempSync(join(tmpdir(), 'portcullis-elsewhere-'));
  const client = createClient();
  let gw: GatewayProcess | undefined;
  try {
    const config = writeConfig({
      load_balancing: { upstreams: upstreams([backend.port]) },
      jwt: { secret: TEST_SECRET },
      middleware: { auth: { enabled: true, argon2: FAST_ARGON2 } },
      admin: { enabled: false },
    });
    const script = [
      `const { register } = await import(${JSON.stringify(TSX_API)});`,
      'register();',
      `const cli = await import(${JSON.stringify(CLI)});`,
      `process.exitCode = await cli.main(${JSON.stringify(['start', '--config', config])});`,
    ].join('\n');
    gw = await startProcess(process.execPath, ['--input-type=module', '-e', script], config, { cwd, timeoutMs: 45_000 });

    const user = { email: 'elsewhere@example.com', password: 'Elsewhere-Pass-1' };
    const registered = await client.postJson(`${gw.url}/auth/register`, user);
    assert.equal(registered.status, 201, registered.text);
    const login = await client.postJson(`${gw.url}/auth/login`, user);
    assert.equal(login.status, 200, login.text);
    const wrong = await client.postJson(`${gw.url}/auth/login`, { ...user, password: 'not-the-password' });
    assert.equal(wrong.status, 401);
    assert.doesNotMatch(gw.stderr(), /ERR_MODULE_NOT_FOUND|\n\s+at /, 'no stack trace from the hashing process');
  } finally {
    await client.close();
    await gw?.cleanup();
    await backend.stop();
    rmSync(cwd, { recursive: true, force: true });
  }
});
