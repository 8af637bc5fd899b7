// What was wrong: a route's `response_headers` were missing from the gateway's 500 `plugin_failed` when a plugin's
// onResponse hook failed (threw, rejected, or set a header node refuses). The README promises them on every answer
// of the route, the gateway's own included; the error reply skipped every response hook of the route's plugin
// chain (so that a failing hook cannot loop), and the route's header rewrites run in that chain as a first-party
// plugin, so security headers set per route (X-Frame-Options, Cache-Control: private) were dropped from that answer.
// What is right now: the error reply still gets the route's header rewrites; the failed plugins' hooks stay skipped.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { startBackend } from '../helpers/backends.js';
import { startInProcess } from '../helpers/gateway.js';
import { rawRequest } from '../helpers/raw.js';

const MISUSE = new URL('../plugins/fixtures/misuse.mjs', import.meta.url).pathname;
const APP = 'https://app.example.com';

test("a plugin's failing onResponse still leaves the route's response_headers on the 500", async () => {
  const backend = await startBackend('echo');
  const gw = await startInProcess({
    plugins: [{ name: 'misuse', module: MISUSE }],
    services: { app: { upstreams: [{ name: 'app', address: '127.0.0.1', port: backend.port }], health_check: { enabled: false } } },
    routes: [
      {
        name: 'app',
        match: { path_prefix: '/' },
        service: 'app',
        plugins: ['misuse'],
        response_headers: { set: { 'x-frame-options': 'DENY', 'cache-control': 'no-store, private' }, remove: ['x-backend'] },
      },
    ],
    middleware: { cors: { allowed_origins: [APP] } },
  });
  try {
    const cases = [
      ['a sync throw', 'X-Misuse: throw\r\n'],
      ['an async rejection', 'X-Misuse: throw\r\nX-Misuse-Async: 1\r\n'],
      ['a refused header name', 'X-Misuse: set-name:space\r\n'],
    ] as const;
    for (const [label, extra] of cases) {
      const res = await rawRequest(gw.gateway.port, `GET /x HTTP/1.1\r\nHost: api\r\nOrigin: ${APP}\r\n${extra}Connection: close\r\n\r\n`);
      assert.equal(res.status, 500, label);
      assert.equal(JSON.parse(res.body.toString()).code, 'plugin_failed', label);
      assert.equal(res.headers['x-frame-options'], 'DENY', `${label}: ${JSON.stringify(res.headers)}`);
      assert.equal(res.headers['cache-control'], 'no-store, private', label);
      assert.equal(res.headers['access-control-allow-origin'], APP, label);
      assert.match(String(res.headers.vary), /Origin/, label);
    }
    // And the failing hook is not run again on its own error reply: one Plugin Failed line per request.
    assert.equal(gw.logs.filter((l) => l.msg === 'Plugin Failed').length, cases.length);
    // A request whose hooks succeed is unchanged.
    const ok = await rawRequest(gw.gateway.port, `GET /x HTTP/1.1\r\nHost: api\r\nConnection: close\r\n\r\n`);
    assert.equal(ok.status, 200);
    assert.equal(ok.headers['x-frame-options'], 'DENY');
    assert.equal(ok.headers['x-backend'], undefined);
  } finally {
    await gw.close();
    await backend.stop();
  }
});
