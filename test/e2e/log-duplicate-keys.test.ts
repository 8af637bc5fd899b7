// No line the gateway writes holds a key twice. "Upstream Down" wrote `"service":"portcullis",…,"service":"dead"`:
// the logger's base field `service` (the process) and the field naming the upstream service. JSON.parse keeps the
// last and says nothing; strict JSON ingesters refuse the line. The lines are read here as written, from a real
// `portcullis start` (its own logger and access-log writer) in a run where an upstream goes down.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { startBackend, type TestBackend } from '../helpers/backends.js';
import { FAST_HEALTH_CHECKS, spawnGateway, type GatewayProcess } from '../helpers/gateway.js';
import { freePort } from '../helpers/ports.js';
import { waitFor } from '../helpers/wait.js';

/**
 * The keys written twice in one JSON object of `text`, at any depth (depth 1 is the line's own fields), as
 * "key@depth". Throws on text that is not one JSON object: every line must parse.
 */
function duplicateKeys(text: string): string[] {
  let i = 0;
  const found: string[] = [];
  const fail = (what: string): never => {
    throw new Error(`${what} at ${i} in ${text}`);
  };
  const ws = (): void => {
    while (i < text.length && ' \t\r\n'.includes(text[i]!)) i++;
  };
  const string = (): string => {
    if (text[i] !== '"') fail('expected a string');
    const start = i++;
    while (i < text.length && text[i] !== '"') i += text[i] === '\\' ? 2 : 1;
    if (i >= text.length) fail('unterminated string');
    i++;
    return JSON.parse(text.slice(start, i)) as string; // the key as a reader sees it: "a" and "\u0061" are one key
  };
  const value = (depth: number): void => {
    ws();
    const c = text[i];
    if (c === '{') {
      i++;
      const keys = new Set<string>();
      ws();
      if (text[i] === '}') {
        i++;
        return;
      }
      for (;;) {
        ws();
        const key = string();
        if (keys.has(key)) found.push(`${key}@${depth}`);
        keys.add(key);
        ws();
        if (text[i++] !== ':') fail('expected ":"');
        value(depth + 1);
        ws();
        const next = text[i++];
        if (next === '}') return;
        if (next !== ',') fail('expected "," or "}"');
      }
    }
    if (c === '[') {
      i++;
      ws();
      if (text[i] === ']') {
        i++;
        return;
      }
      for (;;) {
        value(depth); // an object in an array is as deep as the array
        ws();
        const next = text[i++];
        if (next === ']') return;
        if (next !== ',') fail('expected "," or "]"');
      }
    }
    if (c === '"') {
      string();
      return;
    }
    const m = /^(?:-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?|true|false|null)/.exec(text.slice(i));
    if (!m) fail('expected a value');
    i += m![0].length;
  };
  ws();
  if (text[i] !== '{') fail('expected an object');
  value(1);
  ws();
  if (i !== text.length) fail('text after the object');
  return found;
}

test('the duplicate-key reader sees what JSON.parse hides', () => {
  assert.deepEqual(duplicateKeys('{"level":40,"service":"portcullis","upstream":"x","service":"dead","msg":"Upstream Down"}'), ['service@1']);
  assert.deepEqual(duplicateKeys('{"a":"\\"b\\",\\"a\\":1","b":{"c":[1,{"d":2,"d":3}],"c":null},"\\u0061":true}'), ['d@3', 'c@2', 'a@1']);
  assert.deepEqual(duplicateKeys('{"service":"portcullis","upstream_service":"dead","msg":"Upstream Down"}'), []);
  assert.throws(() => duplicateKeys('{"a":1'), /expected/);
});

let live: TestBackend;
let gw: GatewayProcess;
let deadPort: number;
let probedPort: number;

before(async () => {
  live = await startBackend('live');
  deadPort = await freePort(); // kept closed: every connection to it is refused
  probedPort = await freePort();
  gw = await spawnGateway({
    services: {
      live: { upstreams: [{ name: 'live-1', address: '127.0.0.1', port: live.port }] },
      // Passive health only: the first refused request takes dead-1 out ("Upstream Down").
      dead: { upstreams: [{ name: 'dead-1', address: '127.0.0.1', port: deadPort }] },
      // Active checks: "Upstream Unhealthy" too.
      probed: { upstreams: [{ name: 'probed-1', address: '127.0.0.1', port: probedPort }], health_check: FAST_HEALTH_CHECKS },
    },
    routes: [
      { name: 'dead', match: { path_prefix: '/dead' }, service: 'dead' },
      { name: 'probed', match: { path_prefix: '/probed' }, service: 'probed' },
      { name: 'live', match: { path_prefix: '/' }, service: 'live' },
    ],
    logging: { access_log_format: 'events' },
    // A plugin whose log fields are named like the gateway's own (service, plugin, msg, level, time).
    plugins: [{ name: 'noisy', module: new URL('../plugins/fixtures/noisy-logger.mjs', import.meta.url).pathname }],
    middleware: { plugins: ['noisy'] },
  });
});

after(async () => {
  await gw?.cleanup();
  await live?.stop();
});

test('no line of a run where an upstream goes down holds a key twice', async () => {
  assert.equal((await fetch(`${gw.url}/dead/x`)).status, 502);
  await waitFor(() => gw.logs.some((l) => l.msg === 'Upstream Down'), 'Upstream Down');
  await waitFor(() => gw.logs.some((l) => l.msg === 'Upstream Unhealthy'), 'Upstream Unhealthy');
  assert.equal((await fetch(`${gw.url}/dead/y`)).status, 502); // now without a healthy upstream
  assert.equal((await fetch(`${gw.url}/probed`)).status, 502);
  assert.equal((await fetch(`${gw.url}/live`)).status, 200);
  gw.signal('SIGHUP'); // a reload's lines too
  await waitFor(() => gw.logs.some((l) => l.msg === 'Config Reloaded'), 'Config Reloaded', 10_000);
  gw.signal('SIGTERM'); // and the stop's
  const exit = await gw.exited;
  assert.equal(exit.code, 0, gw.stderr());

  assert.deepEqual(gw.garbled, []);
  const duplicated = gw.lines.flatMap((line) => duplicateKeys(line).map((key) => `${key} in ${line}`));
  assert.deepEqual(duplicated, []);

  const down = gw.logs.find((l) => l.msg === 'Upstream Down')!;
  assert.equal(down.service, 'portcullis', 'service is the process, as on every line');
  assert.equal(down.upstream_service, 'dead', 'the upstream service has a name of its own');
  assert.equal(down.upstream, `127.0.0.1:${deadPort}`);
  const completed = gw.logs.find((l) => l.msg === 'Request Completed' && l.path === '/dead/x')!;
  assert.equal(completed.upstream_service, 'dead', 'the access log names it alike');

  const said = gw.logs.find((l) => l.msg === 'Plugin Said')!;
  assert.equal(said.service, 'portcullis');
  assert.equal(said.plugin, 'noisy', 'the instance name');
  assert.deepEqual(
    [said.plugin_service, said.plugin_plugin, said.plugin_msg, said.plugin_level, said.plugin_time, said.other],
    ['billing', 'mine', 'inner', 'high', 'now', 1],
    "the plugin's own fields, renamed, none lost",
  );

  const seen = new Set(gw.lines.map((line) => JSON.parse(line).msg as string));
  for (const msg of ['Gateway Started', 'Request Start', 'Select Upstream', 'Request Completed', 'Upstream Down', 'Upstream Unhealthy', 'Config Reloaded', 'Gateway Stopped', 'Plugin Said']) {
    assert.ok(seen.has(msg), `the run wrote a "${msg}" line`);
  }
});
