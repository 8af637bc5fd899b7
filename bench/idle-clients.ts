// Memory per idle keep-alive client: RSS of a gateway (auth, admin, rate limit off) before and after N clients
// each made one request and stayed connected. Run: node --import tsx bench/idle-clients.ts [--clients 10000]
// The "before" reading is of a warm gateway, one that has served WARM_UP_REQUESTS on connections since closed: the
// first traffic pages in V8's optimising compiler and the code it makes (about 4 MB, once per process; start-up
// mode, src/startup-mode.ts, keeps them out of start-up), which is not memory the clients hold.
// Needs `ulimit -n` above N + a few hundred (in this process and in the gateway, which inherits it).
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { Agent, get } from 'node:http';
import { connect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { ROOT, ensureCurrentBuild } from './harness.js';
import { freePort } from '../test/helpers/ports.js';
import { rssMb } from './startup.js';


export interface IdleClientsResult {
  readonly clients: number;
  readonly beforeMb: number;
  readonly afterMb: number;
  /** Bytes per idle client. */
  readonly perClientBytes: number;
}

function gatewayConfig(dir: string, port: number, maxConnections: number): string {
  const file = join(dir, 'idle.yaml');
  writeFileSync(
    file,
    [
      'server:',
      '  listen_host: 127.0.0.1',
      `  listen_port: ${port}`,
      `  max_connections: ${maxConnections}`,
      '  timeouts: { idle: 600s }',
      'admin: { enabled: false }',
      'logging: { format: json, level: warn, access_log: false }',
      'load_balancing:',
      '  upstreams: [{ name: b1, address: 127.0.0.1, port: 9 }]',
      '  health_check: { enabled: false }',
      'middleware: { auth: { enabled: false }, rate_limit: { enabled: false } }',
      '',
    ].join('\n'),
  );
  return file;
}

/** Requests served before the "before" reading. */
const WARM_UP_REQUESTS = 2000;

/** `requests` GET /health over 10 keep-alive connections, closed at the end. */
async function warmUp(port: number, requests: number): Promise<void> {
  const agent = new Agent({ keepAlive: true, maxSockets: 10 });
  const one = (): Promise<void> =>
    new Promise((resolve, reject) => {
      get({ host: '127.0.0.1', port, path: '/health', agent }, (res) => {
        res.resume();
        res.once('end', () => resolve());
      }).once('error', reject);
    });
  try {
    for (let sent = 0; sent < requests; sent += 10) await Promise.all(Array.from({ length: 10 }, one));
  } finally {
    agent.destroy();
  }
}

/** One keep-alive client: GET /health once, then stay connected. Resolves once the response arrived. */
function idleClient(port: number): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1');
    socket.once('error', reject);
    socket.once('connect', () => socket.write('GET /health HTTP/1.1\r\nHost: bench\r\n\r\n'));
    socket.once('data', () => resolve(socket));
  });
}

export async function measureIdleClients(clients: number): Promise<IdleClientsResult> {
  const dir = mkdtempSync(join(tmpdir(), 'portcullis-idle-'));
  const port = await freePort();
  const child = spawn(process.execPath, ['bin/portcullis.js', 'start', '--config', gatewayConfig(dir, port, clients + 100)], {
    cwd: ROOT,
    env: { ...process.env, PORTCULLIS_DATA_DIR: dir },
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  const sockets: Socket[] = [];
  try {
    for (let i = 0; i < 200; i++) {
      try {
        sockets.push(await idleClient(port));
        break;
      } catch {
        await new Promise((resolve) => setTimeout(resolve, 25));
      }
    }
    if (sockets.length === 0) throw new Error('gateway did not start');
    await warmUp(port, WARM_UP_REQUESTS);
    await new Promise((resolve) => setTimeout(resolve, 1000));
    const beforeMb = rssMb(child.pid!);
    // 100 at a time: a burst of 10 000 SYNs would overflow the listen backlog.
    while (sockets.length < clients + 1) {
      const batch = Math.min(100, clients + 1 - sockets.length);
      sockets.push(...(await Promise.all(Array.from({ length: batch }, () => idleClient(port)))));
    }
    await new Promise((resolve) => setTimeout(resolve, 2000));
    const afterMb = rssMb(child.pid!);
    return { clients, beforeMb, afterMb, perClientBytes: ((afterMb - beforeMb) * 1024 * 1024) / clients };
  } finally {
    for (const s of sockets) s.destroy();
    await new Promise<void>((resolve) => {
      if (child.exitCode !== null) return resolve();
      child.once('exit', () => resolve());
      child.kill('SIGTERM');
    });
    rmSync(dir, { recursive: true, force: true });
  }
}

async function main(): Promise<void> {
  ensureCurrentBuild();
  const { values } = parseArgs({ options: { clients: { type: 'string', default: '10000' } } });
  const r = await measureIdleClients(Number(values.clients));
  process.stdout.write(
    `${r.clients} idle keep-alive clients: RSS ${r.beforeMb.toFixed(1)} → ${r.afterMb.toFixed(1)} MB ` +
      `(+${(r.afterMb - r.beforeMb).toFixed(1)} MB, ${Math.round(r.perClientBytes)} B per client)\n`,
  );
}

if (process.argv[1] && import.meta.url.endsWith(process.argv[1].split('/').pop()!)) await main();
