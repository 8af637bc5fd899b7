// Unit tests of the API key format: shape, 256-bit secret, id extraction, hash.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { apiKeyId, generateApiKey, hashApiKey, looksLikeApiKey } from './api-key-format.js';

test('generated keys are pk_<16 hex>_<64 hex>, unique, and stored only as their SHA-256', () => {
  const a = generateApiKey();
  const b = generateApiKey();
  assert.match(a.key, /^pk_[0-9a-f]{16}_[0-9a-f]{64}$/);
  assert.notEqual(a.key, b.key);
  assert.equal(apiKeyId(a.key), a.id);
  assert.equal(a.keyHash, hashApiKey(a.key));
  assert.match(a.keyHash, /^[0-9a-f]{64}$/);
  assert.ok(!a.keyHash.includes(a.key.slice(20)));
  assert.ok(looksLikeApiKey(a.key));
});

test('anything not exactly of the generated shape has no id (checked before any lookup)', () => {
  for (const value of ['pk_', 'pk_abc_def', `pk_${'g'.repeat(16)}_${'a'.repeat(64)}`, `pk_${'a'.repeat(16)}_${'a'.repeat(63)}`, `PK_${'a'.repeat(16)}_${'a'.repeat(64)}`, `pk_${'a'.repeat(16)}_${'a'.repeat(64)}x`]) {
    assert.equal(apiKeyId(value), undefined, value);
  }
});
