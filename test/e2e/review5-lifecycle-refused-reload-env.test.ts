// A refused reload leaves process.env as it was (found by review). Every reload reads .env into process.env before
// the config is checked, and a reload refused (a config error, or a setting only a restart can change) left the
// refused .env's values there: what the running plugins read from process.env, and what a later reload's own .env
// read took for the real environment's, came from a config that was never applied. Both are now as they were.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { ConfigOwner, readConfigSnapshot } from '../../src/cluster-config.js';
import { startBackend } from '../helpers/backends.js';
import { spawnGateway, upstreams, writeConfig } from '../helpers/gateway.js';
import { waitFor } from '../helpers/wait.js';

/** A plugin that reports, on every response, two variables of the gateway's process.env as they are now. */
const ENV_REPORTER = `export default {
  name: 'env-reporter',
  create() {
    return {
      onResponse(ctx) {
        ctx.responseHeaders.set('x-flavour', process.env.REVIEW5_FLAVOUR ?? '(unset)');
        ctx.responseHeaders.set('x-added', process.env.REVIEW5_ADDED ?? '(unset)');
      },
    };
  },
};
`;

test('a reload refused for a config error or a restart-only change takes its .env values back out of process.env', async () => {
  const backend = await startBackend('b1');
  // The gateway's working directory, where it reads .env from; the plugin module lives there too.
  const cwd = mkdtempSync(join(tmpdir(), 'portcullis-env-'));
  writeFileSync(join(cwd, 'env-reporter.mjs'), ENV_REPORTER);
  writeFileSync(join(cwd, '.env'), 'REVIEW5_FLAVOUR=accepted\n');
  const gw = await spawnGateway(
    {
      load_balancing: { upstreams: upstreams([backend.port]) },
      plugins: [{ name: 'env-reporter', module: join(cwd, 'env-reporter.mjs') }],
      middleware: { plugins: ['env-reporter'] },
    },
    { cwd },
  );
  const accepted = readFileSync(gw.configFile, 'utf8');
  const seen = async (): Promise<[string | null, string | null]> => {
    const res = await fetch(`${gw.url}/echo`);
    await res.arrayBuffer();
    return [res.headers.get('x-flavour'), res.headers.get('x-added')];
  };
  const reload = async (msg: string, count: number): Promise<void> => {
    gw.signal('SIGHUP');
    await waitFor(() => gw.logs.filter((l) => l.msg === msg).length === count, `${msg} #${count}`, 15_000);
  };
  try {
    assert.deepEqual(await seen(), ['accepted', '(unset)']);

    // A config error: refused, and so is its .env.
    writeFileSync(join(cwd, '.env'), 'REVIEW5_FLAVOUR=refused\nREVIEW5_ADDED=yes\n');
    writeFileSync(gw.configFile, `${accepted}not_a_key: 1\n`);
    await reload('Config Rejected', 1);
    assert.deepEqual(await seen(), ['accepted', '(unset)'], 'the refused .env left nothing behind');

    // A setting only a restart changes (found when the config is applied, after the file was read): the same.
    writeFileSync(gw.configFile, accepted.replace(/listen_port: 0/, 'listen_port: 1'));
    await reload('Config Rejected', 2);
    assert.match(String(gw.logs.filter((l) => l.msg === 'Config Rejected')[1]?.reason), /need a restart/);
    assert.deepEqual(await seen(), ['accepted', '(unset)'], 'the refused .env left nothing behind');

    // A reload that is applied still reads .env as it is now: a value changed there is taken.
    writeFileSync(join(cwd, '.env'), 'REVIEW5_FLAVOUR=second\n');
    writeFileSync(gw.configFile, accepted);
    await reload('Config Reloaded', 1);
    assert.deepEqual(await seen(), ['second', '(unset)']);
  } finally {
    await gw.cleanup();
    await backend.stop();
    rmSync(cwd, { recursive: true, force: true });
  }
});

test("a multi-worker gateway's primary: a reload it refuses takes its .env values back out of its process.env", async () => {
  // The primary reads the file and .env itself (cluster-config.ts) and refuses a config error before any worker is
  // asked; its environment is the one each later reload's .env read starts from.
  const cwd = mkdtempSync(join(tmpdir(), 'portcullis-env-'));
  const home = process.cwd();
  process.chdir(cwd); // .env is read from the working directory
  const config = writeConfig({ server: { workers: 2 }, load_balancing: { upstreams: upstreams([8080]) } });
  const accepted = readFileSync(config, 'utf8');
  try {
    writeFileSync(join(cwd, '.env'), 'REVIEW5_PRIMARY=accepted\n');
    const owner = new ConfigOwner(config, readConfigSnapshot(config), pino({ level: 'silent' }), () => undefined);
    assert.equal(process.env.REVIEW5_PRIMARY, 'accepted');

    writeFileSync(join(cwd, '.env'), 'REVIEW5_PRIMARY=refused\nREVIEW5_PRIMARY_ADDED=yes\n');
    writeFileSync(config, `${accepted}not_a_key: 1\n`);
    const result = await owner.reload();
    assert.equal(result.ok, false);
    assert.equal(process.env.REVIEW5_PRIMARY, 'accepted');
    assert.equal(process.env.REVIEW5_PRIMARY_ADDED, undefined);
    owner.stop();
  } finally {
    process.chdir(home);
    rmSync(cwd, { recursive: true, force: true });
    rmSync(join(config, '..'), { recursive: true, force: true });
  }
});
