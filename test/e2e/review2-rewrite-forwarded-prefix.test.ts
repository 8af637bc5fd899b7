// strip_prefix on a route whose prefix is "/" strips nothing, so it must not announce a prefix: "X-Forwarded-Prefix: /"
// replaced the one a trusted proxy in front had sent (the outer prefix the backend builds its links with).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { startBackend, type EchoBody } from '../helpers/backends.js';
import { startInProcess } from '../helpers/gateway.js';
import { rawRequest } from '../helpers/raw.js';

test('strip_prefix under path_prefix "/" sends no X-Forwarded-Prefix of its own, and passes a trusted proxy\'s', async () => {
  const backend = await startBackend('echo');
  for (const trusted of [true, false]) {
    const gw = await startInProcess({
      services: { app: { upstreams: [{ name: 'app', address: '127.0.0.1', port: backend.port }], health_check: { enabled: false } } },
      server: { trusted_proxies: trusted ? ['127.0.0.1'] : [] },
      routes: [
        { name: 'root', match: { path_prefix: '/' }, service: 'app', strip_prefix: true, add_prefix: '/base' },
        { name: 'root-bare', match: { path_prefix: '/', methods: ['DELETE'] }, service: 'app', strip_prefix: true },
        { name: 'api', match: { path_prefix: '/api' }, service: 'app', strip_prefix: true },
      ],
    });
    try {
      const send = async (method: string, path: string): Promise<EchoBody> => {
        const res = await rawRequest(
          gw.gateway.port,
          `${method} ${path} HTTP/1.1\r\nHost: x\r\nX-Forwarded-Prefix: /outer\r\nConnection: close\r\n\r\n`,
        );
        assert.equal(res.status, 200, res.body);
        return JSON.parse(res.body) as EchoBody;
      };
      const outer = trusted ? '/outer' : undefined;
      for (const [method, path, url] of [['GET', '/x/y', '/base/x/y'], ['GET', '/', '/base/'], ['DELETE', '/x', '/x']] as const) {
        const seen = await send(method, path);
        assert.equal(seen.url, url);
        assert.equal(seen.headers['x-forwarded-prefix'], outer, `${method} ${path}, trusted: ${trusted}`);
      }
      // A prefix that is stripped is still announced, in the config's spelling.
      const api = await send('GET', '/API/users');
      assert.equal(api.url, '/users');
      assert.equal(api.headers['x-forwarded-prefix'], '/api');
    } finally {
      await gw.close();
    }
  }
  await backend.stop();
});
