// Turning off upstream certificate verification by a reload must warn as loudly as starting with it off. What was
// wrong: 'Upstream TLS Verification Off' (warn, naming the key) was logged at start-up only, so a reload that set a
// service's tls.verify to false (or added a service with it off) was applied with no line at all: an operator who
// only ever reloads a long-running gateway was never told that anyone on the path could impersonate that upstream.
// What is right now: a reload that is applied logs the warning for every upstream group of its config that does not
// verify, as start-up does; a refused reload logs none.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { startInProcess, type ConfigInput } from '../helpers/gateway.js';
import { freePort } from '../helpers/ports.js';
import { parseConfigObject } from '../../src/config/load.js';

test('a reload that turns tls.verify off for a service logs Upstream TLS Verification Off, as start-up does', async () => {
  const port = await freePort(); // never called: only the settings matter
  const input = (verify: boolean, listenPort = 0): ConfigInput => ({
    server: { listen_host: '127.0.0.1', listen_port: listenPort },
    admin: { enabled: false, listen_host: '127.0.0.1', listen_port: 0 },
    logging: { format: 'json', level: 'info' },
    services: { api: { upstreams: [{ name: 'a', address: '127.0.0.1', port }], tls: { enabled: true, verify } } },
    routes: [{ name: 'all', match: { path_prefix: '/' }, service: 'api' }],
  });
  const gw = await startInProcess(input(true));
  const warnings = () => gw.logs.filter((l) => l.msg === 'Upstream TLS Verification Off');
  try {
    assert.equal(warnings().length, 0);
    await gw.gateway.reload(parseConfigObject(input(false)));
    assert.equal(gw.logs.at(-1)?.msg, 'Config Reloaded');
    assert.deepEqual(
      warnings().map((l) => [l.level, l.key]),
      [[40, 'services.api.tls.verify']],
      'the reload turned verification off without a word',
    );
    // A refused reload (a restart-only key changed) applies nothing, and warns of nothing.
    await assert.rejects(gw.gateway.reload(parseConfigObject(input(false, await freePort()))));
    assert.equal(warnings().length, 1);
  } finally {
    await gw.close();
  }
});
