// Start-up mode (src/startup-mode.ts): bin/portcullis.js turns V8's optimising compiler off while a gateway starts,
// which keeps an idle gateway small, and the gateway turns it back on once it listens. Were it never turned back
// on, every request would run in the interpreter at a fraction of the throughput; were it never turned off, the
// memory would come back. V8's own trace (--trace-opt) tells both apart.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { tempDataDir, writeConfig } from '../helpers/gateway.js';
import { freePort } from '../helpers/ports.js';

const ROOT = new URL('../../', import.meta.url).pathname;
/** What --trace-opt prints when a function has been compiled by TurboFan. */
const OPTIMIZED = /completed (compiling|optimizing) .*TURBOFAN/;

interface TracedGateway {
  /** Everything the process wrote to stdout so far: JSON log lines and V8's trace. */
  readonly output: () => string;
  /** stdout up to the "Gateway Started" line. */
  readonly beforeListening: string;
  readonly base: string;
  stop(): Promise<void>;
}

/** Runs `node <nodeFlags> bin/portcullis.js start` with a minimal config and waits until it listens. */
async function startTraced(nodeFlags: readonly string[]): Promise<TracedGateway> {
  const port = await freePort();
  const config = writeConfig({
    server: { listen_host: '127.0.0.1', listen_port: port },
    admin: { enabled: false },
    load_balancing: { upstreams: [{ name: 'b1', address: '127.0.0.1', port: 9 }], health_check: { enabled: false } },
    middleware: { auth: { enabled: false }, rate_limit: { enabled: false } },
  });
  const child = spawn(process.execPath, [...nodeFlags, join(ROOT, 'bin/portcullis.js'), 'start', '--config', config], {
    cwd: ROOT,
    env: { ...process.env, PORTCULLIS_DATA_DIR: tempDataDir() },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => (output += d.toString()));
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const stop = async (): Promise<void> => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    await exited;
  };
  const deadline = Date.now() + 15_000;
  while (!output.includes('"Gateway Started"')) {
    if (Date.now() > deadline || child.exitCode !== null) {
      await stop();
      throw new Error(`gateway did not start: ${stderr.slice(-500)}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  return { output: () => output, beforeListening: output.slice(0, output.indexOf('"Gateway Started"')), base: `http://127.0.0.1:${port}`, stop };
}

/** Enough requests, 50 at a time, to make the request path hot. */
async function drive(base: string, requests = 4000): Promise<void> {
  for (let sent = 0; sent < requests; sent += 50) {
    await Promise.all(
      Array.from({ length: 50 }, async () => {
        const res = await fetch(`${base}/health`);
        assert.equal(res.status, 200);
        await res.arrayBuffer();
      }),
    );
  }
}

/** Waits up to `ms` for `pattern` in the gateway's output. */
async function sawWithin(gateway: TracedGateway, pattern: RegExp, ms: number): Promise<boolean> {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    if (pattern.test(gateway.output())) return true;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  return pattern.test(gateway.output());
}

test('a gateway optimises no code while it starts, and optimises the request path once it listens', async () => {
  const gateway = await startTraced(['--trace-opt']);
  try {
    assert.doesNotMatch(gateway.beforeListening, /TURBOFAN/, 'nothing is optimised before the gateway listens');
    await drive(gateway.base);
    assert.ok(await sawWithin(gateway, OPTIMIZED, 5000), 'traffic gets the request path optimised');
  } finally {
    await gateway.stop();
  }
});

test("a gateway started with node's own --no-opt keeps it: start-up mode does not turn the compiler on", async () => {
  const gateway = await startTraced(['--trace-opt', '--no-opt']);
  try {
    await drive(gateway.base);
    assert.equal(await sawWithin(gateway, OPTIMIZED, 1000), false, 'nothing is optimised under --no-opt');
  } finally {
    await gateway.stop();
  }
});
