// `npm run bench -- tls`: HTTPS/1.1 and HTTP/2 through the gateway, against nginx with the same certificate and the
// bare Node pass-through over TLS, in the same run; plus new TLS handshakes per second. Needs wrk, h2load
// (Debian's nghttp2-client) and nginx (nginx-light); a missing tool skips its rows with a note. Not a test.
import { execFileSync, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { closeSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { ROOT, ensureCurrentBuild } from './harness.js';
import { freePort } from '../test/helpers/ports.js';

const DURATION = process.env.BENCH_DURATION ?? '10s';
const CONNECTIONS = Number(process.env.BENCH_CONNECTIONS ?? '64');
const GATEWAY_CPU = process.env.BENCH_GATEWAY_CPU ?? '0';
const LOAD_CPU = process.env.BENCH_LOAD_CPU ?? '1';
/** h2load streams per connection. */
const STREAMS = Number(process.env.BENCH_H2_STREAMS ?? '10');

interface Row {
  name: string;
  rps: number;
  p99: number;
}

const has = (tool: string) => spawnSync('which', [tool]).status === 0;

/** Spawns `command` pinned to `cpu` and waits until `ready(stdout)` holds; stdout goes to a file. */
async function startPinned(cpu: string, command: string, args: string[], env: NodeJS.ProcessEnv, ready: (out: string) => boolean): Promise<{ child: ChildProcess; out: () => string }> {
  const logFile = join(mkdtempSync(join(tmpdir(), 'portcullis-bench-tls-')), 'stdout.log');
  const fd = openSync(logFile, 'w');
  const child = spawn('taskset', ['-c', cpu, command, ...args], { cwd: ROOT, env: { ...process.env, ...env }, stdio: ['ignore', fd, fd] });
  closeSync(fd);
  const out = () => readFileSync(logFile, 'utf8');
  const deadline = Date.now() + 20_000;
  while (Date.now() < deadline && child.exitCode === null) {
    if (ready(out())) return { child, out };
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  child.kill('SIGKILL');
  throw new Error(`${command} did not start: ${out().slice(-400)}`);
}

function stop(p: { child: ChildProcess }): Promise<void> {
  return new Promise((resolve) => {
    if (p.child.exitCode !== null) return resolve();
    p.child.once('exit', () => resolve());
    p.child.kill('SIGTERM');
  });
}

function toMs(value: string): number {
  const m = /^([\d.]+)(us|ms|s)$/.exec(value.trim());
  if (!m) return Number.NaN;
  const n = Number(m[1]);
  return m[2] === 'us' ? n / 1000 : m[2] === 's' ? n * 1000 : n;
}

/** HTTPS/1.1 with wrk (keep-alive); with `close`, every request is a new connection: a full TLS handshake each. */
function wrk(name: string, url: string, close = false): Row {
  const args = ['-c', LOAD_CPU, 'wrk', '-t1', `-c${CONNECTIONS}`, `-d${DURATION}`, '--latency'];
  if (close) args.push('-H', 'Connection: close');
  const out = spawnSync('taskset', [...args, url], { encoding: 'utf8' });
  if (out.status !== 0) throw new Error(`wrk failed: ${out.stderr}`);
  return { name, rps: Number(/Requests\/sec:\s+([\d.]+)/.exec(out.stdout)?.[1]), p99: toMs(/\s99%\s+(\S+)/.exec(out.stdout)?.[1] ?? '') };
}

/** HTTP/2 with h2load: CONNECTIONS/8 connections × STREAMS streams for DURATION; p99 from its per-request log. */
function h2load(name: string, url: string): Row {
  const log = join(mkdtempSync(join(tmpdir(), 'portcullis-h2load-')), 'requests.log');
  const clients = Math.max(1, Math.floor(CONNECTIONS / 8));
  const out = spawnSync('taskset', ['-c', LOAD_CPU, 'h2load', '-c', String(clients), '-m', String(STREAMS), '-D', DURATION.replace(/s$/, ''), '--log-file', log, url], { encoding: 'utf8' });
  if (out.status !== 0) throw new Error(`h2load failed: ${out.stderr || out.stdout}`);
  const rps = Number(/finished in [\d.]+\w+, ([\d.]+) req\/s/.exec(out.stdout)?.[1]);
  // Log lines: start time (µs), status, duration (µs).
  const durations = readFileSync(log, 'utf8').trim().split('\n').map((l) => Number(l.split('\t')[2])).filter((n) => Number.isFinite(n)).sort((a, b) => a - b);
  rmSync(log, { force: true });
  const p99 = durations.length ? durations[Math.min(durations.length - 1, Math.floor(durations.length * 0.99))]! / 1000 : Number.NaN;
  return { name, rps, p99 };
}

function gatewayConfig(port: number, ports: number[], cert: string, key: string): string {
  const file = join(mkdtempSync(join(tmpdir(), 'portcullis-bench-tls-')), 'proxy.yaml');
  writeFileSync(
    file,
    stringify({
      server: { listen_host: '127.0.0.1', listen_port: port, tls: { cert_file: cert, key_file: key } },
      admin: { enabled: false },
      logging: { format: 'json' },
      load_balancing: { upstreams: ports.map((p, i) => ({ name: `b${i}`, address: '127.0.0.1', port: p })), health_check: { enabled: false } },
    }),
  );
  return file;
}

function nginxConfig(dir: string, port: number, ports: number[], cert: string, key: string): string {
  const file = join(dir, 'nginx.conf');
  writeFileSync(
    file,
    `daemon off; master_process off; worker_processes 1; pid ${dir}/nginx.pid; error_log ${dir}/error.log;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path ${dir}; proxy_temp_path ${dir}; fastcgi_temp_path ${dir}; uwsgi_temp_path ${dir}; scgi_temp_path ${dir};
  upstream backends { ${ports.map((p) => `server 127.0.0.1:${p};`).join(' ')} keepalive 128; }
  server {
    listen 127.0.0.1:${port} ssl http2;
    ssl_certificate ${cert}; ssl_certificate_key ${key};
    location / { proxy_pass http://backends; proxy_http_version 1.1; proxy_set_header Connection ""; }
  }
}
`,
  );
  return file;
}

async function main(): Promise<void> {
  for (const tool of ['wrk', 'h2load', 'openssl']) if (!has(tool)) throw new Error(`${tool} is needed (apt-get install -y wrk nghttp2-client openssl)`);
  ensureCurrentBuild();
  const dir = mkdtempSync(join(tmpdir(), 'portcullis-bench-cert-'));
  const cert = join(dir, 'cert.pem');
  const key = join(dir, 'key.pem');
  // One self-signed P-256 certificate for every server under test (the load tools do not verify it).
  execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', key, '-out', cert, '-days', '1', '-subj', '/CN=localhost', '-addext', 'subjectAltName=DNS:localhost,IP:127.0.0.1'], { stdio: 'ignore' });
  const backends = await startPinned(LOAD_CPU, process.execPath, ['--import', 'tsx', 'bench/backends.ts'], {}, (o) => o.includes('"Backends Started"'));
  const ports = JSON.parse(backends.out().split('\n').find((l) => l.includes('Backends Started'))!).ports as number[];
  const rows: Row[] = [];
  const servers: Array<[string, () => Promise<{ child: ChildProcess; url: string }>]> = [
    [
      'bare Node TLS pass-through',
      async () => {
        const port = await freePort();
        const p = await startPinned(GATEWAY_CPU, process.execPath, ['--import', 'tsx', 'bench/passthrough.ts'], { BACKEND_PORTS: ports.join(','), TLS_CERT_FILE: cert, TLS_KEY_FILE: key, PORT: String(port) }, (o) => o.includes('Gateway Started'));
        return { child: p.child, url: `https://127.0.0.1:${port}/` };
      },
    ],
    [
      'gateway',
      async () => {
        const port = await freePort();
        const data = mkdtempSync(join(tmpdir(), 'portcullis-bench-data-'));
        const p = await startPinned(GATEWAY_CPU, process.execPath, ['bin/portcullis.js', 'start', '--config', gatewayConfig(port, ports, cert, key)], { PORTCULLIS_DATA_DIR: data }, (o) => o.includes('"Gateway Started"'));
        return { child: p.child, url: `https://127.0.0.1:${port}/` };
      },
    ],
  ];
  if (has('nginx')) {
    servers.push([
      'nginx',
      async () => {
        const port = await freePort();
        const p = await startPinned(GATEWAY_CPU, 'nginx', ['-c', nginxConfig(dir, port, ports, cert, key), '-p', dir], {}, () => spawnSync('curl', ['-sk', '-o', '/dev/null', `https://127.0.0.1:${port}/`]).status === 0);
        return { child: p.child, url: `https://127.0.0.1:${port}/` };
      },
    ]);
  } else process.stderr.write('note: nginx not installed (apt-get install -y nginx-light): its rows are skipped\n');
  try {
    for (const [name, start] of servers) {
      const server = await start();
      try {
        wrk('warm-up', server.url);
        rows.push(wrk(`${name}, HTTPS/1.1`, server.url));
        // The bare pass-through speaks only HTTP/1.1 (node:https), so it has no h2 row.
        if (name !== 'bare Node TLS pass-through') rows.push(h2load(`${name}, h2 (${STREAMS} streams/conn)`, server.url));
        rows.push(wrk(`${name}, new TLS handshakes/s (Connection: close)`, server.url, true));
      } finally {
        await stop(server);
      }
    }
  } finally {
    await stop(backends);
    rmSync(dir, { recursive: true, force: true });
  }
  const base = (suffix: string) => rows.find((r) => r.name.startsWith('bare') && r.name.endsWith(suffix)) ?? rows.find((r) => r.name.startsWith('nginx') && r.name.endsWith(suffix));
  process.stdout.write(`\n${'scenario'.padEnd(62)} ${'req/s'.padStart(9)} ${'p99 ms'.padStart(8)} ${'vs baseline'.padStart(12)}\n`);
  for (const r of rows) {
    const suffix = r.name.slice(r.name.lastIndexOf(', '));
    const b = r.name.includes(' h2 ') ? rows.find((x) => x.name.startsWith('nginx') && x.name.includes(' h2 ')) : base(suffix);
    const ratio = b && b !== r ? `${((r.rps / b.rps) * 100).toFixed(1)} %` : 'baseline';
    process.stdout.write(`${r.name.padEnd(62)} ${r.rps.toFixed(0).padStart(9)} ${r.p99.toFixed(2).padStart(8)} ${ratio.padStart(12)}\n`);
  }
  process.stdout.write('\nHTTPS/1.1 and handshake rows compare with the bare Node TLS pass-through; h2 rows with nginx (the pass-through has no h2).\n');
}

await main();
