// LOG_LEVEL wins over logging.level at start-up, and so it does on reload: a reload that changed logging.level put
// the config's level over LOG_LEVEL, and a LOG_LEVEL changed in .env (which every reload reads) was never applied.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startProcess } from '../helpers/gateway.js';
import { waitFor } from '../helpers/wait.js';

const ROOT = new URL('../../', import.meta.url).pathname;
const dir = mkdtempSync(join(tmpdir(), 'portcullis-review-log-level-'));
after(() => rmSync(dir, { recursive: true, force: true }));

const config = (level: string) => `server: {listen_host: 127.0.0.1, listen_port: 0}
admin: {enabled: false}
logging: {format: json, level: ${level}}
load_balancing:
  health_check: {enabled: false}
  upstreams: [{name: a, address: 127.0.0.1, port: 3000}]
routes:
  - {name: only, service: default, match: {path_prefix: /only}}
`;

function replace(name: string, text: string): void {
  writeFileSync(join(dir, `${name}.next`), text);
  renameSync(join(dir, `${name}.next`), join(dir, name));
}

test('a reload applies LOG_LEVEL from .env over logging.level, as start-up does', async () => {
  replace('proxy.yaml', config('info'));
  replace('.env', 'LOG_LEVEL=info\n');
  const path = join(dir, 'proxy.yaml');
  const gw = await startProcess(process.execPath, [join(ROOT, 'bin/portcullis.js'), 'start', '--config', path], path, {
    cwd: dir,
    env: { LOG_LEVEL: undefined },
  });
  after(() => gw.cleanup());
  const count = (msg: string) => gw.logs.filter((l) => l.msg === msg).length;
  const notFound = async () => {
    const res = await fetch(`${gw.url}/nope`, { signal: AbortSignal.timeout(10_000) });
    assert.equal(res.status, 404);
    await res.arrayBuffer();
  };
  await notFound();

  // .env now asks for debug; the config's level (info) is unchanged.
  replace('.env', 'LOG_LEVEL=debug\n');
  gw.signal('SIGHUP');
  await waitFor(() => count('Config Reloaded') === 1, 'the first reload', 15_000);
  await notFound();
  await waitFor(() => count('Route Not Found') === 1, 'a debug line after LOG_LEVEL=debug', 10_000);

  // The config's level changes to warn: LOG_LEVEL (still debug) keeps winning, as at start-up.
  replace('proxy.yaml', config('warn'));
  gw.signal('SIGHUP');
  await waitFor(() => count('Config Reloaded') === 2, 'the second reload', 15_000);
  await notFound();
  await waitFor(() => count('Route Not Found') === 2, 'a debug line with LOG_LEVEL=debug over logging.level warn', 10_000);
});

// LOG_LEVEL in capitals (WARN, DEBUG) was ignored without a word, as was one naming no level: the gateway logged at
// the config's level. Now any case is read, and a value that names no level is said in a warning.
for (const [value, expect] of [
  [' DEBUG ', 'Route Not Found'],
  ['loud', 'LOG_LEVEL is not a level (fatal, error, warn, info, debug, trace or silent): the config\'s logging.level applies'],
] as const) {
  test(`LOG_LEVEL=${JSON.stringify(value)}: ${expect === 'Route Not Found' ? 'read in any case' : 'said to name no level'}`, async () => {
    const sub = join(dir, `case-${value.trim()}`);
    mkdirSync(sub);
    writeFileSync(join(sub, 'proxy.yaml'), config('info'));
    const path = join(sub, 'proxy.yaml');
    const gw = await startProcess(process.execPath, [join(ROOT, 'bin/portcullis.js'), 'start', '--config', path], path, {
      cwd: sub,
      env: { LOG_LEVEL: value },
    });
    after(() => gw.cleanup());
    const res = await fetch(`${gw.url}/nope`, { signal: AbortSignal.timeout(10_000) });
    assert.equal(res.status, 404);
    await res.arrayBuffer();
    await waitFor(() => gw.logs.some((l) => l.msg === expect), expect, 10_000);
  });
}

// From review (stop 18): a LOG_LEVEL that names no level, set by a reload's .env, put the gateway on the config's
// level without a word: the warning came at start-up only.
test('a reload whose .env sets a LOG_LEVEL naming no level says so, as start-up does', async () => {
  const sub = join(dir, 'reload-typo');
  mkdirSync(sub);
  writeFileSync(join(sub, 'proxy.yaml'), config('info'));
  writeFileSync(join(sub, '.env'), 'LOG_LEVEL=debug\n');
  const path = join(sub, 'proxy.yaml');
  const gw = await startProcess(process.execPath, [join(ROOT, 'bin/portcullis.js'), 'start', '--config', path], path, {
    cwd: sub,
    env: { LOG_LEVEL: undefined },
  });
  after(() => gw.cleanup());
  const warning = "LOG_LEVEL is not a level (fatal, error, warn, info, debug, trace or silent): the config's logging.level applies";
  replace(join('reload-typo', '.env'), 'LOG_LEVEL=wrn\n');
  gw.signal('SIGHUP');
  await waitFor(() => gw.logs.some((l) => l.msg === warning), 'the warning after the reload', 15_000);
  const line = gw.logs.find((l) => l.msg === warning)!;
  assert.equal(line.level, 40);
  assert.equal(line.level_used, 'info');
});
