// The services a reload removes: closed after the drain bound, and then let go even while an older request runs on.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import pino from 'pino';
import { parseConfigObject } from '../config/load.js';
import { resolveServices } from '../config/services.js';
import { ServiceRegistry } from './registry.js';

function servicesOf(names: readonly string[]) {
  const services = Object.fromEntries(names.map((name, i) => [name, { upstreams: [{ name, address: '127.0.0.1', port: 9 + i }] }]));
  return resolveServices(parseConfigObject({ services, routes: names.map((name) => ({ name, match: { path_prefix: `/${name}` }, service: name })) }));
}

// review16: a request older than the reload that outlived the drain bound (a stream open for days) kept the retire's
// closure pending, and every retired service and backend with it: some 13 KB a reload for as long as it ran.
test('a removed service is closed at the drain bound and then unreachable, though a request older than the reload still runs', async () => {
  setFlagsFromString('--expose-gc');
  const gc = runInNewContext('gc') as () => void;
  const registry = new ServiceRegistry(servicesOf(['kept', 'gone']), pino({ level: 'silent' }));
  const gone = new WeakRef(registry.all.find((s) => s.name === 'gone')!);
  const neverDone = new Promise<void>(() => undefined); // the long request of the old generation
  registry.prepare(servicesOf(['kept']))()(neverDone, 20);
  assert.deepEqual(registry.all.map((s) => s.name), ['kept']);
  await new Promise((resolve) => setTimeout(resolve, 200)); // past the bound: its pools are closed
  // deref() keeps its target alive to the end of the job that called it: collected in jobs of their own, read after.
  for (let i = 0; i < 5; i++) {
    gc();
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  assert.equal(gone.deref(), undefined, 'the removed service is no longer held');
  await registry.close();
});
