import { test } from 'node:test';
import assert from 'node:assert/strict';
import { checkProtocol, checkUpgrade } from './protocol-check.js';

test('HTTP/2 only as a stream: an HTTP/2.0 request line over HTTP/1 is refused with 505', () => {
  assert.equal(checkProtocol({ httpVersionMajor: 2, httpVersionMinor: 0, headers: {} })?.status, 505);
  assert.equal(checkProtocol(Object.assign({ httpVersionMajor: 2, httpVersionMinor: 0, headers: {} }, { stream: {} })), undefined);
  assert.equal(checkProtocol({ httpVersionMajor: 1, httpVersionMinor: 1, headers: {} }), undefined);
});

test('Expect: only 100-continue (as node reads it) goes on; anything else is 417', () => {
  for (const expect of ['100-continue', '100-Continue', 'foo, 100-continue']) {
    assert.equal(checkProtocol({ httpVersionMajor: 1, httpVersionMinor: 1, headers: { expect } }), undefined, expect);
  }
  for (const expect of ['foo', '', '100-continuex']) {
    assert.equal(checkProtocol({ httpVersionMajor: 1, httpVersionMinor: 1, headers: { expect } })?.code, 'EXPECTATION_FAILED', expect);
  }
});

test('an Upgrade declares no body: any Content-Length but 0, or any Transfer-Encoding, is 400', () => {
  assert.equal(checkUpgrade({}), undefined);
  assert.equal(checkUpgrade({ 'content-length': '0' }), undefined);
  for (const headers of [{ 'content-length': '5' }, { 'transfer-encoding': 'chunked' }, { 'content-length': '0', 'transfer-encoding': 'chunked' }]) {
    const error = checkUpgrade(headers);
    assert.equal(error?.code, 'BAD_REQUEST', JSON.stringify(headers));
    assert.equal(error?.details, 'an Upgrade request has no body');
  }
});

test('CONNECT and TRACE, over either protocol, are 405 with Allow; other methods go on', () => {
  for (const method of ['CONNECT', 'TRACE']) for (const httpVersionMajor of [1, 2]) {
    const req = Object.assign({ httpVersionMajor, httpVersionMinor: httpVersionMajor === 1 ? 1 : 0, headers: {}, method }, httpVersionMajor === 2 ? { stream: {} } : {});
    const error = checkProtocol(req);
    assert.equal(error?.code, 'METHOD_NOT_ALLOWED', `${method} ${httpVersionMajor}`);
    assert.equal(error?.status, 405);
    assert.equal(error?.headers?.allow, 'GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS');
  }
  for (const method of ['GET', 'POST', 'OPTIONS', 'PURGE', 'trace', 'connect']) assert.equal(checkProtocol({ httpVersionMajor: 1, httpVersionMinor: 1, headers: {}, method }), undefined, method);
});

test('Transfer-Encoding over HTTP/1.1: chunked alone goes on; any other coding list is 501 and closes', () => {
  for (const coding of ['chunked', 'Chunked', ' chunked ', ['chunked']]) {
    assert.equal(checkProtocol({ httpVersionMajor: 1, httpVersionMinor: 1, headers: { 'transfer-encoding': coding as string } }), undefined, String(coding));
  }
  for (const coding of ['gzip, chunked', 'deflate,chunked', 'identity, chunked', 'chunked, chunked', 'gzip', ['gzip', 'chunked']]) {
    const error = checkProtocol({ httpVersionMajor: 1, httpVersionMinor: 1, headers: { 'transfer-encoding': coding as string } });
    assert.equal(error?.code, 'NOT_IMPLEMENTED', String(coding));
    assert.equal(error?.status, 501);
    assert.equal(error?.headers?.connection, 'close');
  }
});

test('any Transfer-Encoding on an HTTP/1.0 request is faulty framing: 400, and the connection closes', () => {
  for (const coding of ['chunked', 'gzip, chunked']) {
    const error = checkProtocol({ httpVersionMajor: 1, httpVersionMinor: 0, headers: { 'transfer-encoding': coding } });
    assert.equal(error?.code, 'BAD_REQUEST', coding);
    assert.equal(error?.details, 'an HTTP/1.0 request has no Transfer-Encoding');
    assert.equal(error?.headers?.connection, 'close');
  }
  assert.equal(checkProtocol({ httpVersionMajor: 1, httpVersionMinor: 0, headers: { 'content-length': '5' } }), undefined);
});

test('HTTP/2: a method the HTTP/1 parser does not know (another case included) is 501; known ones go on', () => {
  const h2 = (method: string) => checkProtocol({ httpVersionMajor: 2, httpVersionMinor: 0, headers: {}, method, stream: {} } as Parameters<typeof checkProtocol>[0]);
  for (const method of ['delete', 'Get', 'trace', 'connect', 'FOO', 'G_E-T']) {
    assert.equal(h2(method)?.code, 'NOT_IMPLEMENTED', method);
    assert.equal(h2(method)?.headers?.connection, undefined, `${method}: the stream alone is refused`);
  }
  for (const method of ['GET', 'DELETE', 'PURGE', 'PROPFIND', 'M-SEARCH']) assert.equal(h2(method), undefined, method);
  assert.equal(h2('TRACE')?.code, 'METHOD_NOT_ALLOWED');
});
