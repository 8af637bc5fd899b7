// Unit tests of which credential a request carries and which kinds a route accepts.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { acceptedMethods, readCredential } from './credentials.js';
import { parseBearer } from './bearer.js';

const both = acceptedMethods(['jwt', 'api_key']);
const jwtOnly = acceptedMethods(['jwt']);
const keysOnly = acceptedMethods(['api_key']);
const KEY = `pk_0123456789abcdef_${'a'.repeat(64)}`;

test('a pk_ bearer value or X-API-Key is an API key; any other bearer value a JWT', () => {
  assert.deepEqual(readCredential({ authorization: `Bearer ${KEY}` }, both), { kind: 'api_key', key: KEY });
  assert.deepEqual(readCredential({ 'x-api-key': KEY }, both), { kind: 'api_key', key: KEY });
  assert.deepEqual(readCredential({ authorization: 'Bearer a.b.c' }, both), { kind: 'jwt', token: 'a.b.c' });
  assert.deepEqual(readCredential({}, both), { kind: 'none' });
  assert.deepEqual(readCredential({ authorization: 'Bearer' }, both), { kind: 'malformed' });
  assert.deepEqual(readCredential({ 'x-api-key': [KEY, KEY] }, both), { kind: 'malformed' });
});

test('a kind the route does not accept is refused as malformed; X-API-Key is ignored where keys are not accepted', () => {
  assert.deepEqual(readCredential({ authorization: `Bearer ${KEY}` }, jwtOnly), { kind: 'malformed' });
  assert.deepEqual(readCredential({ authorization: 'Bearer a.b.c' }, keysOnly), { kind: 'malformed' });
  assert.deepEqual(readCredential({ 'x-api-key': KEY }, jwtOnly), { kind: 'none' });
  assert.deepEqual(readCredential({ 'x-api-key': KEY, authorization: 'Bearer a.b.c' }, jwtOnly), { kind: 'jwt', token: 'a.b.c' });
});

test('a bearer JWT beside X-API-Key is a second credential to check; a second key or a refused kind is malformed', () => {
  assert.deepEqual(readCredential({ 'x-api-key': KEY, authorization: 'Bearer a.b.c' }, both), { kind: 'api_key', key: KEY, token: 'a.b.c' });
  assert.deepEqual(readCredential({ 'x-api-key': KEY, authorization: `Bearer ${KEY}` }, both), { kind: 'malformed' });
  assert.deepEqual(readCredential({ 'x-api-key': KEY, authorization: 'Bearer' }, both), { kind: 'malformed' });
  assert.deepEqual(readCredential({ 'x-api-key': KEY, authorization: 'Bearer a.b.c' }, keysOnly), { kind: 'malformed' });
  // Another scheme is the backend's business, not a credential of ours.
  assert.deepEqual(readCredential({ 'x-api-key': KEY, authorization: 'Basic dTpw' }, both), { kind: 'api_key', key: KEY });
});

test('Bearer followed by anything but a space is malformed, not another scheme', () => {
  for (const value of ['Bearer\ta.b.c', 'Bearer\u00a0a.b.c', 'Bearer:a.b.c', 'Bearer.a.b.c', 'Bearer_a.b.c', 'Bearer+a.b.c', 'Bearerish a.b.c', 'bearer\t', 'Bearer']) {
    assert.deepEqual(parseBearer(value), { kind: 'malformed' }, JSON.stringify(value));
  }
  assert.deepEqual(parseBearer('Basic dTpw'), { kind: 'none' });
  assert.deepEqual(parseBearer('bEaReR   a.b.c '), { kind: 'token', token: 'a.b.c' });
  assert.deepEqual(readCredential({ 'x-api-key': KEY, authorization: 'Bearer\ta.b.c' }, both), { kind: 'malformed' });
});
