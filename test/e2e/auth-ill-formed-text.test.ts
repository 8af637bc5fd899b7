// Passwords and emails that are not well-formed Unicode (an unpaired UTF-16 surrogate, JSON's "\ud800" escape; bytes
// that are not UTF-8 on the CLI's stdin) are refused with 400 / exit 1 wherever they enter: register, login, the
// admin API and the CLI. Before, they were accepted and hashed as U+FFFD, so "\ud800", "\udfff" and "\ufffd" in the
// same place were one password.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { startBackend, type TestBackend } from '../helpers/backends.js';
import { startInProcess, tempDataDir, upstreams, writeConfig, type InProcessGateway } from '../helpers/gateway.js';
import { createClient, type TestResponse } from '../helpers/http.js';
import { ADMIN_TOKEN, adminApi, runPortcullis } from '../helpers/identity.js';
import { assertSafeError, FAST_ARGON2, TEST_SECRET } from '../helpers/auth-gateway.js';

const client = createClient();
let backend: TestBackend;
let gw: InProcessGateway;
let admin: ReturnType<typeof adminApi>;
let configFile: string;
const dataDir = tempDataDir();

const config = () => ({
  load_balancing: { upstreams: upstreams([backend.port]) },
  jwt: { secret: TEST_SECRET },
  // Many registers and logins a second from 127.0.0.1: the brute-force protections (on with auth) would answer 429.
  middleware: { auth: { enabled: true, argon2: FAST_ARGON2 }, rate_limit: { auth: { enabled: false } } },
});

before(async () => {
  backend = await startBackend('echo');
  configFile = writeConfig(config());
  gw = await startInProcess({ ...config(), admin: { token: ADMIN_TOKEN } }, dataDir);
  admin = adminApi(client, gw.adminUrl!);
});
after(async () => {
  await client.close();
  await gw?.close();
  await backend?.stop();
});

const email = () => `wf-${randomBytes(5).toString('hex')}@example.com`;
const ILL_FORMED = /well-formed Unicode/;
/** The user's password before the fix and the ones that matched its hash: one character apart, all the same bytes. */
const LONE_HIGH = 'Secure\ud800Pass123!';
const LONE_LOW = 'Secure\udfffPass123!';
const REPLACEMENT = 'Secure\ufffdPass123!';

/** A 400 whose one detail names `field` as ill-formed: invalid_body on the auth API; `{error, details}` on the admin API. */
function assertIllFormed(res: TestResponse, field: string, api: 'auth' | 'admin' = 'auth'): void {
  if (api === 'auth') assert.equal(assertSafeError(res, 400).code, 'invalid_body');
  else assert.equal(res.status, 400, res.text);
  const body = res.json();
  const details = body.details as { field: string; message: string }[];
  assert.deepEqual(
    details.map((d) => d.field),
    [field],
  );
  assert.match(details[0]!.message, ILL_FORMED);
}

const login = (address: string, password: string) => client.postJson(`${gw.url}/auth/login`, { email: address, password });

describe('ill-formed passwords and emails', () => {
  test('register refuses a password with an unpaired surrogate (high or low) with 400', async () => {
    const address = email();
    assertIllFormed(await client.postJson(`${gw.url}/auth/register`, { email: address, password: LONE_HIGH }), 'password');
    assertIllFormed(await client.postJson(`${gw.url}/auth/register`, { email: address, password: LONE_LOW }), 'password');
    // Nothing was created: the address is still free, and a well-formed password registers it.
    assert.equal((await client.postJson(`${gw.url}/auth/register`, { email: address, password: 'Secure\u{1f600}Pass123!' })).status, 201);
  });

  test('register refuses an email with an unpaired surrogate, with its own detail', async () => {
    assertIllFormed(await client.postJson(`${gw.url}/auth/register`, { email: `a\udc00${email()}`, password: 'SecurePass123!' }), 'email');
  });

  test('login: an ill-formed password is 400, never a match for a hash of U+FFFD (a user created before the rule)', async () => {
    // Before the rule, a user registered with LONE_HIGH got the hash of REPLACEMENT's bytes: made here directly.
    const address = email();
    assert.equal((await client.postJson(`${gw.url}/auth/register`, { email: address, password: REPLACEMENT })).status, 201);
    assertIllFormed(await login(address, LONE_HIGH), 'password');
    assertIllFormed(await login(address, LONE_LOW), 'password');
    // The well-formed password those bytes stand for still logs in: existing users are not locked out.
    assert.equal((await login(address, REPLACEMENT)).status, 200);
    // An unknown email with an ill-formed password is the same 400: it tells nothing about which emails exist.
    assertIllFormed(await login(email(), LONE_HIGH), 'password');
  });

  test('admin API: create and set-password refuse ill-formed passwords and emails with 400', async () => {
    assertIllFormed(await admin.post('/admin/users', { email: email(), password: LONE_HIGH }), 'password', 'admin');
    assertIllFormed(await admin.post('/admin/users', { email: `x\ud800${email()}`, password: 'SecurePass123!' }), 'email', 'admin');
    const created = await admin.post('/admin/users', { email: email(), password: 'SecurePass123!' });
    assert.equal(created.status, 201, created.text);
    const user = created.json<{ user_id: string; email: string }>();
    assertIllFormed(await admin.post(`/admin/users/${user.user_id}/password`, { password: LONE_LOW }), 'password', 'admin');
    // The password was not changed: the old one still logs in, the surrogate and its replacement do not.
    assert.equal((await login(user.email, 'SecurePass123!')).status, 200);
    assert.equal((await login(user.email, REPLACEMENT)).status, 401);
  });

  test('CLI: a password on stdin that is not UTF-8 (a CESU-8 surrogate) is refused, exit 1, nothing created', async () => {
    const address = email();
    // ED A0 80 is U+D800 encoded as if it were a character: a lenient decoder reads U+FFFD.
    const bytes = Buffer.concat([Buffer.from('Secure'), Buffer.from([0xed, 0xa0, 0x80]), Buffer.from('Pass123!\n')]);
    const run = await runPortcullis(['users', 'create', address, '--config', configFile], { stdin: bytes, env: { PORTCULLIS_DATA_DIR: dataDir } });
    assert.equal(run.code, 1, run.stderr);
    assert.match(run.stderr, /password: must be UTF-8 text/);
    assert.equal(run.auditAt, undefined, 'no action was audited');
    assert.equal((await login(address, REPLACEMENT)).status, 401, 'no user was created with the replaced password');
    // The same command with well-formed input works (the refusal was the bytes, not the command).
    const ok = await runPortcullis(['users', 'create', address, '--config', configFile], { stdin: `${REPLACEMENT}\n`, env: { PORTCULLIS_DATA_DIR: dataDir } });
    assert.equal(ok.code, 0, ok.stderr);
    assert.equal((await login(address, REPLACEMENT)).status, 200);
  });
});
