// Key loading: the HS256 secret rules, the generated secret file (0600, reused), PEM key pairs and the JWKS.
import { generateKeyPairSync } from 'node:crypto';
import { chmodSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { Logger } from 'pino';
import { ConfigError } from '../config/load.js';
import { loadSigningKeys, SECRET_FILE_NAME } from './keys.js';
import { TokenService } from './tokens.js';

const root = mkdtempSync(join(tmpdir(), 'portcullis-keys-'));
after(() => rmSync(root, { recursive: true, force: true }));
let n = 0;
const dir = (): string => join(root, `d${n++}`);

const warnings: string[] = [];
const logger = {
  warn: (...args: unknown[]): void => {
    warnings.push(String(args[1]));
  },
} as unknown as Pick<Logger, 'warn'>;
const hs = { algorithm: 'HS256' as const, private_key_file: '', public_key_file: '' };

function pemPair(type: 'ed25519' | 'rsa' | 'ec'): { priv: string; pub: string } {
  const pair =
    type === 'rsa'
      ? generateKeyPairSync('rsa', { modulusLength: 2048 })
      : type === 'ec'
        ? generateKeyPairSync('ec', { namedCurve: 'P-256' })
        : generateKeyPairSync('ed25519');
  n++;
  const priv = join(root, `${type}-${n}-priv.pem`);
  const pub = join(root, `${type}-${n}-pub.pem`);
  writeFileSync(priv, pair.privateKey.export({ format: 'pem', type: 'pkcs8' }));
  writeFileSync(pub, pair.publicKey.export({ format: 'pem', type: 'spki' }));
  return { priv, pub };
}

describe('HS256 secret', () => {
  test('a configured secret shorter than 32 bytes is a config error naming jwt.secret', async () => {
    await assert.rejects(loadSigningKeys({ jwt: { ...hs, secret: 'x'.repeat(31) }, dataDir: dir(), logger }), (err: unknown) => {
      assert.ok(err instanceof ConfigError);
      assert.match(err.message, /^jwt\.secret: /);
      assert.ok(!err.message.includes('x'.repeat(31)));
      return true;
    });
    const keys = await loadSigningKeys({ jwt: { ...hs, secret: 'y'.repeat(32) }, dataDir: dir(), logger });
    assert.equal(keys.algorithm, 'HS256');
    assert.equal(keys.jwks, undefined);
  });

  test('an empty secret is generated once into <dataDir>/jwt-secret (0600, with a warning) and reused', async () => {
    const dataDir = dir();
    warnings.length = 0;
    const first = await loadSigningKeys({ jwt: { ...hs, secret: '' }, dataDir, logger });
    const file = join(dataDir, SECRET_FILE_NAME);
    assert.equal(statSync(file).mode & 0o777, 0o600);
    assert.ok(Buffer.byteLength(readFileSync(file, 'utf8')) >= 32);
    assert.equal(warnings.length, 1);
    assert.ok(!warnings[0]!.includes(readFileSync(file, 'utf8')));

    const second = await loadSigningKeys({ jwt: { ...hs, secret: '' }, dataDir, logger });
    assert.equal(warnings.length, 1, 'no new warning when reusing');
    // A token from the first start verifies after the "restart".
    const opts = { issuer: 'i', audience: 'a', accessTokenTtlMs: 60_000 };
    const { token } = await new TokenService({ keys: first, ...opts }).issue({ id: 'u', email: 'u@example.com' });
    assert.equal((await new TokenService({ keys: second, ...opts }).verify(token)).userId, 'u');
  });

  test('JWT_SECRET set while the config leaves jwt.secret empty: a warning that it is not read', async () => {
    warnings.length = 0;
    await loadSigningKeys({ jwt: { ...hs, secret: '' }, dataDir: dir(), logger, env: { JWT_SECRET: 'z'.repeat(40) } });
    assert.ok(warnings.some((w) => w.startsWith('JWT_SECRET is set but the config does not read it')), warnings.join(' | '));
    assert.ok(!warnings.some((w) => w.includes('z'.repeat(40))), 'the value is never logged');
    warnings.length = 0;
    await loadSigningKeys({ jwt: { ...hs, secret: 'y'.repeat(32) }, dataDir: dir(), logger, env: { JWT_SECRET: 'y'.repeat(32) } });
    await loadSigningKeys({ jwt: { ...hs, secret: '' }, dataDir: dir(), logger, env: { JWT_SECRET: '' } });
    assert.ok(!warnings.some((w) => w.startsWith('JWT_SECRET')), 'read, or set empty: no such warning');
  });

  test('concurrent first starts agree on one secret', async () => {
    const dataDir = dir();
    const all = await Promise.all([1, 2, 3].map(() => loadSigningKeys({ jwt: { ...hs, secret: '' }, dataDir, logger })));
    const exported = all.map((k) => k.signKey.export().toString('hex'));
    assert.equal(new Set(exported).size, 1);
  });

  test('a secret file readable by others is tightened back to 0600', async () => {
    const dataDir = dir();
    await loadSigningKeys({ jwt: { ...hs, secret: '' }, dataDir, logger });
    const file = join(dataDir, SECRET_FILE_NAME);
    chmodSync(file, 0o644);
    await loadSigningKeys({ jwt: { ...hs, secret: '' }, dataDir, logger });
    assert.equal(statSync(file).mode & 0o777, 0o600);
  });
});

describe('key pairs', () => {
  for (const [algorithm, type, kty] of [
    ['EdDSA', 'ed25519', 'OKP'],
    ['RS256', 'rsa', 'RSA'],
  ] as const) {
    test(`${algorithm}: loads PEM files and publishes the public key as a JWKS`, async () => {
      const { priv, pub } = pemPair(type);
      const keys = await loadSigningKeys({
        jwt: { algorithm, secret: '', private_key_file: priv, public_key_file: pub },
        dataDir: dir(),
        logger,
      });
      const jwk = keys.jwks!.keys[0]!;
      assert.equal(keys.jwks!.keys.length, 1);
      assert.equal(jwk.kty, kty);
      assert.equal(jwk.alg, algorithm);
      assert.equal(jwk.use, 'sig');
      assert.equal(jwk.kid, keys.kid);
      assert.equal(typeof jwk.kid, 'string');
      assert.equal('d' in jwk, false, 'no private part is published');
      // Without the public file, the public key is derived from the private one.
      const derived = await loadSigningKeys({
        jwt: { algorithm, secret: '', private_key_file: priv, public_key_file: '' },
        dataDir: dir(),
        logger,
      });
      assert.equal(derived.kid, keys.kid);
    });
  }

  test('missing, unreadable, wrong-kind and mismatched keys are config errors naming the key', async () => {
    const ed = pemPair('ed25519');
    const other = pemPair('ed25519');
    const ec = pemPair('ec');
    const cases: [Parameters<typeof loadSigningKeys>[0]['jwt'], RegExp][] = [
      [{ algorithm: 'EdDSA', secret: '', private_key_file: '', public_key_file: '' }, /^jwt\.private_key_file: /],
      [{ algorithm: 'EdDSA', secret: '', private_key_file: join(root, 'absent.pem'), public_key_file: '' }, /^jwt\.private_key_file: /],
      [{ algorithm: 'RS256', secret: '', private_key_file: ed.priv, public_key_file: '' }, /^jwt\.private_key_file: /],
      [{ algorithm: 'EdDSA', secret: '', private_key_file: ec.priv, public_key_file: '' }, /^jwt\.private_key_file: /],
      [{ algorithm: 'EdDSA', secret: '', private_key_file: ed.priv, public_key_file: other.pub }, /^jwt\.public_key_file: /],
      [{ algorithm: 'EdDSA', secret: '', private_key_file: ed.pub, public_key_file: '' }, /^jwt\.private_key_file: /],
    ];
    for (const [jwt, pattern] of cases) {
      await assert.rejects(loadSigningKeys({ jwt, dataDir: dir(), logger }), (err: unknown) => {
        assert.ok(err instanceof ConfigError, String(err));
        assert.match(err.message, pattern);
        return true;
      });
    }
  });
});
