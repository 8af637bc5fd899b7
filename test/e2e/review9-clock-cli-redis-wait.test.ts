// A revoking identity command (`users disable`) waits for Redis to answer a PING before it writes the revocation, at
// most 3 s (commands/context.ts), then reports the revocation pending (exit 3). That wait was timed on Date.now(): a
// wall clock stepped back 10 minutes during it (NTP, a restored snapshot) held the command 10 minutes. Here redis.url
// is a port of this test's that drops every connection; at the command's first connection (its context is open, the
// wait's deadline set) the test steps the command's wall clock back (test/helpers/clock-offset-import.mjs with a
// clock file, clock-step.ts).
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type AddressInfo, type Server } from 'node:net';
import { rmSync } from 'node:fs';
import { steppedClock, type SteppedClock } from '../helpers/clock-step.js';
import { runCli, tempDataDir, writeConfig } from '../helpers/gateway.js';
import { runPortcullis } from '../helpers/identity.js';
import { FAST_ARGON2, TEST_SECRET } from '../helpers/auth-gateway.js';
import { runId } from './ratelimit-helpers.js';
import { openUserStore } from '../../src/store/open.js';

let listener: Server | undefined;
let clock: SteppedClock | undefined;
let dataDir: string | undefined;
let stepped: Promise<void> | undefined;

before(async () => {
  dataDir = tempDataDir();
  const store = await openUserStore({ url: '', pool_size: 1 }, dataDir, { warn: () => undefined });
  await store.close();
  clock = steppedClock();
  listener = createServer((socket) => {
    stepped ??= clock!.step(-10 * 60_000);
    socket.destroy();
  });
  await new Promise<void>((resolve) => listener!.listen(0, '127.0.0.1', resolve));
});

after(() => {
  listener?.close();
  clock?.remove();
  if (dataDir !== undefined) rmSync(dataDir, { recursive: true, force: true });
});

test('users disable reports the revocation pending after its 3 s wait for Redis, though the clock stepped back', async () => {
  const configFile = writeConfig({
    load_balancing: { upstreams: [{ name: 'a', address: '127.0.0.1', port: 3000 }] },
    redis: { url: `redis://127.0.0.1:${(listener!.address() as AddressInfo).port}`, key_prefix: `portcullis-test:review9-clock-cli:${runId()}:` },
    jwt: { secret: TEST_SECRET },
    middleware: { auth: { enabled: true, argon2: FAST_ARGON2 } },
  });
  const env = { PORTCULLIS_DATA_DIR: dataDir! };
  const created = await runPortcullis(['users', 'create', 'held@example.com', '--config', configFile], { stdin: 'Correct-horse-battery-1\n', env });
  assert.equal(created.code, 0, created.stderr);
  const disabled = await runCli(['users', 'disable', 'held@example.com', '--config', configFile], { ...env, ...clock!.env }, { boundMs: 12_000 });
  assert.ok(stepped !== undefined, 'the command connected to redis.url (and its clock was stepped)');
  assert.equal(disabled.code, 3, `exit ${String(disabled.code)} (null: still waiting after 12 s): ${disabled.stderr}`);
});
