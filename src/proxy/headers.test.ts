// Unit tests of the pure header rewriting: hop-by-hop removal both ways, X-Forwarded-*, X-Request-ID.
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import type { IncomingHttpHeaders, OutgoingHttpHeaders } from 'node:http';
import { responseHeaders, upstreamRequestHeaders, upstreamTrailers, type ForwardingFacts } from './headers.js';

const UNTRUSTED: ForwardingFacts = { id: 'rid-1', peerAddress: '203.0.113.7', peerTrusted: false, secure: false };
const TRUSTED: ForwardingFacts = { id: 'rid-2', peerAddress: '10.0.0.2', peerTrusted: true, secure: false };

describe('upstreamRequestHeaders: hop-by-hop', () => {
  test('removes the standard hop-by-hop set and every header named by Connection', () => {
    const incoming: IncomingHttpHeaders = {
      host: 'api.example',
      connection: 'keep-alive, X-Private, x-other',
      'x-private': 'secret',
      'x-other': 'also',
      'keep-alive': 'timeout=5',
      te: 'trailers',
      trailer: 'x-checksum',
      'transfer-encoding': 'chunked',
      upgrade: 'h2c',
      'proxy-connection': 'keep-alive',
      'proxy-authorization': 'Basic Zm9vOmJhcg==',
      accept: 'application/json',
      'x-keep': 'yes',
    };
    const out = upstreamRequestHeaders(incoming, UNTRUSTED);
    for (const name of [
      'connection',
      'x-private',
      'x-other',
      'keep-alive',
      'te',
      'trailer',
      'transfer-encoding',
      'upgrade',
      'proxy-connection',
      'proxy-authorization',
    ]) {
      assert.equal(out[name], undefined, `${name} must not be forwarded`);
    }
    assert.equal(out.accept, 'application/json');
    assert.equal(out['x-keep'], 'yes');
    assert.equal(out.host, 'api.example');
  });

  test('a single custom token in Connection is dropped too', () => {
    const out = upstreamRequestHeaders({ connection: 'X-Solo', 'x-solo': '1', accept: '*/*' }, UNTRUSTED);
    assert.equal(out['x-solo'], undefined);
    assert.equal(out.accept, '*/*');
  });

  test('does not modify the incoming headers object', () => {
    const incoming: IncomingHttpHeaders = { connection: 'x-a', 'x-a': '1', 'keep-alive': '5' };
    const copy = { ...incoming };
    upstreamRequestHeaders(incoming, UNTRUSTED);
    assert.deepEqual(incoming, copy);
  });
});

describe('upstreamRequestHeaders: X-Forwarded-* and X-Request-ID', () => {
  test('from an untrusted peer the client-sent chain is replaced by the peer address', () => {
    const out = upstreamRequestHeaders(
      { host: 'api.example', 'x-forwarded-for': '1.2.3.4', 'x-forwarded-proto': 'https', 'x-forwarded-host': 'evil.example' },
      UNTRUSTED,
    );
    assert.equal(out['x-forwarded-for'], '203.0.113.7');
    assert.equal(out['x-forwarded-proto'], 'http');
    assert.equal(out['x-forwarded-host'], 'api.example');
  });

  test('from a trusted peer the chain is extended and Proto/Host are kept', () => {
    const out = upstreamRequestHeaders(
      { host: 'internal:8080', 'x-forwarded-for': '1.2.3.4, 5.6.7.8', 'x-forwarded-proto': 'https', 'x-forwarded-host': 'api.example' },
      TRUSTED,
    );
    assert.equal(out['x-forwarded-for'], '1.2.3.4, 5.6.7.8, 10.0.0.2');
    assert.equal(out['x-forwarded-proto'], 'https');
    assert.equal(out['x-forwarded-host'], 'api.example');
  });

  test('a trusted peer without a chain starts one', () => {
    const out = upstreamRequestHeaders({ host: 'h' }, TRUSTED);
    assert.equal(out['x-forwarded-for'], '10.0.0.2');
    assert.equal(out['x-forwarded-proto'], 'http');
    assert.equal(out['x-forwarded-host'], 'h');
  });

  test('X-Forwarded-Host is absent when there is no Host at all', () => {
    const out = upstreamRequestHeaders({ 'x-forwarded-host': 'evil' }, UNTRUSTED);
    assert.equal(out['x-forwarded-host'], undefined);
  });

  test('X-Request-ID is the gateway id, overriding one sent by the client', () => {
    const out = upstreamRequestHeaders({ 'x-request-id': 'client-chosen' }, UNTRUSTED);
    assert.equal(out['x-request-id'], 'rid-1');
  });
});

describe('responseHeaders', () => {
  test('removes hop-by-hop response headers and the ones Connection names, keeps the rest', () => {
    const headers: OutgoingHttpHeaders = {
      connection: 'X-Secret, keep-alive',
      'x-secret': 'leak',
      'keep-alive': 'timeout=5',
      'transfer-encoding': 'chunked',
      upgrade: 'h2c',
      trailer: 'x-sum',
      te: 'trailers',
      'proxy-connection': 'close',
      'content-type': 'text/plain',
      'x-backend': 'one',
    };
    assert.deepEqual(responseHeaders(headers as Record<string, string>), { 'content-type': 'text/plain', 'x-backend': 'one' });
  });

  test('leaves a clean header set unchanged', () => {
    const headers = { 'content-type': 'application/json', 'content-length': '2' };
    assert.deepEqual(responseHeaders(headers), { 'content-type': 'application/json', 'content-length': '2' });
  });
});

describe('upstreamRequestHeaders: HTTP/2 and TLS clients', () => {
  const H2_GRPC: IncomingHttpHeaders = {
    ':method': 'POST',
    ':path': '/pkg.Svc/Call',
    ':authority': 'api.example:8443',
    ':scheme': 'https',
    'content-type': 'application/grpc',
    te: 'trailers',
  };

  test('pseudo-headers are not forwarded; :authority becomes Host and X-Forwarded-Host', () => {
    const out = upstreamRequestHeaders(H2_GRPC, { ...UNTRUSTED, secure: true });
    for (const name of Object.keys(out)) assert.ok(!name.startsWith(':'), `${name} must not be forwarded`);
    assert.equal(out.host, 'api.example:8443');
    assert.equal(out['x-forwarded-host'], 'api.example:8443');
  });

  test('a TLS client gets X-Forwarded-Proto https; a trusted proxy\'s own value still wins', () => {
    assert.equal(upstreamRequestHeaders({ host: 'a' }, { ...UNTRUSTED, secure: true })['x-forwarded-proto'], 'https');
    assert.equal(upstreamRequestHeaders({ host: 'a', 'x-forwarded-proto': 'http' }, { ...TRUSTED, secure: true })['x-forwarded-proto'], 'http');
  });

  test('TE: trailers reaches a gRPC upstream, and nothing else of TE does', () => {
    assert.equal(upstreamRequestHeaders(H2_GRPC, UNTRUSTED).te, 'trailers');
    assert.equal(upstreamRequestHeaders({ ...H2_GRPC, te: 'gzip' }, UNTRUSTED).te, undefined);
    assert.equal(upstreamRequestHeaders({ te: 'trailers', 'content-type': 'text/plain' }, UNTRUSTED).te, undefined);
  });
});

describe('upstreamTrailers', () => {
  test('parsed trailers win; else the HTTP/2 trailer object undici kept raw, without pseudo-headers', () => {
    assert.deepEqual(upstreamTrailers({ 'x-sum': 'abc' }, undefined), { 'x-sum': 'abc' });
    assert.deepEqual(upstreamTrailers({}, { 'grpc-status': '0', 'grpc-message': '', ':status': '200' }), { 'grpc-status': '0', 'grpc-message': '' });
    assert.equal(upstreamTrailers({}, ['x-raw', 'array']), undefined);
    assert.equal(upstreamTrailers({}, undefined), undefined);
  });

  test('hop-by-hop, framing, routing, auth and response-control fields are dropped (RFC 9110 §6.5.1), the rest kept', () => {
    const forbidden = {
      connection: 'close', 'keep-alive': 'timeout=1', 'transfer-encoding': 'chunked', 'content-length': '999', te: 'trailers',
      trailer: 'x', upgrade: 'h2c', host: 'evil', 'set-cookie': ['a=1'], authorization: 'Bearer x', 'www-authenticate': 'Basic',
      'cache-control': 'no-store', location: '/x', 'content-type': 'text/html', 'content-encoding': 'gzip', 'retry-after': '1',
    };
    const kept = { 'x-checksum': 'abc', 'grpc-status': '0', 'grpc-message': 'ok', 'server-timing': 'db;dur=1', 'x-dup': ['1', '2'] };
    assert.deepEqual(upstreamTrailers({ ...forbidden, ...kept }, undefined), kept);
    assert.deepEqual(upstreamTrailers({}, { ...forbidden, 'Content-Length': '1', ...kept }), kept);
    assert.equal(upstreamTrailers(forbidden, undefined), undefined, 'nothing left: no trailers at all');
  });
});
