// `server.workers: 2` after workers die (kill -9): the admin listener passes to the replacement of its worker, a
// worker that cannot start exits so the primary's restart and give-up logic apply, and every worker, restarted ones
// included, runs the config the primary accepted, never a file the primary refused. A worker that stops answering
// (SIGSTOP) neither holds a reload forever nor keeps a crashed worker's replacement from starting.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startBackend } from '../helpers/backends.js';
import { rewriteConfig, spawnGateway, upstreams, type ConfigInput, type GatewayProcess } from '../helpers/gateway.js';
import { freePort } from '../helpers/ports.js';
import { waitFor } from '../helpers/prometheus.js';
import { workerPids } from '../helpers/workers.js';
import {
  countRedisKeys,
  deleteRedisKeys,
  freshGet,
  rateLimitConfig,
  REDIS_URL,
  requireRedis,
  runId,
  statusCounts,
} from './ratelimit-helpers.js';

const skipRedis = await requireRedis(); // throws under CI=true when Redis is missing

const started = (gw: GatewayProcess) => gw.logs.filter((l) => l.msg === 'Gateway Started');

/** kill -9 one worker; resolves with the pid of its replacement once that has logged "Gateway Started". */
async function killAndReplace(gw: GatewayProcess, pid: number): Promise<{ pid: number; line: Record<string, unknown> }> {
  const before = started(gw).length;
  const others = workerPids(gw.child.pid!).filter((p) => p !== pid);
  process.kill(pid, 'SIGKILL');
  await waitFor('the replacement worker to start', () => started(gw).length === before + 1, 20_000);
  const replacement = workerPids(gw.child.pid!).find((p) => p !== pid && !others.includes(p));
  assert.ok(replacement !== undefined, 'a new worker process');
  return { pid: replacement, line: started(gw).at(-1)! };
}

test('the admin listener survives worker restarts: the replacement of its worker takes it, never a second worker', async () => {
  const backend = await startBackend('one');
  const adminPort = await freePort();
  const gw = await spawnGateway({
    server: { workers: 2 },
    admin: { listen_port: adminPort },
    load_balancing: { upstreams: upstreams([backend.port]) },
  });
  after(async () => {
    await gw.cleanup();
    await backend.stop();
  });
  await waitFor('both workers to start', () => started(gw).length === 2, 15_000);
  const holders = () => started(gw).filter((l) => l.admin_port === adminPort).length;
  assert.equal(holders(), 1, 'one worker of two listens on the admin port');
  const [first, second] = workerPids(gw.child.pid!);
  assert.ok(first !== undefined && second !== undefined);

  // Twice: the role follows its holder past cluster ids 1 and 3, whatever ids the replacements get.
  let holder = first;
  for (let round = 1; round <= 2; round++) {
    const replacement = await killAndReplace(gw, holder);
    assert.equal(replacement.line.admin_port, adminPort, `round ${round}: the replacement runs the admin listener`);
    const ready = await freshGet(`http://127.0.0.1:${adminPort}/ready`);
    assert.equal(ready.status, 200, `round ${round}: /ready answers again`);
    holder = replacement.pid;
  }
  // The other worker's replacement: the admin listener is held, so it does not open one beside it.
  const other = await killAndReplace(gw, second);
  assert.equal(other.line.admin_port, undefined, 'no second admin listener');
  assert.equal(holders(), 3, 'the original holder and its two replacements, nobody else');
  assert.equal((await freshGet(`http://127.0.0.1:${adminPort}/metrics`)).status, 200);
  assert.equal((await freshGet(`${gw.url}/after-restarts`)).status, 200);
});

test('workers that fail before their gateway runs exit 1: with none serving, the primary restarts them, then gives up at start-up', async () => {
  const backend = await startBackend('one');
  const logDir = mkdtempSync(join(tmpdir(), 'portcullis-access-'));
  const gw = await spawnGateway({
    server: { workers: 2 },
    admin: { enabled: false },
    logging: { access_log_file: join(logDir, 'access.log') },
    load_balancing: { upstreams: upstreams([backend.port]) },
  });
  after(async () => {
    await gw.cleanup();
    await backend.stop();
    rmSync(logDir, { recursive: true, force: true });
  });
  await waitFor('both workers to start', () => started(gw).length === 2, 15_000);
  // Running workers keep the file they opened; a new worker cannot open it: it fails in createLogger, before its
  // gateway starts (and before the try that used to end a worker which failed to start).
  rmSync(logDir, { recursive: true, force: true });
  // Both: while one serves, replacements are restarted for as long as it takes
  // (review15-lifecycle-worker-restart-while-serving).
  for (const pid of workerPids(gw.child.pid!)) process.kill(pid, 'SIGKILL');
  const outcome = await Promise.race([gw.exited, new Promise<'hung'>((resolve) => setTimeout(() => resolve('hung'), 30_000).unref())]);
  assert.deepEqual(outcome, { code: 1, signal: null }, `the primary gives up (stderr: ${gw.stderr().slice(-400)})`);
  const exits = gw.logs.filter((l) => l.msg === 'Worker Exited');
  assert.deepEqual(exits.slice(0, 2).map((l) => l.signal), ['SIGKILL', 'SIGKILL']);
  assert.ok(exits.length >= 3, 'the failed replacements were seen exiting and restarted');
  for (const exit of exits.slice(2)) assert.equal(exit.code, 1, 'a failed start-up exits 1');
  const gaveUp = gw.logs.find((l) => String(l.msg).startsWith('Workers Failing At Start-up'));
  assert.equal(gaveUp?.crashes, 5);
  assert.match(gw.stderr(), /portcullis: config error: logging\.access_log_file: cannot open/);
  assert.doesNotMatch(gw.stderr(), /\n\s+at /, 'no stack trace');
});

test('workers run the config the primary accepted: a refused reload changes nothing, restarted workers included', { skip: skipRedis }, async () => {
  const prefix = `portcullis-test:cluster-primary:${runId()}:`;
  const [one, two] = await Promise.all([startBackend('one'), startBackend('two')]);
  const adminPort = await freePort();
  const config = (keyPrefix: string, backendPort: number, redisUrl = REDIS_URL): ConfigInput => ({
    server: { workers: 2 },
    admin: { listen_port: adminPort },
    redis: { url: redisUrl, key_prefix: keyPrefix },
    load_balancing: { upstreams: upstreams([backendPort]) },
    middleware: { rate_limit: rateLimitConfig() }, // one bucket of 10 per client, refilled at 1/min
  });
  const gw = await spawnGateway(config(`${prefix}a:`, one.port));
  after(async () => {
    await gw.cleanup();
    await Promise.all([one.stop(), two.stop()]);
    await deleteRedisKeys(REDIS_URL, prefix);
  });
  await waitFor('both workers to start', () => started(gw).length === 2, 15_000);
  const reloaded = () => gw.logs.filter((l) => l.msg === 'Config Reloaded').length;
  const rejected = () => gw.logs.filter((l) => l.msg === 'Config Rejected');
  const admin = `http://127.0.0.1:${adminPort}`;
  /** Four requests over fresh connections (the primary hands them to the workers in turn): who answered, how. */
  const four = async () => {
    const responses = [];
    for (let i = 0; i < 4; i++) responses.push(await freshGet(`${gw.url}/w/${i}`));
    return { statuses: statusCounts(responses), backends: new Set(responses.filter((r) => r.status === 200).map((r) => r.headers['x-backend'])) };
  };
  const post = (path: string) => fetch(`${admin}${path}`, { method: 'POST' });

  // An accepted reload (POST /reload on the admin worker) reaches both workers.
  rewriteConfig(gw, config(`${prefix}a:`, two.port));
  const accepted = await post('/reload');
  assert.equal(accepted.status, 200, await accepted.text());
  await waitFor('both workers to apply it', () => reloaded() === 2);
  assert.deepEqual(await four(), { statuses: { 200: 4 }, backends: new Set(['two']) });

  // A reload changing a restart-only setting is refused; the worker restarted after it runs the accepted config.
  rewriteConfig(gw, config(`${prefix}b:`, two.port));
  gw.signal('SIGHUP');
  await waitFor('the reload to be refused', () => rejected().length >= 1);
  assert.match(String(rejected()[0]!.reason), /^redis .*need a restart/);
  const [adminHolder, other] = workerPids(gw.child.pid!);
  await killAndReplace(gw, other!);
  assert.deepEqual(await four(), { statuses: { 200: 4 }, backends: new Set(['two']) });
  assert.equal(await countRedisKeys(REDIS_URL, `${prefix}b:`), 0, 'no worker uses the refused key prefix');

  // An invalid file: refused; the worker restarted after it starts anyway, on the accepted config.
  rewriteConfig(gw, config(`${prefix}a:`, two.port, ''));
  const invalid = await post('/reload');
  assert.equal(invalid.status, 400);
  assert.match(((await invalid.json()) as { reason: string }).reason, /^server\.workers: .*redis\.url/);
  const replacement = await killAndReplace(gw, adminHolder!);
  assert.equal(replacement.line.admin_port, adminPort);
  // Ten tokens in all, from one bucket under the accepted prefix: 8 spent above, 2 left for the 4 requests.
  assert.deepEqual(await four(), { statuses: { 200: 2, 429: 2 }, backends: new Set(['two']) });
  assert.equal(await countRedisKeys(REDIS_URL, `${prefix}b:`), 0);

  // The restarted workers take part in the next accepted reload.
  rewriteConfig(gw, config(`${prefix}a:`, one.port));
  const before = reloaded();
  gw.signal('SIGHUP');
  await waitFor('both workers to apply it', () => reloaded() === before + 2);
  assert.doesNotMatch(gw.stderr(), /config error/, 'no worker failed on the refused files');
});

test('a reload one worker cannot apply is refused, and no worker serves it meanwhile: the others hold it unapplied, their plugin instances untouched', async () => {
  const backend = await startBackend('one');
  const adminPort = await freePort();
  const dir = mkdtempSync(join(tmpdir(), 'portcullis-plugin-'));
  // Tags responses with its config's tag, the worker's pid and how many responses its instance has tagged; with
  // `once`, only the first process to create it succeeds (the file is created exclusively) and the other fails once
  // the test creates \`release\`: a failure in one worker only, as a plugin whose resource is busy would give, held
  // for the test to look inside the round meanwhile.
  const plugin = join(dir, 'once-tag.mjs');
  const release = join(dir, 'release');
  writeFileSync(
    plugin,
    `import { existsSync, openSync } from 'node:fs';
     import { setTimeout as sleep } from 'node:timers/promises';
     export default {
       name: 'once-tag',
       async create(config) {
         if (config.once) {
           try { openSync(config.once, 'wx'); } catch {
             while (!existsSync(config.release)) await sleep(20);
             throw new Error('busy');
           }
         }
         let tagged = 0;
         return {
           onResponse(ctx) {
             ctx.responseHeaders.set('x-tag', String(config.tag));
             ctx.responseHeaders.set('x-pid', String(process.pid));
             ctx.responseHeaders.set('x-tagged', String(++tagged));
           },
         };
       },
     };`,
  );
  // At debug level: a worker logs 'Config Prepared' once it holds a reload for the primary to commit.
  const config = (tag: number, once?: string): ConfigInput => ({
    server: { workers: 2 },
    admin: { listen_port: adminPort },
    logging: { level: 'debug' },
    load_balancing: { upstreams: upstreams([backend.port]) },
    plugins: [{ name: 'tag', module: plugin, config: once === undefined ? { tag } : { tag, once, release } }],
    middleware: { plugins: ['tag'] },
  });
  const gw = await spawnGateway(config(1));
  after(async () => {
    await gw.cleanup();
    await backend.stop();
    rmSync(dir, { recursive: true, force: true });
  });
  await waitFor('both workers to start', () => started(gw).length === 2, 15_000);
  /** Six requests over fresh connections (the workers take them in turn): the tags seen, and the last count per pid. */
  const look = async () => {
    const tags = new Set<string | string[] | undefined>();
    const tagged = new Map<string, number>();
    for (let i = 0; i < 6; i++) {
      const res = await freshGet(`${gw.url}/t/${i}`);
      tags.add(res.headers['x-tag']);
      tagged.set(String(res.headers['x-pid']), Number(res.headers['x-tagged']));
    }
    return { tags, tagged };
  };
  const before = await look();
  assert.deepEqual(before.tags, new Set(['1']));
  assert.equal(before.tagged.size, 2, 'both workers answered');

  rewriteConfig(gw, config(2, join(dir, 'created')));
  const refusal = fetch(`http://127.0.0.1:${adminPort}/reload`, { method: 'POST' });
  // One worker creates tag 2 at once and holds it; the other fails once released. Until then no worker may serve tag 2.
  await waitFor('a worker to hold the reload', () => gw.logs.some((l) => l.msg === 'Config Prepared'), 10_000);
  const meanwhile = new Set<string | string[] | undefined>();
  for (const deadline = Date.now() + 1_000; Date.now() < deadline; ) for (const tag of (await look()).tags) meanwhile.add(tag);
  assert.deepEqual(meanwhile, new Set(['1']), 'no worker served the config while its sibling could still refuse it');
  writeFileSync(release, '');
  const refused = await refusal;
  assert.equal(refused.status, 400, await refused.clone().text());
  const primaryLine = () => gw.logs.find((l) => l.msg === 'Config Rejected' && l.workers_discarded !== undefined);
  await waitFor("the primary's log line", () => primaryLine() !== undefined);
  const rejected = primaryLine();
  assert.deepEqual([rejected?.workers_refused, rejected?.workers_discarded], [1, 1]);
  assert.equal(gw.logs.filter((l) => l.msg === 'Config Reloaded').length, 0, 'no worker swapped it in');
  const later = await look();
  assert.deepEqual(later.tags, new Set(['1']), 'both workers run tag 1');
  // The instances that ran before the refused reload run on, counting on (a config put back would have new ones).
  for (const [pid, count] of before.tagged) assert.ok((later.tagged.get(pid) ?? 0) > count, `worker ${pid}'s instance counts on from ${count}`);
  // And the primary still hands out tag 1: a restarted worker runs it too.
  await killAndReplace(gw, workerPids(gw.child.pid!)[1]!);
  assert.deepEqual((await look()).tags, new Set(['1']));
});

/** Runs `body` with `pid` stopped (SIGSTOP); resumes it afterwards whatever happens, unless it is gone by then. */
async function whileStopped<T>(pid: number, body: (resume: () => void) => Promise<T>): Promise<T> {
  let stopped = true;
  const resume = () => {
    if (!stopped) return;
    stopped = false;
    try {
      process.kill(pid, 'SIGCONT');
    } catch {
      // already gone (the primary killed it)
    }
  };
  process.kill(pid, 'SIGSTOP');
  try {
    return await body(resume);
  } finally {
    resume();
  }
}

/** Two backends and a gateway of 2 workers in front of the first; `extra` is merged over the config. */
async function twoWorkers(extra: ConfigInput = {}) {
  const [one, two] = await Promise.all([startBackend('one'), startBackend('two')]);
  const config = (backendPort: number): ConfigInput => ({
    server: { workers: 2 },
    admin: { enabled: false },
    load_balancing: { upstreams: upstreams([backendPort]) },
    ...extra,
  });
  const gw = await spawnGateway(config(one.port));
  after(async () => {
    await gw.cleanup();
    await Promise.all([one.stop(), two.stop()]);
  });
  await waitFor('both workers to start', () => started(gw).length === 2, 15_000);
  /** Which backends four requests over fresh connections (handed to the workers in turn) reached. */
  const backends = async () => {
    const seen = new Set<string | string[] | undefined>();
    for (let i = 0; i < 4; i++) seen.add((await freshGet(`${gw.url}/b/${i}`)).headers['x-backend']);
    return seen;
  };
  return { gw, backends, toTwo: () => rewriteConfig(gw, config(two.port)), toOne: () => rewriteConfig(gw, config(one.port)) };
}

const count = (gw: GatewayProcess, msg: string) => gw.logs.filter((l) => l.msg === msg).length;

test('a worker that starts while a reload round waits for a stopped worker starts at once, and gets the outcome once it is known', async () => {
  // At debug level: a worker logs 'Config Prepared' once it holds a reload for the primary to commit.
  const { gw, backends, toTwo } = await twoWorkers({ logging: { level: 'debug' } });
  const [a, b] = workerPids(gw.child.pid!);
  assert.ok(a !== undefined && b !== undefined);
  await whileStopped(a, async (resume) => {
    toTwo();
    gw.signal('SIGHUP');
    await waitFor('worker b to prepare the reload', () => count(gw, 'Config Prepared') === 1, 10_000);
    assert.equal(count(gw, 'Config Reloaded'), 0, 'b holds it until every worker has prepared it');
    process.kill(b, 'SIGKILL');
    // The round waits for a (its deadline, 15 s with no plugins, is far off): b's replacement must not.
    await waitFor("b's replacement to start while a is stopped", () => started(gw).length === 3, 12_000);
    assert.equal(count(gw, 'Config Rejected'), 0, 'the round is still waiting for a');
    resume();
    // a prepares and commits it, the round is accepted, and the replacement (started on the config before) is
    // brought to it.
    await waitFor('a and the replacement to apply it', () => count(gw, 'Config Reloaded') === 2, 10_000);
  });
  assert.deepEqual(await backends(), new Set(['two']), 'both workers run the new config');
  assert.equal(count(gw, 'Worker Replaced'), 0);
});

test('a worker that does not answer a reload in time fails it: the reload is refused, the stopped worker replaced, all run one config', async () => {
  const adminPort = await freePort();
  // No plugins: the deadline for a reload is 10 s (applyDeadlineMs).
  const { gw, backends, toTwo } = await twoWorkers({ admin: { listen_port: adminPort } });
  const reload = async () => {
    const res = await fetch(`http://127.0.0.1:${adminPort}/reload`, { method: 'POST', signal: AbortSignal.timeout(30_000) });
    return { status: res.status, body: (await res.json()) as { reason?: string } };
  };
  // The first forked worker holds the admin listener and answers POST /reload: stop the other one.
  const [, stuck] = workerPids(gw.child.pid!);
  assert.ok(stuck !== undefined);
  await whileStopped(stuck, async () => {
    toTwo();
    const refused = await reload();
    assert.equal(refused.status, 400);
    assert.match(String(refused.body.reason), /^worker \d+ \(pid \d+\) did not apply the config within 10000 ms; it is replaced$/);
  });
  const primaryLine = () => gw.logs.find((l) => l.msg === 'Config Rejected' && l.workers_discarded !== undefined);
  await waitFor("the primary's log line", () => primaryLine() !== undefined);
  const rejected = primaryLine();
  assert.deepEqual([rejected?.workers_refused, rejected?.workers_unresponsive, rejected?.workers_discarded], [0, 1, 1]);
  assert.equal(count(gw, 'Config Reloaded'), 0, 'the worker that prepared it never swapped it in');
  assert.equal(gw.logs.find((l) => l.msg === 'Worker Replaced')?.why, 'unresponsive');
  await waitFor('the stopped worker to be killed and replaced', () => started(gw).length === 3, 15_000);
  assert.equal(gw.logs.find((l) => l.msg === 'Worker Exited')?.signal, 'SIGKILL');
  assert.ok(!workerPids(gw.child.pid!).includes(stuck));
  assert.deepEqual(await backends(), new Set(['one']), 'the worker that prepared it runs the accepted config; the replacement started on it');

  // The same file, asked for again, reaches both workers (the replacement included) at once.
  const accepted = await reload();
  assert.equal(accepted.status, 200, JSON.stringify(accepted.body));
  assert.deepEqual(await backends(), new Set(['two']));
});

test('a worker still starting when the primary dies exits: nothing is left running', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'portcullis-plugin-'));
  after(() => rmSync(dir, { recursive: true, force: true }));
  const slow = join(dir, 'slow');
  // Its import, inside startGateway, marks the process and then takes 60 s, once the file `slow` exists: the first
  // workers start at once, a replacement is held inside its start-up.
  const plugin = join(dir, 'slow-import.mjs');
  writeFileSync(
    plugin,
    `import { existsSync, writeFileSync } from 'node:fs';
     if (existsSync(${JSON.stringify(slow)})) {
       writeFileSync(${JSON.stringify(join(dir, 'importing-'))} + process.pid, '');
       await new Promise((resolve) => setTimeout(resolve, 60_000));
     }
     export default { name: 'slow-import', create() { return {}; } };`,
  );
  const { gw } = await twoWorkers({ plugins: [{ name: 'slow', module: plugin }], middleware: { plugins: ['slow'], plugin_load_timeout: '90s' } });
  const [a, b] = workerPids(gw.child.pid!);
  assert.ok(a !== undefined && b !== undefined);
  writeFileSync(slow, '');
  process.kill(b, 'SIGKILL');
  let replacement: number | undefined;
  await waitFor('a replacement inside its start-up', () => {
    replacement = workerPids(gw.child.pid!).find((p) => p !== a && existsSync(join(dir, `importing-${p}`)));
    return replacement !== undefined;
  }, 15_000);
  const alive = (pid: number) => {
    try {
      process.kill(pid, 0);
      return true;
    } catch {
      return false;
    }
  };
  process.kill(gw.child.pid!, 'SIGKILL');
  try {
    await waitFor('both workers to exit', () => !alive(a) && !alive(replacement!), 10_000);
  } finally {
    for (const pid of [a, replacement!]) if (alive(pid)) process.kill(pid, 'SIGKILL');
  }
});
