// What was wrong: one access token had several spellings the gateway accepted. base64url decoders ignore a
// signature's unused trailing bits and accept `=` padding, so the token with its last signature character changed
// in those bits (4 spellings of an HS256 token, 16 of an EdDSA or RS256 one), or with `=` after it, verified as the
// token itself: each was served 200 and forwarded upstream as sent. A backend that keeps a deny list of token
// strings (or of their hashes), or caches by the string, met a token it did not know; the gateway's verified-token
// cache held one entry per spelling.
// What is right now: only the token as it was issued is accepted: a JWT with padding or with a signature that is not
// the canonical base64url of its bytes gets 401 invalid_token and never reaches the backend, with every algorithm.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { bearer, proxiedGet, register, startAuthStack, type AuthStack } from '../helpers/auth-gateway.js';

const keyDir = mkdtempSync(join(tmpdir(), 'portcullis-spellings-'));
after(() => rmSync(keyDir, { recursive: true, force: true }));

function writeKeyPair(kind: 'ed25519' | 'rsa'): { privateFile: string; publicFile: string } {
  const { privateKey, publicKey } =
    kind === 'ed25519' ? generateKeyPairSync('ed25519') : generateKeyPairSync('rsa', { modulusLength: 2048 });
  const privateFile = join(keyDir, `${kind}.key.pem`);
  const publicFile = join(keyDir, `${kind}.pub.pem`);
  writeFileSync(privateFile, privateKey.export({ type: 'pkcs8', format: 'pem' }), { mode: 0o600 });
  writeFileSync(publicFile, publicKey.export({ type: 'spki', format: 'pem' }));
  return { privateFile, publicFile };
}

const ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';

/** Every other spelling of `token` whose signature decodes to the same bytes: its last character's unused bits set otherwise. */
function sameBytesSpellings(token: string): string[] {
  const dot = token.lastIndexOf('.');
  const signature = token.slice(dot + 1);
  const bytes = Buffer.from(signature, 'base64url').length;
  const unusedBits = signature.length * 6 - bytes * 8;
  assert.ok(unusedBits > 0, 'the signature has unused bits to play with');
  const last = ALPHABET.indexOf(signature.at(-1)!);
  const spellings: string[] = [];
  for (let low = 0; low < 1 << unusedBits; low++) {
    const index = (last >> unusedBits << unusedBits) | low;
    if (index === last) continue;
    const variant = `${token.slice(0, -1)}${ALPHABET[index]}`;
    // The premise: a lenient decoder reads the same signature.
    assert.deepEqual(Buffer.from(variant.slice(dot + 1), 'base64url'), Buffer.from(signature, 'base64url'));
    spellings.push(variant);
  }
  return spellings;
}

const CASES = [
  { name: 'HS256', jwt: {} },
  { name: 'EdDSA', jwt: { secret: '', algorithm: 'EdDSA', ...keyFiles('ed25519') } },
  { name: 'RS256', jwt: { secret: '', algorithm: 'RS256', ...keyFiles('rsa') } },
] as const;

function keyFiles(kind: 'ed25519' | 'rsa'): { private_key_file: string; public_key_file: string } {
  const pair = writeKeyPair(kind);
  return { private_key_file: pair.privateFile, public_key_file: pair.publicFile };
}

for (const { name, jwt } of CASES) {
  describe(`jwt.algorithm ${name}`, () => {
    let stack: AuthStack;
    before(async () => {
      stack = await startAuthStack({ jwt });
    });
    after(() => stack?.close());

    test('only the token as issued is accepted; padded or same-bytes spellings are 401 and reach no backend', async () => {
      const { access_token: token } = await register(stack);
      const issued = await proxiedGet(stack, '/x', bearer(token));
      assert.equal(issued.res.status, 200, 'the token as issued is served');
      assert.equal(issued.upstream?.authorization, `Bearer ${token}`);

      const spellings = [`${token}=`, `${token}==`, ...sameBytesSpellings(token)];
      for (const spelling of spellings) {
        const { res, upstream } = await proxiedGet(stack, '/x', bearer(spelling));
        assert.equal(res.status, 401, `${spelling.slice(-6)}: ${res.status} ${String(upstream?.authorization ?? '').slice(-8)}`);
        assert.equal(upstream, undefined);
        assert.match(String(res.headers['www-authenticate']), /error="invalid_token"/);
      }
      // And the token as issued still passes afterwards (nothing of the refusals stuck to it).
      assert.equal((await proxiedGet(stack, '/x', bearer(token))).res.status, 200);
    });

    test('a spelling first seen before the token as issued is refused too (the verified-token cache keys by the exact string)', async () => {
      const { access_token: token } = await register(stack);
      const [variant] = sameBytesSpellings(token);
      assert.equal((await proxiedGet(stack, '/x', bearer(variant!))).res.status, 401);
      assert.equal((await proxiedGet(stack, '/x', bearer(token))).res.status, 200);
      assert.equal((await proxiedGet(stack, '/x', bearer(variant!))).res.status, 401);
    });
  });
}
