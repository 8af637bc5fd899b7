// Asymmetric signing through the gateway: the JWKS publishes the public key and a backend can verify tokens with it.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SignJWT, createRemoteJWKSet, exportJWK, jwtVerify, type JWK } from 'jose';
import { bearer, proxiedGet, register, startAuthStack, type AuthStack } from '../helpers/auth-gateway.js';

const keyDir = mkdtempSync(join(tmpdir(), 'portcullis-keys-'));
after(() => rmSync(keyDir, { recursive: true, force: true }));

/** Writes a fresh PEM key pair; returns the file paths and the public JWK a verifier should see. */
async function writeKeyPair(kind: 'ed25519' | 'rsa'): Promise<{ privateFile: string; publicFile: string; jwk: JWK }> {
  const { privateKey, publicKey } =
    kind === 'ed25519' ? generateKeyPairSync('ed25519') : generateKeyPairSync('rsa', { modulusLength: 2048 });
  const privateFile = join(keyDir, `${kind}.key.pem`);
  const publicFile = join(keyDir, `${kind}.pub.pem`);
  writeFileSync(privateFile, privateKey.export({ type: 'pkcs8', format: 'pem' }), { mode: 0o600 });
  writeFileSync(publicFile, publicKey.export({ type: 'spki', format: 'pem' }));
  return { privateFile, publicFile, jwk: await exportJWK(publicKey) };
}

for (const { alg, kind } of [
  { alg: 'EdDSA', kind: 'ed25519' },
  { alg: 'RS256', kind: 'rsa' },
] as const) {
  describe(`jwt.algorithm: ${alg}`, () => {
    let stack: AuthStack;
    let expected: JWK;
    let publicFile: string;
    before(async () => {
      const pair = await writeKeyPair(kind);
      expected = pair.jwk;
      publicFile = pair.publicFile;
      stack = await startAuthStack({
        jwt: { secret: '', algorithm: alg, private_key_file: pair.privateFile, public_key_file: pair.publicFile },
      });
    });
    after(() => stack.close());

    test('GET /.well-known/jwks.json publishes the public key, and only it', async () => {
      const res = await stack.client.request(`${stack.url}/.well-known/jwks.json`);
      assert.equal(res.status, 200, res.text);
      assert.match(String(res.headers['content-type']), /^application\/json/);
      const { keys } = res.json<{ keys: Array<JWK & { kid?: string }> }>();
      assert.equal(keys.length, 1);
      const key = keys[0]!;
      assert.equal(key.alg, alg);
      assert.equal(key.use, 'sig');
      assert.equal(key.kty, expected.kty);
      if (kind === 'ed25519') {
        assert.equal(key.crv, 'Ed25519');
        assert.equal(key.x, expected.x);
      } else {
        assert.equal(key.n, expected.n);
        assert.equal(key.e, expected.e);
      }
      assert.equal(typeof key.kid, 'string');
      for (const privateField of ['d', 'p', 'q', 'dp', 'dq', 'qi']) assert.equal(key[privateField as keyof JWK], undefined);
    });

    test('a token from login verifies against the remote JWKS, as a backend would do it', async () => {
      const user = await register(stack);
      const login = await stack.client.postJson(`${stack.url}/auth/login`, { email: user.email, password: user.password });
      assert.equal(login.status, 200);
      const token = login.json<{ access_token: string }>().access_token;

      const jwks = createRemoteJWKSet(new URL(`${stack.url}/.well-known/jwks.json`));
      const { payload, protectedHeader } = await jwtVerify(token, jwks, {
        algorithms: [alg],
        issuer: 'portcullis',
        audience: 'portcullis',
      });
      assert.equal(protectedHeader.alg, alg);
      assert.equal(typeof protectedHeader.kid, 'string');
      assert.equal(payload.sub, user.user_id);
      assert.equal(payload.email, user.email);
      assert.equal(typeof payload.jti, 'string');

      // The gateway itself accepts it too.
      const { res, upstream } = await proxiedGet(stack, '/', bearer(token));
      assert.equal(res.status, 200);
      assert.equal(upstream?.['x-user-id'], user.user_id);
    });

    test('a token whose signature was altered fails the JWKS verification and the gateway', async () => {
      const user = await register(stack);
      const [h, p, s] = user.access_token.split('.') as [string, string, string];
      const bad = `${h}.${p}.${s.startsWith('A') ? 'B' : 'A'}${s.slice(1)}`;
      const jwks = createRemoteJWKSet(new URL(`${stack.url}/.well-known/jwks.json`));
      await assert.rejects(jwtVerify(bad, jwks, { algorithms: [alg] }));
      const { res } = await proxiedGet(stack, '/', bearer(bad));
      assert.equal(res.status, 401);
    });

    test('algorithm confusion: an HS256 token keyed with the published public key is refused', async () => {
      const pem = new TextEncoder().encode(readFileSync(publicFile, 'utf8'));
      const now = Math.floor(Date.now() / 1000);
      const forged = await new SignJWT({ email: 'admin@example.com' })
        .setProtectedHeader({ alg: 'HS256', typ: 'at+jwt' })
        .setSubject('00000000-0000-4000-8000-000000000000')
        .setIssuer('portcullis')
        .setAudience('portcullis')
        .setIssuedAt(now)
        .setExpirationTime(now + 300)
        .setJti('forged')
        .sign(pem);
      const hits = stack.backend.hits;
      const { res } = await proxiedGet(stack, '/', bearer(forged));
      assert.equal(res.status, 401);
      assert.equal(stack.backend.hits, hits);
    });

    test('the JWKS answers HEAD and refuses POST with 405', async () => {
      const head = await stack.client.request(`${stack.url}/.well-known/jwks.json`, { method: 'HEAD' });
      assert.equal(head.status, 200);
      const post = await stack.client.request(`${stack.url}/.well-known/jwks.json`, { method: 'POST' });
      assert.equal(post.status, 405);
      assert.match(String(post.headers.allow), /GET/);
    });
  });
}

describe('jwt.algorithm: HS256', () => {
  let stack: AuthStack;
  before(async () => {
    stack = await startAuthStack();
  });
  after(() => stack.close());

  test('the JWKS path is 404: a shared secret is never published', async () => {
    const res = await stack.client.request(`${stack.url}/.well-known/jwks.json`);
    assert.equal(res.status, 404);
    assert.ok(!res.text.includes('portcullis-e2e-secret'));
  });
});
