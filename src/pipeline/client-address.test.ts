// Unit tests of client address resolution: one canonical text per address; forwarding headers believed only from
// trusted proxies (X-Forwarded-For, else Forwarded for=, else X-Real-IP), read right to left.
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { TrustedProxies, canonicalAddress, forwardedForValues, hopAddress, nominatedForwardingHeader, normalizeAddress } from './client-address.js';

const xff = (value: string) => ({ 'x-forwarded-for': value });

describe('canonicalAddress', () => {
  test('every spelling of one IPv6 address is one text (RFC 5952), zone id dropped', () => {
    for (const spelling of [
      '2001:db8::1',
      '2001:DB8::1',
      '2001:0db8::0001',
      '2001:db8:0:0::1',
      '2001:0DB8:0000:0000:0000:0000:0000:0001',
      '2001:db8::1%1',
      '2001:db8::1%eth0',
      '2001:db8::0.0.0.1',
    ]) {
      assert.equal(canonicalAddress(spelling), '2001:db8::1', spelling);
    }
    // RFC 5952: the longest zero run is compressed, the first of two equal ones, never a single group.
    assert.equal(canonicalAddress('2001:0:0:1:0:0:0:1'), '2001:0:0:1::1');
    assert.equal(canonicalAddress('2001:db8:0:0:1:0:0:1'), '2001:db8::1:0:0:1');
    assert.equal(canonicalAddress('2001:db8:0:1:1:1:1:1'), '2001:db8:0:1:1:1:1:1');
    assert.equal(canonicalAddress('0:0:0:0:0:0:0:0'), '::');
    assert.equal(canonicalAddress('0:0:0:0:0:0:0:1'), '::1');
    assert.equal(canonicalAddress('fe80:0:0:0:0:0:0:0'), 'fe80::');
  });

  test('an IPv6 address that stands for an IPv4 host is that IPv4 address, in any spelling', () => {
    const v4 = '10.0.0.2';
    for (const spelling of [
      '::ffff:10.0.0.2', // IPv4-mapped, as a dual-stack socket reports it
      '::FFFF:10.0.0.2',
      '::ffff:a00:2',
      '::ffff:0a00:0002',
      '0:0:0:0:0:ffff:10.0.0.2',
      '0000:0000:0000:0000:0000:FFFF:0A00:0002',
      '::ffff:10.0.0.2%eth0',
      '::ffff:0:10.0.0.2', // SIIT, IPv4-translated
      '::ffff:0:a00:2',
      '64:ff9b::10.0.0.2', // NAT64 well-known prefix
      '64:FF9B::A00:2',
      '0064:ff9b:0:0:0:0:0a00:0002',
      '::10.0.0.2', // IPv4-compatible (deprecated)
    ]) {
      assert.equal(canonicalAddress(spelling), v4, spelling);
    }
    // Neighbours of those ranges are IPv6: not every address near them carries an IPv4 host.
    assert.equal(canonicalAddress('::1'), '::1');
    assert.equal(canonicalAddress('::'), '::');
    assert.equal(canonicalAddress('::fffe:a00:2'), '::fffe:a00:2');
    assert.equal(canonicalAddress('64:ff9b:1::a00:2'), '64:ff9b:1::a00:2');
    assert.equal(canonicalAddress('1::ffff:a00:2'), '1::ffff:a00:2');
  });

  test('IPv4 is taken strictly, and text that is no address is refused', () => {
    assert.equal(canonicalAddress('192.0.2.7'), '192.0.2.7');
    // Leading zeros are octal to inet_aton and decimal to others: ambiguous, so no address.
    for (const bad of ['010.0.0.1', '10.0.0.01', '1.2.3', '1.2.3.256', '', 'localhost', '1:2:3:4:5:6:7:8:9', '1::2::3',
      '12345::1', 'g::1', '::1%', ':1:2:3:4:5:6:7', '::ffff:1.2.3.04', '1:2:3:4:5:6:7:1.2.3.4', '[::1]']) {
      assert.equal(canonicalAddress(bad), undefined, bad);
    }
  });

  test('normalizeAddress: canonical for a socket peer, other text unchanged', () => {
    assert.equal(normalizeAddress('::ffff:127.0.0.1'), '127.0.0.1');
    assert.equal(normalizeAddress('127.0.0.1'), '127.0.0.1');
    assert.equal(normalizeAddress('::1'), '::1');
    assert.equal(normalizeAddress('fe80::1%eth0'), 'fe80::1');
    assert.equal(normalizeAddress(''), '');
  });
});

describe('hopAddress', () => {
  test('a port after the address is dropped; IPv6 takes brackets for one', () => {
    assert.equal(hopAddress('1.2.3.4:5678'), '1.2.3.4');
    assert.equal(hopAddress(' 1.2.3.4 '), '1.2.3.4');
    assert.equal(hopAddress('[2001:db8::1]:443'), '2001:db8::1');
    assert.equal(hopAddress('[2001:DB8::0001]'), '2001:db8::1');
    assert.equal(hopAddress('[::ffff:10.0.0.9]:80'), '10.0.0.9');
    assert.equal(hopAddress('2001:db8::1'), '2001:db8::1');
  });

  test('identifiers that are no address, and malformed ports, are refused', () => {
    for (const bad of ['unknown', '_hidden', '_a:1', '1.2.3.4:', '1.2.3.4:http', '1.2.3.4:123456', '[2001:db8::1', '[2001:db8::1]x', 'host:80', '']) {
      assert.equal(hopAddress(bad), undefined, bad);
    }
  });
});

describe('forwardedForValues', () => {
  test('for= of each element, unquoted, names case-insensitive, other parameters skipped', () => {
    assert.deepEqual(
      forwardedForValues('for=192.0.2.60;proto=http;by=203.0.113.43, For="[2001:db8:cafe::17]:4711" ; host=x, proto=https'),
      ['192.0.2.60', '[2001:db8:cafe::17]:4711', undefined],
    );
    // Separators inside a quoted string separate nothing; quoted-pairs are resolved.
    assert.deepEqual(forwardedForValues('host="a,b;c", for="1.2.3.4", by="x\\"y", for=unknown'), [undefined, '1.2.3.4', undefined, 'unknown']);
    // A part that does not parse is one element that is no address; the elements right of it still parse.
    assert.deepEqual(forwardedForValues('for="1.2.3.4'), ['']);
    assert.deepEqual(forwardedForValues('for=", for=1.2.3.4'), ['', '1.2.3.4']);
    assert.deepEqual(forwardedForValues('for="x\\, for="[2001:db8::1]:80";proto=https'), ['', '[2001:db8::1]:80']);
    assert.deepEqual(forwardedForValues('for="a\\"b,c", for=1.2.3.4'), ['a"b,c', '1.2.3.4']);
    assert.deepEqual(forwardedForValues('for="a\\\\", for=1.2.3.4'), ['a\\', '1.2.3.4']);
    assert.deepEqual(forwardedForValues('for="a\\", for=1.2.3.4'), ['', '1.2.3.4'], 'a quoted string closed by nothing but an escaped quote');
  });
});

describe('TrustedProxies', () => {
  test('with no trusted proxies the forwarding headers are ignored', () => {
    const t = new TrustedProxies([]);
    assert.equal(t.has('127.0.0.1'), false);
    assert.equal(t.clientAddress('127.0.0.1', xff('1.2.3.4')), '127.0.0.1');
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

  test('an entry written in an IPv4-embedding range matches the IPv4 address such a peer is known by', () => {
    const t = new TrustedProxies(['64:ff9b::10.1.1.1', '64:ff9b::10.2.0.0/112', '::ffff:10.3.3.3', '2001:DB8::0001']);
    assert.equal(t.has('10.1.1.1'), true);
    assert.equal(t.has('10.2.7.7'), true);
    assert.equal(t.has('10.3.3.3'), true);
    assert.equal(t.has('10.1.1.2'), false);
    assert.equal(t.has('2001:db8::1'), true);
  });

  test('server.client_address_header: the header named is read alone, from a trusted peer only', () => {
    // nginx's `proxy_set_header X-Real-IP $remote_addr` passes on the client's own X-Forwarded-For and Forwarded.
    const spoofed = { 'x-forwarded-for': '1.1.1.1', forwarded: 'for=2.2.2.2', 'x-real-ip': '198.51.100.4' };
    assert.equal(new TrustedProxies(['10.0.0.0/8']).clientAddress('10.0.0.1', spoofed), '1.1.1.1', 'auto: X-Forwarded-For first');
    assert.equal(new TrustedProxies(['10.0.0.0/8'], 'x-real-ip').clientAddress('10.0.0.1', spoofed), '198.51.100.4');
    assert.equal(new TrustedProxies(['10.0.0.0/8'], 'forwarded').clientAddress('10.0.0.1', spoofed), '2.2.2.2');
    assert.equal(new TrustedProxies(['10.0.0.0/8'], 'x-forwarded-for').clientAddress('10.0.0.1', spoofed), '1.1.1.1');
    // The header named is absent (or says nothing): the peer, never another header.
    for (const header of ['x-real-ip', 'forwarded', 'x-forwarded-for'] as const) {
      const only = { 'x-forwarded-for': '1.1.1.1', forwarded: 'for=2.2.2.2', 'x-real-ip': '3.3.3.3' } as Record<string, string>;
      delete only[header];
      assert.equal(new TrustedProxies(['10.0.0.0/8'], header).clientAddress('10.0.0.1', only), '10.0.0.1', header);
    }
    assert.equal(new TrustedProxies(['10.0.0.0/8'], 'forwarded').clientAddress('10.0.0.1', { forwarded: 'proto=https' }), '10.0.0.1');
    // An untrusted peer is the client whichever header is named.
    assert.equal(new TrustedProxies(['10.0.0.0/8'], 'x-real-ip').clientAddress('203.0.113.9', spoofed), '203.0.113.9');
  });

  test('an untrusted peer is the client whatever its forwarding headers say', () => {
    const t = new TrustedProxies(['10.0.0.0/8']);
    const all = { 'x-forwarded-for': '1.1.1.1', forwarded: 'for=2.2.2.2', 'x-real-ip': '3.3.3.3' };
    assert.equal(t.clientAddress('203.0.113.9', all), '203.0.113.9');
    assert.equal(t.clientAddress('203.0.113.9', { forwarded: 'for=2.2.2.2' }), '203.0.113.9');
    assert.equal(t.clientAddress('203.0.113.9', { 'x-real-ip': '3.3.3.3' }), '203.0.113.9');
  });

  test('a trusted peer: the right-most untrusted hop is the client', () => {
    const t = new TrustedProxies(['10.0.0.0/8']);
    // The client may forge the left part; the walk stops at the first hop not added by a trusted proxy.
    assert.equal(t.clientAddress('10.0.0.1', xff('spoofed, 198.51.100.4, 10.1.1.1')), '198.51.100.4');
    assert.equal(t.clientAddress('10.0.0.1', xff('1.1.1.1, 198.51.100.4')), '198.51.100.4');
    assert.equal(t.clientAddress('10.0.0.1', xff(' ::ffff:198.51.100.4 ')), '198.51.100.4');
    assert.equal(t.clientAddress('10.0.0.1', { 'x-forwarded-for': ['1.1.1.1', '198.51.100.4, 10.9.9.9'] }), '198.51.100.4');
  });

  test('X-Forwarded-For hops with ports, and in any spelling, give the canonical address', () => {
    const t = new TrustedProxies(['10.0.0.0/8']);
    assert.equal(t.clientAddress('10.0.0.1', xff('198.51.100.4:5678')), '198.51.100.4');
    assert.equal(t.clientAddress('10.0.0.1', xff('[2001:DB8::1]:443, 10.0.0.7:80')), '2001:db8::1');
    assert.equal(t.clientAddress('10.0.0.1', xff('::FFFF:c633:6404')), '198.51.100.4');
  });

  test('without X-Forwarded-For, Forwarded for= is read, the same way', () => {
    const t = new TrustedProxies(['10.0.0.0/8']);
    assert.equal(t.clientAddress('10.0.0.1', { forwarded: 'for=198.51.100.4' }), '198.51.100.4');
    assert.equal(t.clientAddress('10.0.0.1', { forwarded: 'for="[2001:db8:cafe::17]:4711";proto=https' }), '2001:db8:cafe::17');
    assert.equal(t.clientAddress('10.0.0.1', { forwarded: 'for="198.51.100.4:47011", for=10.0.0.5;by=10.0.0.1' }), '198.51.100.4');
    assert.equal(t.clientAddress('10.0.0.1', { forwarded: 'for=1.1.1.1, for=198.51.100.4' }), '198.51.100.4');
    // An obfuscated or unknown client is no address: the peer is all we know.
    assert.equal(t.clientAddress('10.0.0.1', { forwarded: 'for=_hidden' }), '10.0.0.1');
    assert.equal(t.clientAddress('10.0.0.1', { forwarded: 'for=unknown', 'x-real-ip': '198.51.100.4' }), '10.0.0.1');
    assert.equal(t.clientAddress('10.0.0.1', { forwarded: 'for="198.51.100.4' }), '10.0.0.1', 'a malformed header is not believed');
    assert.equal(t.clientAddress('10.0.0.1', { forwarded: 'for="198.51.100.4', 'x-real-ip': '198.51.100.5' }), '10.0.0.1', 'nor passed over');
    // The client's own malformed text left of the proxy's hop does not hide that hop.
    assert.equal(t.clientAddress('10.0.0.1', { forwarded: ['for="', 'for=198.51.100.4'] }), '198.51.100.4');
    assert.equal(t.clientAddress('10.0.0.1', { forwarded: 'for=", for=198.51.100.4, for=10.0.0.9' }), '198.51.100.4');
    assert.equal(t.clientAddress('10.0.0.1', { forwarded: 'for=", for=10.0.0.9' }), '10.0.0.1', 'reached by the walk: the peer');
    // X-Forwarded-For wins when both are sent.
    assert.equal(t.clientAddress('10.0.0.1', { 'x-forwarded-for': '198.51.100.4', forwarded: 'for=198.51.100.5' }), '198.51.100.4');
  });

  test('without either, X-Real-IP; a Forwarded header without for= names no client', () => {
    const t = new TrustedProxies(['10.0.0.0/8']);
    assert.equal(t.clientAddress('10.0.0.1', { 'x-real-ip': '198.51.100.4' }), '198.51.100.4');
    assert.equal(t.clientAddress('10.0.0.1', { 'x-real-ip': '[2001:db8::5]:8443' }), '2001:db8::5');
    assert.equal(t.clientAddress('10.0.0.1', { forwarded: 'proto=https', 'x-real-ip': '198.51.100.4' }), '198.51.100.4');
    assert.equal(t.clientAddress('10.0.0.1', { 'x-forwarded-for': ' ', 'x-real-ip': '198.51.100.4' }), '198.51.100.4');
    // A client's own X-Real-IP line before the proxy's: the proxy's, on the right, is the one believed.
    assert.equal(t.clientAddress('10.0.0.1', { 'x-real-ip': '6.6.6.6, 198.51.100.4' }), '198.51.100.4');
  });

  test('a chain made only of trusted hops, a missing header or a malformed hop falls back to the peer', () => {
    const t = new TrustedProxies(['10.0.0.0/8']);
    assert.equal(t.clientAddress('10.0.0.1', xff('10.2.2.2, 10.3.3.3')), '10.0.0.1');
    assert.equal(t.clientAddress('10.0.0.1', {}), '10.0.0.1');
    assert.equal(t.clientAddress('10.0.0.1', xff('1.1.1.1, not-an-ip')), '10.0.0.1');
    assert.equal(t.clientAddress('10.0.0.1', xff('')), '10.0.0.1');
  });

  test('an entry that is neither an IP nor a CIDR is refused with the entry in the message', () => {
    assert.throws(() => new TrustedProxies(['10.0.0.0/8', 'localhost']), /localhost/);
  });
});

describe('nominatedForwardingHeader: a forwarding header a Connection header lists', () => {
  test('X-Forwarded-*, Forwarded and X-Real-IP, in any case, with whitespace, among other tokens, on several lines', () => {
    const cases: ReadonlyArray<[string | string[], string]> = [
      ['X-Forwarded-For', 'x-forwarded-for'],
      ['close, X-FORWARDED-FOR', 'x-forwarded-for'],
      [' \tx-forwarded-for\t , keep-alive', 'x-forwarded-for'],
      ['keep-alive, X-Other, Forwarded', 'forwarded'],
      ['x-REAL-ip', 'x-real-ip'],
      ['X-Forwarded-Proto', 'x-forwarded-proto'],
      ['Upgrade, X-Forwarded-Host', 'x-forwarded-host'],
      [['keep-alive', 'X-Real-IP'], 'x-real-ip'],
    ];
    for (const [value, name] of cases) assert.equal(nominatedForwardingHeader(value), name, JSON.stringify(value));
  });

  test("any X-Forwarded-* name counts (X-Forwarded-Port, -Prefix...): each is the proxy's word for the next hop", () => {
    assert.equal(nominatedForwardingHeader('X-Forwarded-Port'), 'x-forwarded-port');
    assert.equal(nominatedForwardingHeader('close, x-forwarded-prefix'), 'x-forwarded-prefix');
  });

  test('none for the usual values, other headers, and names that only contain a forwarding name', () => {
    for (const value of [undefined, 'keep-alive', 'close', 'Upgrade', 'keep-alive, X-Secret', 'X-Forwarded', 'My-Forwarded', 'x-real-ip-2', '']) {
      assert.equal(nominatedForwardingHeader(value), undefined, JSON.stringify(value));
    }
  });
});

describe('TrustedProxies.clientAddress: forwarding headers the proxy listed in Connection are never read', () => {
  const trusted = new TrustedProxies(['10.0.0.0/8']);
  const sent = { 'x-forwarded-for': '203.0.113.1', forwarded: 'for=203.0.113.2', 'x-real-ip': '203.0.113.3' };

  test('listed: the peer, whichever of them is listed (auto would otherwise fall to the next one)', () => {
    for (const connection of ['X-Forwarded-For', 'close, forwarded', 'X-REAL-IP', 'keep-alive, X-Forwarded-Proto']) {
      assert.equal(trusted.clientAddress('10.0.0.1', { ...sent, connection }), '10.0.0.1', connection);
    }
  });

  test('not listed: read as before', () => {
    assert.equal(trusted.clientAddress('10.0.0.1', { ...sent, connection: 'keep-alive, X-Secret' }), '203.0.113.1');
    assert.equal(trusted.clientAddress('10.0.0.1', sent), '203.0.113.1');
  });
});
