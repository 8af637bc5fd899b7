// `npm run bench:fleet`: N = 1, 2, 4 gateway processes sharing one PostgreSQL and one Redis topology (a Redis
// Cluster of 3 masters + 3 replicas by default, started here), driven by wrk with one rate-limit policy over many
// clients. Reports total requests/s, p99, Redis commands per proxied request (INFO commandstats deltas) and the
// global limit error: admitted requests against the exact token-bucket allowance of the run. Local only, bounded.
// Environment: BENCH_FLEET_SECONDS (10), BENCH_FLEET_SIZES (1,2,4), BENCH_FLEET_TOPOLOGY (cluster | single),
// BENCH_FLEET_CONNECTIONS (64, split over the gateways), BENCH_FLEET_CLIENTS (40), BENCH_FLEET_RATE (10 per client
// per second), DATABASE_URL. Not a test.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { stringify } from 'yaml';
import { createClient, createCluster } from '@redis/client';
import { createRedisKvStore } from '../src/kv/redis.js';
import { bucketKey } from '../src/kv/redis-keys.js';
import { ROOT, ensureCurrentBuild } from './harness.js';
import { freePort, ThrowawayRedis } from '../test/kv/redis-helpers.js';
import { ThrowawayCluster, untilAnswering } from '../test/kv/redis-processes.js';

const SECONDS = Number(process.env.BENCH_FLEET_SECONDS ?? '10');
const SIZES = (process.env.BENCH_FLEET_SIZES ?? '1,2,4').split(',').map(Number);
const TOPOLOGY = process.env.BENCH_FLEET_TOPOLOGY ?? 'cluster';
const CONNECTIONS = Number(process.env.BENCH_FLEET_CONNECTIONS ?? '64');
const DATABASE_URL = process.env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
/**
 * The policy: CLIENTS clients, each allowed RATE requests/s with a burst of BURST. The exact allowance of a bucket
 * is ⌊BURST + RATE × (its last take − its first take)⌋ whole tokens, on Redis's clock: the bench makes each bucket's first take
 * itself just before wrk starts and reads the last one from the bucket (field u) right after. Every client must
 * ask for more than its allowance (the "demand" column), else its bucket idles and the allowance is not the limit;
 * on a slow machine lower BENCH_FLEET_CLIENTS until demand is above 1×.
 */
const CLIENTS = Number(process.env.BENCH_FLEET_CLIENTS ?? '40');
const RATE = Number(process.env.BENCH_FLEET_RATE ?? '10');
const BURST = 10;
/** Commands only the take script runs inside Redis: INFO commandstats counts them, but they are no round trips. */
const SCRIPT_INTERNAL = new Set(['time', 'hmget', 'hset', 'pexpire', 'del']);

/** The Redis deployment under the fleet: its config block and the data nodes whose INFO we read. */
interface Topology {
  readonly redis: Record<string, unknown>;
  masters(): Promise<string[]>;
  stop(): Promise<void>;
}

async function startTopology(): Promise<Topology> {
  if (TOPOLOGY === 'single') {
    const server = new ThrowawayRedis(await freePort());
    await server.start();
    return { redis: { url: server.url }, masters: async () => [server.url], stop: () => server.kill() };
  }
  const cluster = await ThrowawayCluster.start();
  return {
    redis: { cluster: cluster.seeds },
    masters: async () => (await cluster.masters()).map((m) => `redis://127.0.0.1:${m.port}`),
    stop: () => cluster.stop(),
  };
}

/**
 * Sums an INFO figure over `urls`: every command call (minus INFO itself), only the commands clients sent (round
 * trips), or memory used.
 */
async function infoSum(urls: readonly string[], what: 'calls' | 'round-trips' | 'memory'): Promise<number> {
  let total = 0;
  for (const url of urls) {
    const client = createClient({ url });
    await client.connect();
    try {
      const text = await client.info(what === 'memory' ? 'memory' : 'commandstats');
      if (what === 'memory') total += Number(/used_memory:(\d+)/.exec(text)?.[1] ?? 0);
      for (const m of text.matchAll(/cmdstat_(\w+):calls=(\d+)/g)) {
        if (m[1] === 'info' || (what === 'round-trips' && SCRIPT_INTERNAL.has(m[1]!))) continue;
        total += Number(m[2]);
      }
    } finally {
      client.destroy();
    }
  }
  return total;
}

/** Reads fields t (tokens) and u (last take, ms on Redis's clock) of each client's bucket. */
async function bucketStates(topology: Topology, prefix: string): Promise<Array<{ tokens: number; at: number }>> {
  const keys = clientAddresses().map((address) => bucketKey(prefix, `p:${address}`));
  const read = async (send: (key: string) => Promise<unknown>) =>
    Promise.all(
      keys.map(async (key) => {
        const [t, u] = (await send(key)) as [string | null, string | null];
        return { tokens: Number(t), at: Number(u) };
      }),
    );
  const cluster = (topology.redis as { cluster?: string[] }).cluster;
  if (cluster !== undefined) {
    const client = createCluster({ rootNodes: cluster.map((url) => ({ url })) });
    await client.connect();
    try {
      return await read((key) => client.sendCommand(key, true, ['HMGET', key, 't', 'u']));
    } finally {
      client.destroy();
    }
  }
  const client = createClient({ url: (topology.redis as { url: string }).url });
  await client.connect();
  try {
    return await read((key) => client.sendCommand(['HMGET', key, 't', 'u']));
  } finally {
    client.destroy();
  }
}

/** The clients' addresses, as wrk's script sends them. */
function clientAddresses(): string[] {
  return Array.from({ length: CLIENTS }, (_, c) => `10.0.${Math.floor(c / 256)}.${c % 256}`);
}

/** A gateway process: spawned with a config file, ready once it logs "Gateway Started". */
interface Gateway {
  readonly child: ChildProcess;
  readonly port: number;
  readonly adminPort: number;
  readonly dir: string;
}

async function startGateway(backendPort: number, redis: Record<string, unknown>, prefix: string): Promise<Gateway> {
  const dir = mkdtempSync(join(tmpdir(), 'portcullis-fleet-'));
  const adminPort = await freePort();
  const config = join(dir, 'proxy.yaml');
  writeFileSync(
    config,
    stringify({
      server: { listen_host: '127.0.0.1', listen_port: 0, trusted_proxies: ['127.0.0.1'] },
      admin: { enabled: true, listen_host: '127.0.0.1', listen_port: adminPort },
      database: { url: DATABASE_URL },
      redis: { ...redis, key_prefix: prefix, command_timeout: '1s' },
      jwt: { secret: 'bench-fleet-secret-bench-fleet-secret-0123' },
      logging: { format: 'json', access_log: false },
      load_balancing: { upstreams: [{ name: 'b', address: '127.0.0.1', port: backendPort }], health_check: { enabled: false } },
      middleware: {
        // Auth on (the fleet shares PostgreSQL for users), the benchmarked path public: one policy, no tokens.
        auth: { enabled: true, public_paths: ['/bench*'] },
        rate_limit: { enabled: true, requests_per_minute: RATE * 60, burst_size: BURST },
      },
    }),
  );
  const child = spawn(process.execPath, ['bin/portcullis.js', 'start', '--config', config], {
    cwd: ROOT,
    env: { ...process.env, PORTCULLIS_DATA_DIR: dir },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const port = await new Promise<number>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('gateway did not start within 30 s')), 30_000);
    child.once('exit', (code) => reject(new Error(`gateway exited with ${code}`)));
    createInterface({ input: child.stdout! }).on('line', (line) => {
      if (!line.includes('"Gateway Started"')) return;
      clearTimeout(timer);
      resolve((JSON.parse(line) as { port: number }).port);
    });
  });
  for (let i = 0; ; i++) {
    const ready = await fetch(`http://127.0.0.1:${adminPort}/ready`).then((r) => r.status === 200, () => false);
    if (ready) break;
    if (i > 200) throw new Error('gateway not ready within 20 s');
    await new Promise((r) => setTimeout(r, 100));
  }
  return { child, port, adminPort, dir };
}

async function stopGateway(gw: Gateway): Promise<void> {
  if (gw.child.exitCode === null) {
    const exited = new Promise((r) => gw.child.once('exit', r));
    gw.child.kill('SIGTERM');
    await exited;
  }
  rmSync(gw.dir, { recursive: true, force: true });
}

/** Limiter decisions of the proxy route so far, from a gateway's /metrics. */
async function decisions(gw: Gateway): Promise<{ pass: number; reject: number; storeError: number }> {
  const text = await (await fetch(`http://127.0.0.1:${gw.adminPort}/metrics`)).text();
  const value = (decision: string): number =>
    Number(new RegExp(`^portcullis_rate_limit_decisions_total\\{decision="${decision}",route="proxy"\\} (\\S+)`, 'm').exec(text)?.[1] ?? 0);
  return { pass: value('pass'), reject: value('reject'), storeError: value('store_error') };
}

/** wrk's Lua: each request comes from one of CLIENTS addresses in turn (X-Forwarded-For, trusted). */
function wrkScript(dir: string): string {
  const file = join(dir, 'clients.lua');
  writeFileSync(
    file,
    `local n = ${CLIENTS}
local i = 0
-- the addresses of clientAddresses() in bench/fleet.ts
init = function(args) i = tonumber(args[1] or "0") end
request = function()
  i = i + 1
  local c = i % n
  return wrk.format(nil, nil, { ["X-Forwarded-For"] = "10.0." .. math.floor(c / 256) .. "." .. (c % 256) })
end
`,
  );
  return file;
}

function toMs(value: string): number {
  const m = /^([\d.]+)(us|ms|s)$/.exec(value.trim());
  if (!m) return Number.NaN;
  const n = Number(m[1]);
  return m[2] === 'us' ? n / 1000 : m[2] === 's' ? n * 1000 : n;
}

/** Runs one wrk per gateway at once; resolves with the summed requests/s and the worst p99. */
async function drive(gateways: readonly Gateway[], script: string): Promise<{ rps: number; p99: number }> {
  const perGateway = Math.max(1, Math.floor(CONNECTIONS / gateways.length));
  const runs = gateways.map(
    (gw, i) =>
      new Promise<string>((resolve, reject) => {
        const child = spawn('wrk', ['-t1', `-c${perGateway}`, `-d${SECONDS}s`, '--latency', '-s', script, `http://127.0.0.1:${gw.port}/bench`, '--', String(i * 7)]);
        let out = '';
        child.stdout.on('data', (c: Buffer) => (out += c.toString('utf8')));
        child.once('exit', (code) => (code === 0 ? resolve(out) : reject(new Error(`wrk exited with ${code}`))));
      }),
  );
  const outs = await Promise.all(runs);
  const rps = outs.reduce((sum, o) => sum + Number(/Requests\/sec:\s+([\d.]+)/.exec(o)?.[1] ?? 0), 0);
  const p99 = Math.max(...outs.map((o) => toMs(/\s99%\s+(\S+)/.exec(o)?.[1] ?? '')));
  return { rps, p99 };
}

interface Row {
  readonly n: number;
  readonly rps: number;
  readonly p99: number;
  readonly commandsPerRequest: number;
  readonly roundTripsPerRequest: number;
  readonly admitted: number;
  readonly allowance: number;
  readonly oversubscribed: number;
  readonly storeErrors: number;
}

async function measure(n: number, topology: Topology, backendPort: number, script: string): Promise<Row> {
  const prefix = `fleet:${n}:${Date.now()}:`;
  const gateways: Gateway[] = [];
  try {
    // One after another: the first one migrates PostgreSQL.
    for (let i = 0; i < n; i++) gateways.push(await startGateway(backendPort, topology.redis, prefix));
    const masters = await topology.masters();
    const callsBefore = await infoSum(masters, 'calls');
    const tripsBefore = await infoSum(masters, 'round-trips');
    // The bench empties every bucket itself (BURST takes) just before wrk starts: that fixes the start of each
    // bucket's allowance on Redis's clock, and an empty bucket keeps its state (BURST / RATE s) until wrk arrives.
    const primer = createRedisKvStore({ ...(topology.redis as { url?: string; cluster?: string[] }), keyPrefix: prefix, commandTimeoutMs: 5_000 });
    await untilAnswering(primer);
    for (let b = 0; b < BURST; b++) await Promise.all(clientAddresses().map((a) => primer.take(`p:${a}`, { capacity: BURST, refillPerSecond: RATE })));
    await primer.close();
    const started = await bucketStates(topology, prefix);
    const { rps, p99 } = await drive(gateways, script);
    // Read at once: a bucket's state lives until it would be full again (about BURST / RATE s after the last take).
    const ended = await bucketStates(topology, prefix);
    if ([...started, ...ended].some((b) => !(b.at > 0))) throw new Error('a bucket expired before it was read; raise the demand (fewer BENCH_FLEET_CLIENTS)');
    const callsAfter = await infoSum(masters, 'calls');
    const tripsAfter = await infoSum(masters, 'round-trips');
    const counts = await Promise.all(gateways.map(decisions));
    const admitted = counts.reduce((s, c) => s + c.pass, 0);
    const refused = counts.reduce((s, c) => s + c.reject, 0);
    const storeErrors = counts.reduce((s, c) => s + c.storeError, 0);
    const requests = admitted + refused + storeErrors;
    const primerTrips = CLIENTS * BURST;
    return {
      n,
      rps,
      p99,
      // The primer's takes (one EVALSHA running 5 commands each, plus HMGET reads) are not proxied requests.
      commandsPerRequest: (callsAfter - callsBefore - primerTrips * 5 - 2 * CLIENTS) / requests,
      roundTripsPerRequest: (tripsAfter - tripsBefore - primerTrips) / requests,
      // The bench's own BURST takes per bucket count as admitted too.
      admitted: admitted + CLIENTS * BURST,
      // Whole tokens each bucket accrued from its first take to its last: what an exact limiter admits.
      allowance: ended.reduce((sum, end, i) => sum + Math.floor(BURST + (RATE * (end.at - started[i]!.at)) / 1000 + 1e-9), 0),
      // Demand per client over its allowance rate: above 1 the buckets were never idle, so the allowance is exact.
      oversubscribed: requests / CLIENTS / SECONDS / RATE,
      storeErrors,
    };
  } finally {
    await Promise.allSettled(gateways.map(stopGateway));
  }
}

/** Redis memory for 100,000 buckets (each client's state: one small hash with a TTL). */
async function memoryPer100k(topology: Topology): Promise<number> {
  const masters = await topology.masters();
  const store = createRedisKvStore({ ...(topology.redis as { url?: string; cluster?: string[] }), keyPrefix: `fleet:mem:${Date.now()}:`, commandTimeoutMs: 5_000 });
  try {
    await untilAnswering(store);
    const before = await infoSum(masters, 'memory');
    for (let i = 0; i < 100_000; i += 1_000) {
      await Promise.all(Array.from({ length: 1_000 }, (_, j) => store.take(`p:10.${(i + j) >> 16}.${((i + j) >> 8) & 255}.${(i + j) & 255}`, { capacity: 100, refillPerSecond: 0.01 })));
    }
    return (await infoSum(masters, 'memory')) - before;
  } finally {
    await store.close();
  }
}

async function main(): Promise<void> {
  if (spawnSync('sh', ['-c', 'command -v wrk']).status !== 0) throw new Error('wrk is not installed (apt-get install -y wrk)');
  ensureCurrentBuild();
  const dir = mkdtempSync(join(tmpdir(), 'portcullis-fleet-bench-'));
  const script = wrkScript(dir);
  const backend = spawn(process.execPath, ['--import', 'tsx', 'bench/backends.ts'], { cwd: ROOT, env: { ...process.env, BACKENDS: '1' }, stdio: ['ignore', 'pipe', 'inherit'] });
  let topology: Topology | undefined;
  try {
    const backendPort = await new Promise<number>((resolve) => {
      createInterface({ input: backend.stdout! }).once('line', (line) => resolve((JSON.parse(line) as { ports: number[] }).ports[0]!));
    });
    topology = await startTopology();
    const rows: Row[] = [];
    for (const n of SIZES) {
      process.stderr.write(`fleet of ${n}…\n`);
      rows.push(await measure(n, topology, backendPort, script));
    }
    const memory = await memoryPer100k(topology);
    process.stdout.write(
      `\nRedis ${TOPOLOGY}, PostgreSQL shared, wrk ${SECONDS} s, ${CONNECTIONS} connections in all; policy ${CLIENTS} clients × ${RATE}/s, burst ${BURST}\n\n`,
    );
    process.stdout.write(
      '| gateways | req/s (all) | p99 ms (worst) | Redis round trips / request | Redis commands / request (incl. in script) | admitted | exact allowance | limit error | demand / allowance |\n',
    );
    process.stdout.write('|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n');
    for (const r of rows) {
      const error = ((r.admitted - r.allowance) / r.allowance) * 100;
      // Below 1× demand some buckets idled, so the allowance was not the limit: the error is not measured.
      const errorCell = r.oversubscribed > 1 ? `${error >= 0 ? '+' : ''}${error.toFixed(2)} %` : 'n/a (demand < 1×)';
      process.stdout.write(
        `| ${r.n} | ${r.rps.toFixed(0)} | ${r.p99.toFixed(1)} | ${r.roundTripsPerRequest.toFixed(3)} | ${r.commandsPerRequest.toFixed(2)} | ${r.admitted} | ${r.allowance} | ${errorCell} | ${r.oversubscribed.toFixed(1)}× |\n`,
      );
      if (r.storeErrors > 0) {
        process.stdout.write(`  (fleet of ${r.n}: ${r.storeErrors} requests met a store error (command timeout): on_store_error allowed them without a token)\n`);
      }
    }
    process.stdout.write(`\nRedis memory for 100,000 buckets: ${(memory / 1024 / 1024).toFixed(1)} MiB (${(memory / 100_000).toFixed(0)} bytes each)\n`);
  } finally {
    backend.kill('SIGTERM');
    await topology?.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

await main();
