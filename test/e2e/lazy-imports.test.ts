// A gateway loads only what its configuration uses (DEVELOPERS.md, "Start-up and memory"): every library left out
// of start-up is memory and start-up time saved. A static import added in the wrong place brings one back silently;
// this test names the libraries and fails when one of them is loaded by a configuration that does not use it.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startBackend } from '../helpers/backends.js';
import { startProcess, upstreams, writeConfig, type ConfigInput } from '../helpers/gateway.js';

const ROOT = new URL('../../', import.meta.url).pathname;
const REGISTER = join(ROOT, 'test/fixtures/module-trace/register.mjs');

/** dist/bundle/packages.json: the packages inlined in each chunk of the bundle bin/portcullis.js runs when built. */
function bundleManifest(): Record<string, string[]> {
  return JSON.parse(readFileSync(join(ROOT, 'dist/bundle/packages.json'), 'utf8')) as Record<string, string[]>;
}

/**
 * Starts `portcullis start` with `config`; the packages (node_modules names) it had loaded by "Gateway Started", and
 * node's own modules that were imported or required by name (`node:tls`; not those node's modules load themselves).
 */
async function packagesLoadedBy(config: ConfigInput): Promise<Set<string>> {
  const dir = mkdtempSync(join(tmpdir(), 'portcullis-module-trace-'));
  const trace = join(dir, 'modules.txt');
  const configFile = writeConfig(config);
  const gw = await startProcess(process.execPath, ['--import', REGISTER, join(ROOT, 'bin/portcullis.js'), 'start', '--config', configFile], configFile, {
    env: { MODULE_TRACE_FILE: trace },
  });
  try {
    const packages = new Set<string>();
    for (const path of readFileSync(trace, 'utf8').split('\n')) {
      if (path.startsWith('node:')) packages.add(path);
      // A chunk of the start-up bundle (scripts/bundle.mjs) stands for the packages inlined in it.
      const chunk = /\/dist\/bundle\/([^/]+\.js)$/.exec(path);
      if (chunk !== null) for (const name of bundleManifest()[chunk[1]!] ?? []) packages.add(name);
      const match = /node_modules\/((?:@[^/]+\/)?[^/]+)\/(.*)$/.exec(path);
      if (match === null) continue;
      packages.add(match[1]!);
      // A package's root index.js, told apart: prom-client's index loads parts the gateway does not use.
      if (match[2] === 'index.js') packages.add(`${match[1]} (index)`);
    }
    return packages;
  } finally {
    await gw.cleanup();
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Libraries that a gateway with auth, Redis, PostgreSQL, tracing and the admin API off never calls. */
const UNUSED_WHEN_OFF = ['jose', 'argon2', 'better-sqlite3', 'pg', 'redis', '@redis/client', 'light-my-request', 'prom-client (index)', '@opentelemetry/api', '@opentelemetry/sdk-trace-base'];

test('a gateway with auth, admin, Redis, PostgreSQL and tracing off loads none of their libraries', async () => {
  const backend = await startBackend('one');
  try {
    const loaded = await packagesLoadedBy({
      admin: { enabled: false },
      load_balancing: { upstreams: upstreams([backend.port]) },
      middleware: { auth: { enabled: false }, rate_limit: { enabled: false } },
    });
    // Counter-check that the trace sees packages at all: these the gateway always needs.
    for (const needed of ['undici', 'pino', 'zod', 'yaml']) assert.ok(loaded.has(needed), `${needed} is loaded (the trace works)`);
    assert.deepEqual(UNUSED_WHEN_OFF.filter((name) => loaded.has(name)), [], 'libraries loaded although the config does not use them');
    // node's TLS, HTTPS and HTTP/2 stacks (about 2 MB) wait for a TLS listener or an upstream that speaks them.
    assert.ok(loaded.has('node:http'), 'node:http is loaded (the trace sees node modules)');
    assert.deepEqual(['node:tls', 'node:https', 'node:http2'].filter((name) => loaded.has(name)), [], 'TLS or HTTP/2 loaded on cleartext HTTP/1.1');
  } finally {
    await backend.stop();
  }
});

test('turning auth on loads jose and the SQLite store (the trace tells a loaded library from an unloaded one)', async () => {
  const backend = await startBackend('one');
  try {
    const loaded = await packagesLoadedBy({
      admin: { enabled: false },
      jwt: { secret: 'lazy-imports-test-secret-lazy-imports-test-0123' },
      load_balancing: { upstreams: upstreams([backend.port]) },
      middleware: { auth: { enabled: true }, rate_limit: { enabled: false } },
    });
    assert.ok(loaded.has('jose'), 'jose is loaded when auth is on');
    assert.ok(loaded.has('better-sqlite3'), 'the SQLite user store is opened when auth is on');
  } finally {
    await backend.stop();
  }
});
