// Plugins per route: routes[].plugins replaces middleware.plugins for its route; the route's header rewrites run
// (as a first-party plugin) before the route's plugins see the upstream request and the response.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createTestGateway, type TestGateway } from 'portcullis/testing';
import { ConfigError, parseConfigObject } from '../../src/config/load.js';
import { fixture } from './helpers.js';

describe('routes[].plugins and route header rewrites', () => {
  let gateway: TestGateway;
  before(async () => {
    // The kit's echo upstream serves as service "default" (load_balancing omitted), and the routes point at it.
    gateway = await createTestGateway({
      plugins: [
        { name: 'a', module: fixture('recorder.mjs'), config: { tag: 'A', channel: 'routes2' } },
        { name: 'b', module: fixture('recorder.mjs'), config: { tag: 'B', channel: 'routes2' } },
      ],
      middleware: { plugins: ['a'] },
      routes: [
        {
          name: 'special',
          match: { path_prefix: '/special' },
          service: 'default',
          plugins: ['b', 'a'],
          request_headers: { set: { 'x-trace': 'R' }, remove: ['x-debug'] },
          response_headers: { set: { 'x-route': 'special' } },
        },
        { name: 'plain', match: { path_prefix: '/' }, service: 'default' },
        { name: 'bare', match: { path_prefix: '/bare' }, service: 'default', plugins: [] },
      ],
    });
  });
  after(() => gateway.close());

  test('a route with plugins runs its own list, after its header rewrites', async () => {
    const res = await gateway.inject({ url: '/special/1', headers: { 'x-debug': '1' } });
    assert.equal(res.status, 200);
    const upstream = res.json().headers;
    assert.equal(upstream['x-trace'], 'R,B,A', 'the rewrite set x-trace first, then each plugin appended');
    assert.equal(upstream['x-debug'], undefined);
    assert.equal(res.headers['x-route'], 'special');
    assert.equal(res.headers['x-trace'], 'B,A');
    assert.equal(res.headers['x-state-b'], '/special/1');
  });

  test('a route without plugins runs middleware.plugins; plugins: [] runs none', async () => {
    assert.equal((await gateway.inject({ url: '/other' })).headers['x-trace'], 'A');
    const bare = await gateway.inject({ url: '/bare/x' });
    assert.equal(bare.status, 200);
    assert.equal(bare.headers['x-trace'], undefined);
  });

  test('an unknown plugin in routes[].plugins, or an owned header in a rewrite, is a config error naming the key', () => {
    const base = { load_balancing: { upstreams: [{ name: 'b', address: '127.0.0.1', port: 9 }] }, plugins: [{ name: 'a', module: 'x' }] };
    assert.throws(
      () => parseConfigObject({ ...base, routes: [{ name: 'r', match: { path_prefix: '/' }, service: 'default', plugins: ['a', 'zz'] }] }),
      (err: unknown) => err instanceof ConfigError && err.message === 'routes[0].plugins[1]: unknown plugin "zz"',
    );
    assert.throws(
      () => parseConfigObject({ ...base, routes: [{ name: 'r', match: { path_prefix: '/' }, service: 'default', request_headers: { set: { connection: 'x' } } }] }),
      (err: unknown) => err instanceof ConfigError && err.message === 'routes[0].request_headers: "connection" is set by the gateway and cannot be rewritten',
    );
  });
});
