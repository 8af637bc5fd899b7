// The authenticate phase through a real socket: challenges, public paths, identity headers, KV outage policy; plus JWKS and rehash.
import { generateKeyPairSync } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createRedisKvStore } from '../kv/redis.js';
import { createClient } from '../../test/helpers/http.js';
import { startAuthServer, type AuthServer } from '../../test/helpers/auth-server.js';
import { withBadSignature } from '../../test/helpers/tokens.js';

const client = createClient();
const PASSWORD = 'SecurePass123!';
let n = 0;
const email = (): string => `phase${n++}-${process.pid}@example.com`;
after(() => client.close());

async function accessToken(server: AuthServer): Promise<string> {
  const res = await client.postJson(`${server.url}/auth/register`, { email: email(), password: PASSWORD });
  return String(res.json().access_token);
}

describe('authenticate phase', () => {
  let server: AuthServer;
  before(async () => {
    server = await startAuthServer({
      auth: { public_paths: ['/public', '/open/*'], user_id_header: 'X-Caller', user_email_header: 'X-Caller-Email' },
    });
  });
  after(() => server.close());
  const get = (path: string, headers: Record<string, string> = {}) => client.request(`${server.url}${path}`, { headers });

  test('no token: 401 with a bare Bearer challenge and a JSON body', async () => {
    const cases: Record<string, string>[] = [{}, { authorization: 'Basic dXNlcjpwYXNz' }];
    for (const headers of cases) {
      const res = await get('/api', headers);
      assert.equal(res.status, 401);
      assert.equal(res.headers['www-authenticate'], 'Bearer');
      assert.equal(res.json().error, 'Unauthorized');
    }
  });

  test('a bad, tampered, or empty token: 401 with error="invalid_token"', async () => {
    const good = await accessToken(server);
    for (const token of ['garbage', withBadSignature(good), '']) {
      const res = await get('/api', { authorization: `Bearer ${token}` });
      assert.equal(res.status, 401);
      assert.equal(res.headers['www-authenticate'], 'Bearer error="invalid_token"');
    }
  });

  test('a valid token passes and the upstream gets the identity under the configured names', async () => {
    const token = await accessToken(server);
    const res = await get('/api', { authorization: `bearer ${token}`, 'x-caller': 'admin', 'x-caller-email': 'root@example.com' });
    assert.equal(res.status, 200);
    const echoed = res.json<{ headers: Record<string, string> }>();
    const body = { user: JSON.parse(echoed.headers['x-test-caller']!) as { id: string; email: string }, headers: echoed.headers };
    assert.equal(body.headers['x-caller'], body.user.id);
    assert.equal(body.headers['x-caller-email'], body.user.email);
    assert.notEqual(body.user.id, 'admin');
  });

  test('public paths (exact, or prefix with *) need no token, and client identity headers are removed there', async () => {
    for (const path of ['/public', '/open/', '/open/a/b']) {
      const res = await get(path, { 'x-caller': 'admin', 'x-caller-email': 'root@example.com' });
      assert.equal(res.status, 200, path);
      const headers = res.json<{ headers: Record<string, string> }>().headers;
      assert.equal(headers['x-caller'], undefined);
      assert.equal(headers['x-caller-email'], undefined);
    }
    assert.equal((await get('/public/more')).status, 401, 'an exact entry is not a prefix');
    assert.equal((await get('/publicity')).status, 401);
  });
});

describe('identity headers with auth disabled', () => {
  test('client-sent X-User-Id / X-User-Email are removed and no token is needed', async () => {
    const server = await startAuthServer({ auth: { enabled: false } });
    try {
      const res = await client.request(`${server.url}/api`, { headers: { 'x-user-id': 'admin', 'X-User-Email': 'root@example.com' } });
      assert.equal(res.status, 200);
      const headers = res.json<{ headers: Record<string, string> }>().headers;
      assert.equal(headers['x-user-id'], undefined);
      assert.equal(headers['x-user-email'], undefined);
    } finally {
      await server.close();
    }
  });
});

describe('revocation list outage (on_store_error)', () => {
  // A Redis store pointed at a port where nothing listens: every command fails with KvUnavailableError.
  for (const policy of ['deny', 'allow'] as const) {
    test(`${policy}: ${policy === 'deny' ? '503 KV_UNAVAILABLE' : 'the token is accepted'}`, async () => {
      const kv = createRedisKvStore({ url: 'redis://127.0.0.1:1', commandTimeoutMs: 200, connectTimeoutMs: 200 });
      const server = await startAuthServer({ kv, auth: { on_store_error: policy } });
      try {
        const token = await accessToken(server);
        const res = await client.request(`${server.url}/api`, { headers: { authorization: `Bearer ${token}` } });
        assert.equal(res.status, policy === 'deny' ? 503 : 200);
        if (policy === 'deny') assert.equal(res.headers['retry-after'], '5');
      } finally {
        await server.close();
        await kv.close();
      }
    });
  }
});

describe('EdDSA keys', () => {
  const dir = mkdtempSync(join(tmpdir(), 'portcullis-eddsa-'));
  after(() => rmSync(dir, { recursive: true, force: true }));

  test('tokens verify and /.well-known/jwks.json publishes the public key (GET only)', async () => {
    const pair = generateKeyPairSync('ed25519');
    const priv = join(dir, 'priv.pem');
    writeFileSync(priv, pair.privateKey.export({ format: 'pem', type: 'pkcs8' }));
    const server = await startAuthServer({ jwt: { algorithm: 'EdDSA', private_key_file: priv, secret: '' } });
    try {
      const jwks = await client.request(`${server.url}/.well-known/jwks.json`);
      assert.equal(jwks.status, 200);
      const key = jwks.json<{ keys: Record<string, string>[] }>().keys[0]!;
      assert.equal(key.kty, 'OKP');
      assert.equal(key.alg, 'EdDSA');
      assert.equal(key.use, 'sig');
      assert.equal(typeof key.kid, 'string');
      assert.equal(key.d, undefined);
      const post = await client.postJson(`${server.url}/.well-known/jwks.json`, {});
      assert.equal(post.status, 405);
      assert.equal(post.headers.allow, 'GET, HEAD');
      const token = await accessToken(server);
      assert.equal(JSON.parse(Buffer.from(token.split('.')[0]!, 'base64url').toString()).kid, key.kid);
      assert.equal((await client.request(`${server.url}/api`, { headers: { authorization: `Bearer ${token}` } })).status, 200);
    } finally {
      await server.close();
    }
  });
});

describe('password re-hash at login', () => {
  test('a hash made with older argon2 parameters is replaced at the next successful login', async () => {
    const old = await startAuthServer();
    const address = email();
    try {
      await client.postJson(`${old.url}/auth/register`, { email: address, password: PASSWORD });
      const before = (await old.store.findUserByEmail(address))!.passwordHash;
      const current = await startAuthServer({ store: old.store, auth: { argon2: { memory_kib: 2048, iterations: 2, parallelism: 1 } } });
      try {
        assert.equal((await client.postJson(`${current.url}/auth/login`, { email: address, password: 'WrongPass999!' })).status, 401);
        assert.equal((await old.store.findUserByEmail(address))!.passwordHash, before, 'a failed login re-hashes nothing');
        assert.equal((await client.postJson(`${current.url}/auth/login`, { email: address, password: PASSWORD })).status, 200);
        const after = (await old.store.findUserByEmail(address))!.passwordHash;
        assert.notEqual(after, before);
        assert.match(after, /m=2048/);
        assert.match(after, /t=2/);
        assert.equal((await client.postJson(`${current.url}/auth/login`, { email: address, password: PASSWORD })).status, 200);
      } finally {
        await current.close();
      }
    } finally {
      await old.close();
    }
  });
});
