// Unit tests of client address resolution: X-Forwarded-For believed only from trusted proxies, read right to left.
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { TrustedProxies, normalizeAddress } from './client-address.js';

describe('normalizeAddress', () => {
  test('strips the IPv4-mapped IPv6 prefix only', () => {
    assert.equal(normalizeAddress('::ffff:127.0.0.1'), '127.0.0.1');
    assert.equal(normalizeAddress('127.0.0.1'), '127.0.0.1');
    assert.equal(normalizeAddress('::1'), '::1');
    assert.equal(normalizeAddress('::ffff:abcd'), '::ffff:abcd');
  });
});

describe('TrustedProxies', () => {
  test('with no trusted proxies X-Forwarded-For is ignored', () => {
    const t = new TrustedProxies([]);
    assert.equal(t.has('127.0.0.1'), false);
    assert.equal(t.clientAddress('127.0.0.1', '1.2.3.4'), '127.0.0.1');
  });

  test('matches single addresses and CIDR ranges, IPv4 and IPv6', () => {
    const t = new TrustedProxies(['10.0.0.0/8', '192.168.1.5', 'fd00::/8']);
    assert.equal(t.has('10.200.3.4'), true);
    assert.equal(t.has('11.0.0.1'), false);
    assert.equal(t.has('192.168.1.5'), true);
    assert.equal(t.has('192.168.1.6'), false);
    assert.equal(t.has('fd12::1'), true);
    assert.equal(t.has('fe80::1'), false);
    assert.equal(t.has(''), false);
  });

  test('an untrusted peer is the client whatever X-Forwarded-For says', () => {
    const t = new TrustedProxies(['10.0.0.0/8']);
    assert.equal(t.clientAddress('203.0.113.9', '1.1.1.1, 10.0.0.1'), '203.0.113.9');
  });

  test('a trusted peer: the right-most untrusted hop is the client', () => {
    const t = new TrustedProxies(['10.0.0.0/8']);
    // The client may forge the left part; the walk stops at the first hop not added by a trusted proxy.
    assert.equal(t.clientAddress('10.0.0.1', 'spoofed, 198.51.100.4, 10.1.1.1'), '198.51.100.4');
    assert.equal(t.clientAddress('10.0.0.1', '1.1.1.1, 198.51.100.4'), '198.51.100.4');
    assert.equal(t.clientAddress('10.0.0.1', ' ::ffff:198.51.100.4 '), '198.51.100.4');
  });

  test('a chain made only of trusted hops, a missing header or a malformed hop falls back to the peer', () => {
    const t = new TrustedProxies(['10.0.0.0/8']);
    assert.equal(t.clientAddress('10.0.0.1', '10.2.2.2, 10.3.3.3'), '10.0.0.1');
    assert.equal(t.clientAddress('10.0.0.1', undefined), '10.0.0.1');
    assert.equal(t.clientAddress('10.0.0.1', '1.1.1.1, not-an-ip'), '10.0.0.1');
    assert.equal(t.clientAddress('10.0.0.1', ''), '10.0.0.1');
  });

  test('an entry that is neither an IP nor a CIDR is refused with the entry in the message', () => {
    assert.throws(() => new TrustedProxies(['10.0.0.0/8', 'localhost']), /localhost/);
  });
});
