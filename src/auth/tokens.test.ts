// Access-token signing and every way verification must refuse a token.
import { createSecretKey, generateKeyPairSync, randomBytes } from 'node:crypto';
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { SignJWT, base64url } from 'jose';
import type { SigningKeys } from './keys.js';
import { ACCESS_TOKEN_TYPE, TokenError, TokenService } from './tokens.js';
import { withBadSignature } from '../../test/helpers/tokens.js';

const secret = createSecretKey(randomBytes(32));
const hsKeys: SigningKeys = { algorithm: 'HS256', kid: undefined, signKey: secret, verifyKey: secret, jwks: undefined };
const ed = generateKeyPairSync('ed25519');
const edKeys: SigningKeys = { algorithm: 'EdDSA', kid: 'k1', signKey: ed.privateKey, verifyKey: ed.publicKey, jwks: undefined };
const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 });

const opts = { issuer: 'portcullis', audience: 'portcullis', accessTokenTtlMs: 900_000 };
const hs = new TokenService({ keys: hsKeys, ...opts });
const user = { id: '2f1b3c4d-0000-4000-8000-000000000001', email: 'user@example.com' };

async function rejectsWith(promise: Promise<unknown>, reason: 'expired' | 'invalid', token: string): Promise<void> {
  await assert.rejects(promise, (err: unknown) => {
    assert.ok(err instanceof TokenError);
    assert.equal(err.reason, reason);
    for (const part of [token, ...token.split('.')].filter((x) => x.length >= 8)) {
      assert.ok(!err.message.includes(part), 'message must not echo the token');
    }
    return true;
  });
}

/** A token signed with the right key but built by hand, for claim and header variations. */
function forge(claims: Record<string, unknown>, header: Record<string, unknown> = { alg: 'HS256', typ: ACCESS_TOKEN_TYPE }) {
  const now = Math.floor(Date.now() / 1000);
  return new SignJWT({ sub: user.id, email: user.email, iss: 'portcullis', aud: 'portcullis', iat: now, exp: now + 60, jti: 'j', ...claims })
    .setProtectedHeader(header as { alg: string })
    .sign(secret);
}

describe('TokenService', () => {
  test('issues a token whose claims verify', async () => {
    const now = Date.now();
    const issued = await hs.issue(user, now);
    assert.equal(issued.expiresIn, 900);
    const claims = await hs.verify(issued.token);
    assert.deepEqual(claims, {
      userId: user.id,
      email: user.email,
      tokenId: issued.tokenId,
      expiresAt: issued.expiresAt,
      issuedAt: now,
    });
    assert.equal(issued.expiresAt, (Math.floor(now / 1000) + 900) * 1000);
    assert.match(issued.tokenId, /^[0-9a-f-]{36}$/);
    const header = JSON.parse(new TextDecoder().decode(base64url.decode(issued.token.split('.')[0]!))) as Record<string, unknown>;
    assert.deepEqual(header, { alg: 'HS256', typ: 'at+jwt' });
    const payload = JSON.parse(new TextDecoder().decode(base64url.decode(issued.token.split('.')[1]!))) as Record<string, unknown>;
    assert.equal(payload.iss, 'portcullis');
    assert.equal(payload.aud, 'portcullis');
    assert.equal((payload.exp as number) - (payload.iat as number), 900);
    assert.equal(payload.iat, Math.floor(now / 1000), 'iat stays whole seconds for other verifiers');
    assert.equal(payload.iat_ms, now);
  });

  test('the issue time in ms is used when present, iat when not, and refused when it disagrees with iat', async () => {
    const iat = Math.floor(Date.now() / 1000);
    const legacy = await forge({ iat, jti: 'legacy' });
    assert.equal((await hs.verify(legacy)).issuedAt, iat * 1000, 'a token from before the claim: whole seconds');
    const precise = await forge({ iat, iat_ms: iat * 1000 + 999, jti: 'precise' });
    assert.equal((await hs.verify(precise)).issuedAt, iat * 1000 + 999);
    for (const iatMs of [iat * 1000 + 1000, iat * 1000 - 1, iat * 1000 + 0.5, `${iat * 1000}`, null]) {
      const token = await forge({ iat, iat_ms: iatMs, jti: `bad-${String(iatMs)}` });
      await rejectsWith(hs.verify(token), 'invalid', token);
    }
  });

  test('the token generation: carried as `gen` when given, absent from a token issued without one, refused unless a count', async () => {
    const now = Date.now();
    const issued = await hs.issue(user, now, 7);
    const payload = JSON.parse(new TextDecoder().decode(base64url.decode(issued.token.split('.')[1]!))) as Record<string, unknown>;
    assert.equal(payload.gen, 7);
    assert.equal((await hs.verify(issued.token)).generation, 7);
    assert.equal((await hs.verify((await hs.issue(user, now, 0)).token)).generation, 0);
    const without = await hs.issue(user, now);
    assert.equal('generation' in (await hs.verify(without.token)), false, 'a token from before generations has none');
    const iat = Math.floor(now / 1000);
    assert.equal((await hs.verify(await forge({ iat, iat_ms: iat * 1000, gen: 3, jti: 'gen-ok' }))).generation, 3);
    for (const gen of [-1, 1.5, '3', null, 2 ** 53]) {
      const token = await forge({ iat, iat_ms: iat * 1000, gen, jti: `bad-gen-${String(gen)}` });
      await rejectsWith(hs.verify(token), 'invalid', token);
    }
  });

  test('EdDSA tokens carry the kid and verify', async () => {
    const svc = new TokenService({ keys: edKeys, ...opts });
    const { token } = await svc.issue(user);
    assert.equal((await svc.verify(token)).userId, user.id);
    assert.match(token, /^eyJ/);
  });

  test('alg "none" is refused', async () => {
    const unsigned = (await forge({})).split('.');
    const header = base64url.encode(JSON.stringify({ alg: 'none', typ: ACCESS_TOKEN_TYPE }));
    const token = `${header}.${unsigned[1]}.`;
    await rejectsWith(hs.verify(token), 'invalid', token);
  });

  test('a tampered payload or signature is refused', async () => {
    const { token } = await hs.issue(user);
    const [h, p, s] = token.split('.') as [string, string, string];
    const other = JSON.parse(new TextDecoder().decode(base64url.decode(p))) as Record<string, unknown>;
    other.sub = 'someone-else';
    const tampered = `${h}.${base64url.encode(JSON.stringify(other))}.${s}`;
    await rejectsWith(hs.verify(tampered), 'invalid', tampered);
    const badSig = withBadSignature(token);
    await rejectsWith(hs.verify(badSig), 'invalid', badSig);
  });

  test('an expired token is refused as expired', async () => {
    const { token } = await hs.issue(user, Date.now() - 2 * 900_000);
    await rejectsWith(hs.verify(token), 'expired', token);
  });

  test('a token of another type (no typ, or typ JWT) is refused', async () => {
    const plain = await forge({}, { alg: 'HS256', typ: 'JWT' });
    await rejectsWith(hs.verify(plain), 'invalid', plain);
    const untyped = await forge({}, { alg: 'HS256' });
    await rejectsWith(hs.verify(untyped), 'invalid', untyped);
  });

  test('wrong issuer or audience is refused', async () => {
    const iss = await forge({ iss: 'someone-else' });
    await rejectsWith(hs.verify(iss), 'invalid', iss);
    const aud = await forge({ aud: 'another-api' });
    await rejectsWith(hs.verify(aud), 'invalid', aud);
  });

  test('missing sub, jti or email is refused', async () => {
    for (const missing of ['sub', 'jti', 'email']) {
      const token = await forge({ [missing]: undefined });
      await rejectsWith(hs.verify(token), 'invalid', token);
    }
  });

  test('a token signed with a key of another algorithm is refused', async () => {
    // RS256 token presented to the HS256 verifier.
    const rs = new TokenService({ keys: { algorithm: 'RS256', kid: 'r', signKey: rsa.privateKey, verifyKey: rsa.publicKey, jwks: undefined }, ...opts });
    const { token } = await rs.issue(user);
    await rejectsWith(hs.verify(token), 'invalid', token);
    // EdDSA token presented to an RS256 verifier.
    const { token: edToken } = await new TokenService({ keys: edKeys, ...opts }).issue(user);
    await rejectsWith(rs.verify(edToken), 'invalid', edToken);
    // Algorithm confusion: HS256 signed with the RSA public key's PEM as the secret, presented to RS256.
    const pem = rsa.publicKey.export({ format: 'pem', type: 'spki' });
    const now = Math.floor(Date.now() / 1000);
    const confused = await new SignJWT({ email: user.email })
      .setProtectedHeader({ alg: 'HS256', typ: ACCESS_TOKEN_TYPE })
      .setSubject(user.id).setIssuer('portcullis').setAudience('portcullis').setIssuedAt(now).setExpirationTime(now + 60).setJti('j')
      .sign(new TextEncoder().encode(String(pem)));
    await rejectsWith(rs.verify(confused), 'invalid', confused);
  });

  test('a token signed with another secret is refused', async () => {
    const other = createSecretKey(randomBytes(32));
    const svc = new TokenService({ keys: { ...hsKeys, signKey: other, verifyKey: other }, ...opts });
    const { token } = await svc.issue(user);
    await rejectsWith(hs.verify(token), 'invalid', token);
  });

  test('garbage is refused', async () => {
    for (const token of ['', 'abc', 'a.b.c', 'eyJhbGciOiJIUzI1NiJ9..']) await rejectsWith(hs.verify(token), 'invalid', token || 'x');
  });
  test('a token verified once is still refused after it expires (the verified-token cache honours exp)', async () => {
    const service = new TokenService({ keys: hsKeys, ...opts, clockToleranceSeconds: 0 });
    const issued = await service.issue(user, Date.now());
    assert.equal((await service.verify(issued.token)).tokenId, issued.tokenId);
    await rejectsWith(service.verify(issued.token, issued.expiresAt + 1_000), 'expired', issued.token);
  });

  test('the verified-token cache is bounded and never admits a token that failed', async () => {
    const service = new TokenService({ keys: hsKeys, ...opts, verifiedCacheSize: 2 });
    const tokens = await Promise.all([1, 2, 3].map(() => service.issue(user)));
    for (const t of tokens) await service.verify(t.token);
    const tampered = withBadSignature(tokens[0]!.token);
    await rejectsWith(service.verify(tampered), 'invalid', tampered);
    // The oldest entry was evicted, yet it still verifies from scratch.
    assert.equal((await service.verify(tokens[0]!.token)).tokenId, tokens[0]!.tokenId);
  });
});
