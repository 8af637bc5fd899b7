import { test } from 'node:test';
import assert from 'node:assert/strict';
import { hostOf } from '../routing/conditions.js';
import { nameMatches, normaliseServerName, pickCertificate } from './sni.js';

const fallback = { id: 'default', names: ['default.test', '127.0.0.1'] };
const exact = { id: 'exact', names: ['api.example.com'] };
const wildcard = { id: 'wildcard', names: ['*.example.com'] };
const certificates = [fallback, wildcard, exact];

const pick = (servername: string | undefined): string => pickCertificate(certificates, servername).id;

test('an exact name wins over a wildcard, whatever its case and with or without the trailing dot', () => {
  for (const name of ['api.example.com', 'api.example.com.', 'API.EXAMPLE.COM', 'API.Example.Com.']) assert.equal(pick(name), 'exact', name);
});

test('a wildcard covers one left-most label, whatever its case and with or without the trailing dot', () => {
  for (const name of ['www.example.com', 'www.example.com.', 'WWW.EXAMPLE.COM.', 'Www.Example.com']) assert.equal(pick(name), 'wildcard', name);
  for (const name of ['a.b.example.com', 'a.b.example.com.', 'example.com', 'EXAMPLE.COM.', '.example.com', '.example.com.']) {
    assert.equal(pick(name), 'default', name);
  }
});

test('no SNI, an unknown name, or more than one trailing dot gets the default certificate', () => {
  for (const name of [undefined, '', '.', 'other.test', 'other.test.', 'api.example.com..']) assert.equal(pick(name), 'default', String(name));
  assert.equal(pick('DEFAULT.test.'), 'default');
});

test('nameMatches ignores case and the trailing dot of the host name', () => {
  assert.ok(nameMatches('api.example.com', 'API.example.com.'));
  assert.ok(nameMatches('*.example.com', 'X.EXAMPLE.COM.'));
  assert.ok(!nameMatches('*.example.com', 'x.y.example.com.'));
  assert.ok(!nameMatches('*.example.com', 'example.com.'));
});

test('the server name is normalised as routing normalises the Host: certificate and route see one name', () => {
  const family = ['api.example.com', 'api.example.com.', 'API.EXAMPLE.COM.', 'Www.Example.Com', 'x.b.test.', 'a', 'A.', '.', '', 'a..'];
  for (const name of family) assert.equal(normaliseServerName(name), hostOf(name), JSON.stringify(name));
});
