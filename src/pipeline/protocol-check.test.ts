import { test } from 'node:test';
import assert from 'node:assert/strict';
import { checkProtocol, checkUpgrade } from './protocol-check.js';

test('HTTP/2 only as a stream: an HTTP/2.0 request line over HTTP/1 is refused with 505', () => {
  assert.equal(checkProtocol({ httpVersionMajor: 2, headers: {} })?.status, 505);
  assert.equal(checkProtocol(Object.assign({ httpVersionMajor: 2, headers: {} }, { stream: {} })), undefined);
  assert.equal(checkProtocol({ httpVersionMajor: 1, headers: {} }), undefined);
});

test('Expect: only 100-continue (as node reads it) goes on; anything else is 417', () => {
  for (const expect of ['100-continue', '100-Continue', 'foo, 100-continue']) {
    assert.equal(checkProtocol({ httpVersionMajor: 1, headers: { expect } }), undefined, expect);
  }
  for (const expect of ['foo', '', '100-continuex']) {
    assert.equal(checkProtocol({ httpVersionMajor: 1, headers: { expect } })?.code, 'EXPECTATION_FAILED', expect);
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

test('CONNECT, over either protocol, is 405 with Allow; other methods go on', () => {
  for (const httpVersionMajor of [1, 2]) {
    const req = Object.assign({ httpVersionMajor, headers: {}, method: 'CONNECT' }, httpVersionMajor === 2 ? { stream: {} } : {});
    const error = checkProtocol(req);
    assert.equal(error?.code, 'METHOD_NOT_ALLOWED', String(httpVersionMajor));
    assert.equal(error?.status, 405);
    assert.equal(error?.headers?.allow, 'GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS');
  }
  for (const method of ['GET', 'POST', 'OPTIONS', 'TRACE', 'connect']) assert.equal(checkProtocol({ httpVersionMajor: 1, headers: {}, method }), undefined, method);
});
