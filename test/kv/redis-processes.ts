// Test helper: redis-server processes of our own (cluster nodes, a replica set, sentinels) on free ports, each in
// its own process group, in one temp directory; stopped (group killed, directory removed) even when a test fails.
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { redisCommand, RedisErrorReply } from './redis-command.js';
import { freePort, rawCommand } from './redis-helpers.js';
import type { KvStore } from '../../src/kv/kv-store.js';

/** Every group we started, so an exiting test process never leaves a server behind. */
const live = new Set<number>();
process.once('exit', () => {
  for (const pid of live) killGroup(pid);
});

function killGroup(pid: number): void {
  try {
    process.kill(-pid, 'SIGKILL');
  } catch {
    // already gone
  }
}

/** The last lines of a server's log, for the error when it exits at start (the directory is removed after). */
function logTail(logFile: string): string {
  try {
    return readFileSync(logFile, 'utf8').trim().split('\n').slice(-3).join(' | ');
  } catch {
    return `no log at ${logFile}`;
  }
}

/** One redis-server (or sentinel) process we own. */
export class RedisProcess {
  readonly port: number;
  readonly #child: ChildProcess;
  #exited: Promise<unknown>;

  private constructor(port: number, child: ChildProcess) {
    this.port = port;
    this.#child = child;
    this.#exited = once(child, 'exit');
    live.add(child.pid as number);
  }

  /**
   * Spawns `redis-server ...args` as a process-group leader and resolves once it answers PING (10 s at most), or once
   * `answered` accepts its reply to PING (a server still loading its dataset answers `-LOADING ...`).
   */
  static async spawn(
    port: number,
    args: readonly string[],
    logFile: string,
    answered: (reply: string) => boolean = (reply) => reply === '+PONG',
  ): Promise<RedisProcess> {
    const child = spawn('redis-server', [...args, '--logfile', logFile], { stdio: 'ignore', detached: true });
    const proc = new RedisProcess(port, child);
    const deadline = Date.now() + 10_000;
    while (Date.now() < deadline) {
      if (child.exitCode !== null) throw new Error(`redis-server on ${port} exited with ${child.exitCode}: ${logTail(logFile)}`);
      const reply = await rawCommand('127.0.0.1', port, 'PING', 300);
      if (reply !== undefined && answered(reply)) return proc;
      await new Promise((r) => setTimeout(r, 25));
    }
    await proc.kill();
    throw new Error(`redis-server on ${port} did not answer within 10 s`);
  }

  /** False once the process has exited (killed). */
  get running(): boolean {
    return this.#child.exitCode === null && this.#child.signalCode === null;
  }

  get url(): string {
    return `redis://127.0.0.1:${this.port}`;
  }

  get address(): string {
    return `127.0.0.1:${this.port}`;
  }

  /** Sends a signal to our own process group only (SIGSTOP: stalled; SIGCONT: resumed). */
  signal(signal: NodeJS.Signals): void {
    try {
      process.kill(-(this.#child.pid as number), signal);
    } catch {
      // already gone
    }
  }

  /** Kills the whole process group and waits for the exit. */
  async kill(): Promise<void> {
    const pid = this.#child.pid as number;
    if (this.#child.exitCode === null && this.#child.signalCode === null) {
      killGroup(pid);
      await this.#exited;
    }
    live.delete(pid);
  }
}

/** A temp directory for node files and logs; `remove()` deletes it. */
export function scratchDir(name: string): { path: string; remove(): void } {
  const path = mkdtempSync(join(tmpdir(), `portcullis-${name}-`));
  return { path, remove: () => rmSync(path, { recursive: true, force: true }) };
}

/** Runs a command line tool, resolving with its output; rejects on a non-zero exit or after `timeoutMs`. */
export async function run(command: string, args: readonly string[], timeoutMs = 30_000): Promise<string> {
  const child = spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'], detached: true });
  let out = '';
  child.stdout?.on('data', (chunk: Buffer) => (out += chunk.toString('utf8')));
  child.stderr?.on('data', (chunk: Buffer) => (out += chunk.toString('utf8')));
  const timer = setTimeout(() => killGroup(child.pid as number), timeoutMs);
  const [code] = (await once(child, 'exit')) as [number | null];
  clearTimeout(timer);
  if (code !== 0) throw new Error(`${command} ${args.join(' ')} exited with ${code}: ${out.slice(-2000)}`);
  return out;
}

/** Persistence off: these servers live for one test; replicas sync at once (the default waits 5 s for more). */
const EPHEMERAL = ['--save', '', '--appendonly', 'no', '--bind', '127.0.0.1', '--repl-diskless-sync-delay', '0'];

/** Polls `probe` until it is true; throws `what` after `timeoutMs`. */
export async function until(what: string, probe: () => Promise<boolean>, timeoutMs: number, everyMs = 100): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await probe().catch(() => false)) return;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

/** Reads one INFO field (e.g. "role") of the server on `port`. */
export async function infoField(port: number, section: string, field: string): Promise<string | undefined> {
  const text = await redisCommand(port, ['INFO', section]);
  const line = text.split(/\r?\n/).find((l) => l.startsWith(`${field}:`));
  return line?.slice(field.length + 1).trim();
}

/** A Redis Cluster of our own: `masters` masters with one replica each, a short node timeout for quick failover. */
export class ThrowawayCluster {
  readonly nodes: RedisProcess[] = [];
  readonly #dir = scratchDir('cluster');
  readonly nodeTimeoutMs: number;

  private constructor(nodeTimeoutMs: number) {
    this.nodeTimeoutMs = nodeTimeoutMs;
  }

  /**
   * Starts 2 × `masters` nodes and joins them with `redis-cli --cluster create … --cluster-replicas 1`.
   * `cluster-require-full-coverage no`: while one slot range has no master, the other ranges keep answering
   * (the setting the README recommends). Everything started is stopped again if any step fails.
   */
  static async start(masters = 3, nodeTimeoutMs = 1_000): Promise<ThrowawayCluster> {
    const cluster = new ThrowawayCluster(nodeTimeoutMs);
    try {
      const spawned = Array.from({ length: masters * 2 }, async () => {
        const port = await freePort();
        const bus = await freePort();
        const args = [
          '--port', String(port), '--cluster-port', String(bus), ...EPHEMERAL,
          '--cluster-enabled', 'yes', '--cluster-config-file', join(cluster.#dir.path, `nodes-${port}.conf`),
          '--cluster-node-timeout', String(nodeTimeoutMs), '--cluster-require-full-coverage', 'no',
          '--dir', cluster.#dir.path,
        ];
        const node = await RedisProcess.spawn(port, args, join(cluster.#dir.path, `${port}.log`));
        cluster.nodes.push(node);
        return node;
      });
      const started = await Promise.allSettled(spawned);
      const failed = started.find((r) => r.status === 'rejected');
      if (failed !== undefined) throw (failed as PromiseRejectedResult).reason;
      await run('redis-cli', ['--cluster', 'create', ...cluster.nodes.map((n) => n.address), '--cluster-replicas', '1', '--cluster-yes']);
      await until('the cluster to be ok on every node', async () => {
        for (const node of cluster.nodes) {
          const info = await redisCommand(node.port, ['CLUSTER', 'INFO']);
          if (!info.includes('cluster_state:ok') || !info.includes(`cluster_known_nodes:${masters * 2}`)) return false;
        }
        return true;
      }, 20_000);
      await until('every replica in sync', async () => {
        for (const node of cluster.nodes) {
          if ((await infoField(node.port, 'replication', 'role')) === 'slave' && (await infoField(node.port, 'replication', 'master_link_status')) !== 'up') return false;
        }
        return true;
      }, 20_000);
      // INFO's role can say "slave" before CLUSTER NODES does: right after the create a node may still list the
      // replicas as masters without slots, and a test that picks "a master" from that view got a slotless one.
      await until('every node to list the masters with their slots and the replicas as replicas', async () => {
        for (const node of cluster.nodes) {
          const views = await cluster.topology(node.port);
          const withSlots = views.filter((v) => v.flags.includes('master') && v.slots.length > 0).length;
          const replicas = views.filter((v) => v.flags.includes('slave')).length;
          if (withSlots !== masters || replicas !== masters) return false;
        }
        return true;
      }, 20_000);
      return cluster;
    } catch (err) {
      await cluster.stop();
      throw err;
    }
  }

  /** Seed URLs for `redis.cluster` (all nodes). */
  get seeds(): string[] {
    return this.nodes.map((n) => n.url);
  }

  /** The current view of node `port`: which nodes are masters, their slot ranges, and each replica's master. */
  async topology(askPort?: number): Promise<ClusterNodeView[]> {
    const port = askPort ?? this.nodes.find((n) => n.running)!.port;
    // Asked again when the answer is not a whole table: a node just resumed from SIGSTOP once answered nothing
    // (an empty output that parsed as a node without an address, in a CI run).
    for (let attempt = 1; ; attempt++) {
      // An error reply is not a table either, and asked again as before: redis-cli printed it with exit status 0, where
      // redisCommand rejects. A node loading its data answers CLUSTER NODES (not allowed while loading) with LOADING.
      const text = await redisCommand(port, ['CLUSTER', 'NODES']).catch((err: unknown) => {
        if (err instanceof RedisErrorReply) return `${err.message}\n`;
        throw err;
      });
      const lines = text.split('\n').filter((line) => line.trim() !== '');
      if (lines.length > 0 && lines.every((line) => line.trim().split(' ').length >= 8)) return lines.map(parseClusterNodesLine);
      if (attempt === 20) throw new Error(`CLUSTER NODES on ${port} answered ${JSON.stringify(text.slice(0, 200))}`);
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }

  /** The live masters, as seen by a node that is still running. */
  async masters(): Promise<ClusterNodeView[]> {
    const views = await this.topology();
    return views.filter((v) => v.flags.includes('master') && !v.flags.includes('fail'));
  }

  node(port: number): RedisProcess {
    const found = this.nodes.find((n) => n.port === port);
    if (found === undefined) throw new Error(`no node on ${port}`);
    return found;
  }

  /** Kills every node and removes the directory; safe to call twice and after a failed start. */
  async stop(): Promise<void> {
    await Promise.allSettled(this.nodes.map((n) => n.kill()));
    this.#dir.remove();
  }
}

/** One line of CLUSTER NODES. */
export interface ClusterNodeView {
  readonly id: string;
  readonly port: number;
  readonly flags: string[];
  /** The master's id for a replica, else "-". */
  readonly masterId: string;
  /** Inclusive slot ranges served (masters only; migrating markers left out). */
  readonly slots: Array<[number, number]>;
}

function parseClusterNodesLine(line: string): ClusterNodeView {
  const parts = line.trim().split(' ');
  const address = parts[1] as string; // 127.0.0.1:port@bus
  const port = Number(address.split('@')[0]!.split(':')[1]);
  const slots: Array<[number, number]> = [];
  for (const range of parts.slice(8)) {
    if (range.startsWith('[')) continue;
    const [from, to] = range.split('-').map(Number) as [number, number | undefined];
    slots.push([from, to ?? from]);
  }
  return { id: parts[0] as string, port, flags: (parts[2] as string).split(','), masterId: parts[3] as string, slots };
}

/** Whether `slot` lies in one of `ranges`. */
export function servesSlot(ranges: ReadonlyArray<[number, number]>, slot: number): boolean {
  return ranges.some(([from, to]) => slot >= from && slot <= to);
}

/** A master, one replica and three sentinels monitoring it as `mymaster`, with quick failure detection. */
export class ThrowawaySentinel {
  readonly name = 'mymaster';
  readonly data: RedisProcess[] = [];
  readonly sentinels: RedisProcess[] = [];
  readonly #dir = scratchDir('sentinel');

  /**
   * `monitorPort`, when given, is asked for the port the sentinels monitor the master on (a link a test can silence in
   * front of it, given the master's own port); by default the master's port itself.
   */
  static async start(downAfterMs = 1_000, monitorPort?: (masterPort: number) => Promise<number>): Promise<ThrowawaySentinel> {
    const s = new ThrowawaySentinel();
    try {
      const masterPort = await freePort();
      const dirArgs = ['--dir', s.#dir.path];
      s.data.push(await RedisProcess.spawn(masterPort, ['--port', String(masterPort), ...EPHEMERAL, ...dirArgs], join(s.#dir.path, `${masterPort}.log`)));
      const replicaPort = await freePort();
      s.data.push(
        await RedisProcess.spawn(
          replicaPort,
          ['--port', String(replicaPort), ...EPHEMERAL, ...dirArgs, '--replicaof', '127.0.0.1', String(masterPort)],
          join(s.#dir.path, `${replicaPort}.log`),
        ),
      );
      await until('the replica in sync', async () => (await infoField(replicaPort, 'replication', 'master_link_status')) === 'up', 15_000);
      const monitored = monitorPort === undefined ? masterPort : await monitorPort(masterPort);
      for (let i = 0; i < 3; i++) {
        const port = await freePort();
        // A sentinel rewrites its config file, so each gets its own.
        const conf = join(s.#dir.path, `sentinel-${port}.conf`);
        writeFileSync(
          conf,
          [
            `port ${port}`,
            'bind 127.0.0.1',
            `dir ${s.#dir.path}`,
            `sentinel monitor ${s.name} 127.0.0.1 ${monitored} 2`,
            `sentinel down-after-milliseconds ${s.name} ${downAfterMs}`,
            `sentinel failover-timeout ${s.name} 5000`,
            `sentinel parallel-syncs ${s.name} 1`,
            '',
          ].join('\n'),
        );
        s.sentinels.push(await RedisProcess.spawn(port, [conf, '--sentinel'], join(s.#dir.path, `sentinel-${port}.log`)));
      }
      // Sentinels find each other and the replica through hello messages (every 2 s): wait until all know all.
      await until('the sentinels to know each other and the replica', async () => {
        for (const sentinel of s.sentinels) {
          const others = await redisCommand(sentinel.port, ['SENTINEL', 'SENTINELS', s.name]);
          const replicas = await redisCommand(sentinel.port, ['SENTINEL', 'REPLICAS', s.name]);
          if ((others.match(/^name$/gm) ?? []).length < 2 || !replicas.includes(String(replicaPort))) return false;
        }
        return true;
      }, 20_000, 250);
      return s;
    } catch (err) {
      await s.stop();
      throw err;
    }
  }

  get master(): RedisProcess {
    return this.data[0]!;
  }

  get replica(): RedisProcess {
    return this.data[1]!;
  }

  /** Config `redis.sentinel`. */
  get target(): { name: string; nodes: string[] } {
    return { name: this.name, nodes: this.sentinels.map((n) => n.url) };
  }

  /** The master's port the first sentinel reports now. */
  async reportedMasterPort(): Promise<number> {
    const out = await redisCommand(this.sentinels[0]!.port, ['SENTINEL', 'GET-MASTER-ADDR-BY-NAME', this.name]);
    return Number(out.trim().split('\n')[1]);
  }

  async stop(): Promise<void> {
    await Promise.allSettled([...this.sentinels, ...this.data].map((n) => n.kill()));
    this.#dir.remove();
  }
}

/**
 * Whether redis-server can be spawned: under CI=true a missing binary throws (the suite must fail, not skip);
 * otherwise it returns a skip message for node:test.
 */
export async function requireRedisServer(): Promise<string | false> {
  const { redisServerInstalled } = await import('./redis-helpers.js');
  if (await redisServerInstalled()) return false;
  if (process.env.CI === 'true') throw new Error('redis-server is not installed (CI=true: topology suites must not be skipped)');
  return 'redis-server not installed; skipped (set CI=true to make this a failure)';
}

/**
 * Kills every sentinel of `own`, then waits until `store` decides takes on its master link: 20 in a row, within 20 s
 * (it has to find them down first).
 */
export async function killSentinelsUntilMasterLink(own: ThrowawaySentinel, store: Pick<KvStore, 'take'>): Promise<void> {
  await Promise.all(own.sentinels.map((s) => s.kill()));
  const rule = { capacity: 1e9, refillPerSecond: 1 };
  let inARow = 0;
  const deadline = Date.now() + 20_000;
  while (inARow < 20 && Date.now() < deadline) {
    inARow = (await Promise.resolve(store.take('bucket', rule)).then(() => true, () => false)) ? inARow + 1 : 0;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  if (inARow < 20) throw new Error('takes not decided on the master link 20 s after the sentinels went down');
}

/** Waits until `store.ping()` answers (stores connect in the background). */
export async function untilAnswering(store: { ping(): Promise<void> }, timeoutMs = 15_000): Promise<void> {
  await until('the store to answer', async () => {
    await store.ping();
    return true;
  }, timeoutMs, 50);
}
