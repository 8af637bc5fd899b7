// Refresh tokens: 256-bit base64url values, stored only as SHA-256 hex.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { generateRefreshToken, hashRefreshToken, isWellFormedRefreshToken } from './refresh-token.js';

test('refresh tokens are unique 43-character base64url strings', () => {
  const tokens = new Set(Array.from({ length: 100 }, generateRefreshToken));
  assert.equal(tokens.size, 100);
  for (const t of tokens) {
    assert.match(t, /^[A-Za-z0-9_-]{43}$/);
    assert.equal(Buffer.from(t, 'base64url').length, 32);
    assert.ok(isWellFormedRefreshToken(t));
  }
});

test('the stored hash is SHA-256 hex, stable, and not the token', () => {
  const t = generateRefreshToken();
  assert.match(hashRefreshToken(t), /^[0-9a-f]{64}$/);
  assert.equal(hashRefreshToken(t), hashRefreshToken(t));
  assert.notEqual(hashRefreshToken(t), hashRefreshToken(generateRefreshToken()));
});

test('anything else is not well formed', () => {
  for (const bad of ['', 'short', 'a'.repeat(44), `${'a'.repeat(42)}=`, `${'a'.repeat(42)}.`]) {
    assert.equal(isWellFormedRefreshToken(bad), false, bad);
  }
});
