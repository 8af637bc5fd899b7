// A reload refused for a file read while the services were applied must leave the whole old config in service.
// What was wrong: a service's upstream TLS files (tls.ca_file, cert_file, key_file) were read while the reload was
// already swapping (after the rate-limit rules were replaced, and service by service, changing each in place): a
// file that could not be read was 'Config Rejected' (POST /reload: rejected), yet the services before it in the
// config ran their new upstreams, the new rate-limit rule applied, and the plugin instances the reload had created
// were never closed. What is right now: those files are read with everything else that can fail, before anything is
// swapped; a refused reload changes nothing and closes what it created.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startBackend } from '../helpers/backends.js';
import { startInProcess, upstreams, type ConfigInput } from '../helpers/gateway.js';
import { createClient } from '../helpers/http.js';
import { parseConfigObject } from '../../src/config/load.js';
import { ConfigError } from '../../src/config/config-error.js';

const client = createClient();
after(() => client.close());

const dir = mkdtempSync(join(tmpdir(), 'review-reload-partial-'));
after(() => rmSync(dir, { recursive: true, force: true }));

/** A plugin that counts its instances created and closed (per tag) on globalThis. */
const counting = join(dir, 'counting.mjs');
writeFileSync(
  counting,
  `const seen = (globalThis.__reviewReloadPartial ??= { created: [], closed: [] });
export default {
  name: 'counting',
  create(config) {
    seen.created.push(config.tag);
    return { close() { seen.closed.push(config.tag); } };
  },
};
`,
);
const seen = (): { created: string[]; closed: string[] } =>
  ((globalThis as { __reviewReloadPartial?: { created: string[]; closed: string[] } }).__reviewReloadPartial ??= { created: [], closed: [] });

test('a reload refused for an unreadable upstream CA file changes no service, no rate limit, and closes its plugin instance', async () => {
  const first = await startBackend('first');
  const second = await startBackend('second');
  const input = (port: number, burst: number, tag: string, caFile: string): ConfigInput => ({
    server: { listen_host: '127.0.0.1', listen_port: 0 },
    admin: { enabled: false, listen_host: '127.0.0.1', listen_port: 0 },
    logging: { format: 'json', level: 'info' },
    plugins: [{ name: 'counting', module: counting, config: { tag } }],
    middleware: { plugins: ['counting'], rate_limit: { enabled: true, requests_per_minute: 600, burst_size: burst } },
    services: {
      api: { upstreams: upstreams([port]), retries: 0 },
      // Never routed to: only its TLS settings matter (cleartext while ca_file is '').
      secure: { upstreams: upstreams([second.port]), tls: { enabled: caFile !== '', ca_file: caFile } },
    },
    routes: [{ name: 'all', match: { path_prefix: '/' }, service: 'api' }],
  });
  const gw = await startInProcess(input(first.port, 50, 'one', ''));
  try {
    const before = await client.request(`${gw.url}/x`);
    assert.equal(before.json().backend, 'first');
    assert.equal(before.headers['ratelimit-limit'], '50');

    const missing = join(dir, 'no-such-ca.pem');
    await assert.rejects(gw.gateway.reload(parseConfigObject(input(second.port, 5, 'two', missing))), (err: unknown) => {
      assert.ok(err instanceof ConfigError, String(err));
      assert.match(err.message, /^services\.secure\.tls\.ca_file: cannot read /);
      return true;
    });

    const res = await client.request(`${gw.url}/x`);
    assert.equal(res.json().backend, 'first', 'the refused reload gave service api its new upstream');
    assert.equal(res.headers['ratelimit-limit'], '50', 'the refused reload applied its rate-limit rule');
    assert.deepEqual(seen(), { created: ['one', 'two'], closed: ['two'] }, 'the instance the refused reload created was never closed');
  } finally {
    await gw.close();
    await first.stop();
    await second.stop();
  }
});
