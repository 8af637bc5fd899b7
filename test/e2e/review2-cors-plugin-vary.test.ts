// A plugin's response hook cannot drop the CORS policy's Vary tokens, on the implicit catch-all route (a config
// with no `routes`) as on a declared one: a shared cache would otherwise serve one origin's CORS answer to every
// origin, or a copy without CORS headers to a browser's cross-origin request.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { startBackend } from '../helpers/backends.js';
import { startInProcess, upstreams, type ConfigInput } from '../helpers/gateway.js';
import { rawRequest } from '../helpers/raw.js';

const SETTER = new URL('../plugins/fixtures/header-setter.mjs', import.meta.url).pathname;
const APP = 'https://app.example.com';

async function varyOf(port: number, head: string): Promise<string | undefined> {
  const res = await rawRequest(port, `${head}Host: api.example.com\r\nConnection: close\r\n\r\n`);
  return res.headers.vary;
}

for (const shape of ['implicit catch-all', 'declared route'] as const) {
  test(`a plugin that sets or removes Vary keeps the CORS policy's tokens (${shape})`, async () => {
    const backend = await startBackend('echo');
    const config: ConfigInput = {
      plugins: [{ name: 'setter', module: SETTER }],
      middleware: { plugins: ['setter'], cors: { allowed_origins: [APP], allow_credentials: true } },
      ...(shape === 'implicit catch-all'
        ? { load_balancing: { upstreams: upstreams([backend.port]) } }
        : {
            services: { app: { upstreams: upstreams([backend.port]), health_check: { enabled: false } } },
            routes: [{ name: 'all', match: { path_prefix: '/' }, service: 'app' }],
          }),
    };
    const gw = await startInProcess(config);
    try {
      const port = gw.gateway.port;
      const set = `X-Set-Response: vary=Accept-Encoding\r\n`;
      const del = `X-Delete-Response: vary\r\n`;
      for (const [label, extra] of [['set', set], ['remove', del]] as const) {
        const allowed = await varyOf(port, `GET /x HTTP/1.1\r\nOrigin: ${APP}\r\n${extra}`);
        assert.match(String(allowed), /(^|,\s*)Origin(\s*,|$)/i, `${label}, allowed origin: Vary ${allowed}`);
        const none = await varyOf(port, `GET /x HTTP/1.1\r\n${extra}`);
        assert.match(String(none), /(^|,\s*)Origin(\s*,|$)/i, `${label}, no Origin: Vary ${none}`);
      }
      // The set value itself is kept beside the policy's token.
      assert.match(String(await varyOf(port, `GET /x HTTP/1.1\r\nOrigin: ${APP}\r\n${set}`)), /Accept-Encoding/);
    } finally {
      await gw.close();
      await backend.stop();
    }
  });
}
