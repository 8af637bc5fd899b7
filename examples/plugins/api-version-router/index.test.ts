// api-version-router through the test kit: the header from the path segment, default, 400 on an unknown version.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createTestGateway, type TestGateway } from 'portcullis/testing';

const plugin = new URL('./index.ts', import.meta.url).pathname;

describe('api-version-router', () => {
  let gateway: TestGateway;
  before(async () => {
    gateway = await createTestGateway({
      plugins: [{ name: 'versions', module: plugin, config: { versions: ['v1', 'v2'], default: 'v1' } }],
      middleware: { plugins: ['versions'] },
    });
  });
  after(() => gateway.close());

  test('a known version in the first segment is sent upstream as X-Api-Version; the path is untouched', async () => {
    const res = await gateway.inject({ url: '/v2/users/7?x=1' });
    assert.equal(res.status, 200);
    assert.equal(res.json().headers['x-api-version'], 'v2');
    assert.equal(res.json().url, '/v2/users/7?x=1');
  });

  test('a client cannot choose the version by sending the header itself', async () => {
    const res = await gateway.inject({ url: '/v1/users', headers: { 'x-api-version': 'v9' } });
    assert.equal(res.json().headers['x-api-version'], 'v1');
  });

  test('a path without a version gets the default', async () => {
    assert.equal((await gateway.inject({ url: '/users' })).json().headers['x-api-version'], 'v1');
  });

  test('an unknown version is refused with 400 and never reaches the upstream', async () => {
    const res = await gateway.inject({ url: '/v3/users' });
    assert.equal(res.status, 400);
    assert.deepEqual(res.json(), { error: 'Unknown API version', supported: ['v1', 'v2'] });
  });

  test('without a default, a path with no version is refused; the segment position is configurable', async () => {
    const strict = await createTestGateway({
      plugins: [{ name: 'versions', module: plugin, config: { versions: ['v1'], segment: 1, header: 'x-version' } }],
      middleware: { plugins: ['versions'] },
    });
    try {
      assert.equal((await strict.inject({ url: '/api/v1/users' })).json().headers['x-version'], 'v1');
      assert.equal((await strict.inject({ url: '/api/users' })).status, 400);
      assert.equal((await strict.inject({ url: '/v1/users' })).status, 400);
    } finally {
      await strict.close();
    }
  });

  test('a header the gateway sets itself is a config error, not a 500 on every request', async () => {
    for (const header of ['X-Forwarded-Prefix', 'host', 'x-request-id', 'expect', 'proxy-authorization', 'http2-settings']) {
      await assert.rejects(
        createTestGateway({ plugins: [{ name: 'v', module: plugin, config: { versions: ['v1'], header } }], middleware: { plugins: ['v'] } }),
        { message: `plugins[0].config: header ${header} is set by the gateway` },
      );
    }
  });

  test('a default outside versions is a config error', async () => {
    await assert.rejects(
      createTestGateway({ plugins: [{ name: 'v', module: plugin, config: { versions: ['v1'], default: 'v2' } }], middleware: { plugins: ['v'] } }),
      { message: 'plugins[0].config: default must be one of versions' },
    );
  });
});
