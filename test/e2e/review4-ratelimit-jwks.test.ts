// Review 4 (rate limit): the JWKS document is public key material for backends that verify tokens themselves
// (README, "At 100×"); it must not be counted in the strict brute-force bucket of /auth/* (5 a client address by
// default, shared with that address's logins), nor refused with 503 when Redis is away under the auth API's
// on_store_error deny. Before: the sixth fetch from one address got 429, and every fetch 503 while Redis was down.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startBackend } from '../helpers/backends.js';
import { startInProcess, upstreams } from '../helpers/gateway.js';
import { createClient } from '../helpers/http.js';
import { FAST_ARGON2, freePort, PASSWORD, redisServerInstalled, runId, ThrowawayRedis } from './ratelimit-helpers.js';

const keyDir = mkdtempSync(join(tmpdir(), 'portcullis-r4-jwks-'));
const { privateKey, publicKey } = generateKeyPairSync('ed25519');
const privateFile = join(keyDir, 'k.pem');
const publicFile = join(keyDir, 'k.pub.pem');
writeFileSync(privateFile, privateKey.export({ type: 'pkcs8', format: 'pem' }), { mode: 0o600 });
writeFileSync(publicFile, publicKey.export({ type: 'spki', format: 'pem' }));

const client = createClient();
const backend = await startBackend('one');
after(async () => {
  await client.close();
  await backend.stop();
  rmSync(keyDir, { recursive: true, force: true });
});

const installed = await redisServerInstalled();

function gatewayConfig(redis: Record<string, unknown> | undefined): Record<string, unknown> {
  return {
    ...(redis === undefined ? {} : { redis }),
    jwt: { secret: '', algorithm: 'EdDSA', private_key_file: privateFile, public_key_file: publicFile },
    load_balancing: { upstreams: upstreams([backend.port]) },
    middleware: {
      auth: { enabled: true, argon2: FAST_ARGON2 },
      // The auth API's bucket: 3 requests an address, one token back a minute.
      rate_limit: { enabled: true, auth: { requests_per_minute: 1, burst_size: 3 } },
    },
  };
}

test('JWKS fetches are not counted in the /auth/* bucket, and leave it to the logins', async () => {
  const gw = await startInProcess(gatewayConfig(undefined));
  try {
    for (let i = 0; i < 10; i++) {
      const res = await client.request(`${gw.url}/.well-known/jwks.json`);
      assert.equal(res.status, 200, `fetch ${i + 1}: ${res.text}`);
      assert.equal(res.headers['ratelimit-remaining'], undefined, 'the JWKS is not a limited request');
    }
    // The /auth/* bucket of this address is still whole: three requests pass it, the fourth meets it.
    const email = `r4-jwks-${runId()}@example.test`;
    const statuses: number[] = [];
    for (let i = 0; i < 4; i++) {
      const res = await client.postJson(`${gw.url}/auth/${i === 0 ? 'register' : 'login'}`, { email, password: PASSWORD });
      statuses.push(res.status);
    }
    assert.deepEqual(statuses, [201, 200, 200, 429]);
  } finally {
    await gw.close();
  }
});

test('JWKS is served while Redis is away (auth on_store_error deny)', { skip: installed ? false : 'redis-server not installed' }, async () => {
  const redis = new ThrowawayRedis(await freePort());
  await redis.start();
  const gw = await startInProcess(gatewayConfig({ url: redis.url, key_prefix: `portcullis-test:r4-jwks:${runId()}:` }));
  try {
    await redis.kill();
    const res = await client.request(`${gw.url}/.well-known/jwks.json`);
    assert.equal(res.status, 200, res.text);
    // The auth API itself still fails closed.
    const login = await client.postJson(`${gw.url}/auth/login`, { email: 'nobody@example.test', password: PASSWORD });
    assert.equal(login.status, 503, login.text);
  } finally {
    await gw.close();
    await redis.kill();
  }
});
