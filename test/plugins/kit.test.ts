// The test kit as a plugin author uses it: createTestGateway + inject, an echo upstream, captured logs, reload.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createTestGateway, type TestGateway } from 'portcullis/testing';
import { fixture } from './helpers.js';

describe('createTestGateway', () => {
  let gateway: TestGateway;
  before(async () => {
    gateway = await createTestGateway({
      plugins: [{ name: 'hello', module: fixture('hello.mjs'), config: { value: 'world' } }],
      middleware: { plugins: ['hello'] },
    });
  });
  after(() => gateway.close());

  test('inject goes through the plugins to the echo upstream and back', async () => {
    const res = await gateway.inject({ method: 'POST', url: '/things?id=1', headers: { 'x-client': 'kit' }, body: { a: 1 } });
    assert.equal(res.status, 200);
    assert.equal(res.headers['x-plugin'], 'hello');
    const echoed = res.json();
    assert.equal(echoed.method, 'POST');
    assert.equal(echoed.url, '/things?id=1');
    assert.equal(echoed.headers['x-hello'], 'world');
    assert.equal(echoed.headers['x-client'], 'kit');
    assert.equal(echoed.headers['content-type'], 'application/json');
    assert.equal(echoed.body, '{"a":1}');
  });

  test('a plugin answer comes back as it was sent; the log lines are captured', async () => {
    const res = await gateway.inject({ url: '/', headers: { 'x-teapot': '1' } });
    assert.equal(res.status, 418);
    assert.deepEqual(res.json(), { error: 'teapot' });
    const id = res.headers['x-request-id'];
    assert.ok(gateway.logs.some((l) => l.msg === 'Request Completed' && l.request_id === id && l.status === 418));
  });

  test('reload applies a new plugin config', async () => {
    await gateway.reload({
      plugins: [{ name: 'hello', module: fixture('hello.mjs'), config: { value: 'again' } }],
      middleware: { plugins: ['hello'] },
    });
    assert.equal((await gateway.inject({ url: '/' })).json().headers['x-hello'], 'again');
  });

  test('a config error rejects createTestGateway with the one-line message', async () => {
    await assert.rejects(
      createTestGateway({ plugins: [{ name: 'x', module: './nope.mjs' }], middleware: { plugins: ['x'] } }),
      (err: Error) => err.name === 'ConfigError' && err.message === 'plugins[0].module: cannot load ./nope.mjs: not found',
    );
  });
});
