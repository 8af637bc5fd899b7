// The request's authority: every spelling that a backend could read as another host is refused, plain ones pass.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { authorityProblem, checkRequestHost, requestAuthorityProblem } from './host-check.js';

/** Each family, several members; none may pass. */
const REFUSED: Record<string, readonly string[]> = {
  'user information': ['x@admin.example.com', 'x:1@admin.example.com', 'admin.example.com:80@x.com', '@admin.example.com', 'a%40b@admin.example.com'],
  'path, query or fragment after the host': ['admin.example.com/x', 'admin.example.com?x', 'admin.example.com#x', 'admin.example.com\\x'],
  'whitespace and controls': ['admin.example.com x', ' admin.example.com', 'admin.example.com\t', 'a\x00b', 'a\x7fb'],
  'characters URL parsers treat specially': ['a%2eb', 'a,b', 'a;b', 'a=b', 'a!b', 'a*b', '<a>', 'a|b', 'a^b', "a'b"],
  'non-ASCII': ['café.example', 'exämple.com', 'a\u00a0b'],
  'empty labels': ['a..b', '.example.com', 'example.com..', '.'],
  'numeric hosts that are not a canonical dotted quad': ['127.1', '0x7f.0.0.1', '2130706433', '0177.0.0.1', '127.0.0.01', '256.0.0.1', '1.2.3.4.5', 'host.123', 'a.0x1f', '0x7f000001'],
  'bad ports': ['example.com:99999', 'example.com:123456', 'example.com:8o', 'example.com:-1', 'example.com:80:80', 'example.com: 80'],
  'bad IPv6 literals': ['[::1', '[::g]', '[fe80::1%25eth0]', '[v1.x]', '[0:0::1]', '[::FFFF:1.2.3.4]', '[::ffff:1.2.3.4]', '[::1]x', '[::1]:abc', '::1'],
  'no host': [':8080', ':'],
  'too long': [`${'a'.repeat(64)}.example.com`, `${'a.'.repeat(127)}com`, `${'b'.repeat(12_000)}.com`],
};

for (const [kind, values] of Object.entries(REFUSED)) {
  test(`refused: ${kind}`, () => {
    for (const value of values) assert.notEqual(authorityProblem(value), undefined, JSON.stringify(value));
  });
}

test('plain names, addresses and ports pass', () => {
  for (const value of [
    '',
    'localhost',
    'localhost:8080',
    'Example.COM',
    'example.com.',
    'example.com.:443',
    'api_v2.internal',
    'my-service',
    'xn--caf-dma.example',
    '127.0.0.1',
    '127.0.0.1:3000',
    '0.0.0.0',
    '255.255.255.255:65535',
    'example.com:',
    '[::1]',
    '[::1]:8443',
    '[2001:db8::1]',
    '[::ffff:102:304]',
    `${'a'.repeat(63)}.example.com`,
    '1password.com',
    'a.1b',
  ]) {
    assert.equal(authorityProblem(value), undefined, JSON.stringify(value));
  }
});

test('HTTP/1: a repeated Host line is refused, whatever its case', () => {
  const req = (rawHeaders: string[]) => ({ httpVersionMajor: 1, headers: { host: rawHeaders[1] }, rawHeaders });
  assert.equal(requestAuthorityProblem(req(['Host', 'a.example', 'Accept', '*/*'])), undefined);
  for (const second of ['Host', 'host', 'HOST', 'hOsT']) {
    assert.equal(requestAuthorityProblem(req(['Host', 'a.example', second, 'admin.example'])), 'more than one Host header', second);
  }
  // Without Host: HTTP/1.0 has nothing to check; HTTP/1.1 must send one (RFC 9112 §3.2).
  assert.equal(requestAuthorityProblem({ httpVersionMajor: 1, httpVersionMinor: 0, headers: {}, rawHeaders: [] }), undefined);
  assert.equal(requestAuthorityProblem({ httpVersionMajor: 1, httpVersionMinor: 1, headers: {}, rawHeaders: [] }), 'no Host header (HTTP/1.1 requires one)');
});

test('HTTP/2: :authority is checked, and a Host that disagrees with it is refused', () => {
  const h2 = (headers: Record<string, string>) => ({ httpVersionMajor: 2, headers, rawHeaders: [] });
  assert.equal(requestAuthorityProblem(h2({ ':authority': 'a.example' })), undefined);
  assert.equal(requestAuthorityProblem(h2({ ':authority': 'a.example', host: 'A.EXAMPLE' })), undefined);
  assert.equal(requestAuthorityProblem(h2({ ':authority': 'admin.example', host: 'public.example' })), 'Host and :authority disagree');
  assert.equal(requestAuthorityProblem(h2({ ':authority': 'public.example', host: 'admin.example' })), 'Host and :authority disagree');
  assert.notEqual(requestAuthorityProblem(h2({ ':authority': 'x@admin.example' })), undefined);
  assert.notEqual(requestAuthorityProblem(h2({ host: 'x@admin.example' })), undefined);
});

test('the 400 names the rule, never the value, and is shared per rule', () => {
  const req = { httpVersionMajor: 1, headers: { host: 'secret-token@admin.example' }, rawHeaders: ['Host', 'secret-token@admin.example'] };
  const error = checkRequestHost(req);
  assert.equal(error?.status, 400);
  assert.match(String(error?.details), /invalid Host: user information/);
  assert.doesNotMatch(JSON.stringify(error?.details), /secret-token/);
  assert.equal(checkRequestHost({ ...req, headers: { host: 'other@x.example' }, rawHeaders: ['Host', 'other@x.example'] }), error);
});

test('remembered answers: a value refused stays refused, one accepted stays accepted past the bound of the set', () => {
  // Asked twice each: the second answer may come from the set of accepted authorities.
  for (const value of ['127.1', 'x@admin.example.com', 'example.com:99999']) {
    assert.notEqual(authorityProblem(value), undefined);
    assert.notEqual(authorityProblem(value), undefined);
  }
  assert.equal(authorityProblem('api.example.com:8443'), undefined);
  // More distinct accepted hosts than the set holds: it is emptied and filled again, answers unchanged.
  for (let i = 0; i < 600; i++) assert.equal(authorityProblem(`h${i}.example.com`), undefined);
  assert.equal(authorityProblem('api.example.com:8443'), undefined);
  assert.notEqual(authorityProblem('127.1'), undefined);
});
