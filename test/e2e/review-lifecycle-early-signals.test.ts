// SIGHUP and SIGUSR1 while the command line is still loading, before the gateway listens for them. Before the fix
// nothing listened until run-gateway.ts did: Node's default actions applied, so SIGHUP ended the process (code 129)
// and SIGUSR1 opened Node's inspector (a debugger on 127.0.0.1:9229), although the README says a SIGHUP during
// start-up is applied once the gateway runs. bin/portcullis.js now listens from its first line and hands what came
// to the gateway. The process is held inside cli.ts's read of ./.env, which is a FIFO here, so the signals land
// there every time: after bin's code has run and before the gateway's.
import { test, after, before } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { closeSync, constants, mkdtempSync, openSync, readdirSync, readFileSync, readlinkSync, rmSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startBackend, type TestBackend } from '../helpers/backends.js';
import { startProcess, upstreams, writeConfig, type GatewayProcess } from '../helpers/gateway.js';
import { sleep, waitFor } from '../helpers/wait.js';

const BIN = new URL('../../bin/portcullis.js', import.meta.url).pathname;

let backend: TestBackend;
before(async () => {
  backend = await startBackend('echo');
});
after(async () => {
  await backend?.stop();
});

/**
 * A FIFO at `path` that hands out `text` to each reader in turn (every read of .env: cli.ts, then each config read).
 * `firstReader` resolves once a reader has opened it, before anything is written; the first reader waits for `go`.
 */
function dotEnvFifo(path: string, text: string, go: Promise<void>) {
  execFileSync('mkfifo', [path]);
  let serving = true;
  let opened!: () => void;
  const firstReader = new Promise<void>((resolve) => (opened = resolve));
  const done = (async () => {
    for (let first = true; serving; first = false) {
      const writer = await open(path, 'w'); // resolves when a reader opens the FIFO
      if (first) {
        opened();
        await go;
      }
      if (serving) await writer.writeFile(text);
      await writer.close();
    }
  })();
  return {
    firstReader,
    async stop() {
      serving = false;
      // A writer waiting for a reader is released by one that opens and closes at once.
      closeSync(openSync(path, constants.O_RDONLY | constants.O_NONBLOCK));
      await done;
    },
  };
}

test('SIGHUP and SIGUSR1 while the command line loads: no inspector, no exit, the reload applied once started', async (t) => {
  const cwd = mkdtempSync(join(tmpdir(), 'portcullis-early-'));
  const configFile = writeConfig({ load_balancing: { upstreams: upstreams([backend.port]) } });
  let release!: () => void;
  const go = new Promise<void>((resolve) => (release = resolve));
  const fifo = dotEnvFifo(join(cwd, '.env'), 'EARLY_SIGNALS_TEST=1\n', go);
  let gw: GatewayProcess | undefined;
  t.after(async () => {
    release();
    await gw?.cleanup();
    await fifo.stop();
    rmSync(cwd, { recursive: true, force: true });
  });
  const starting = startProcess(process.execPath, [BIN, 'start', '--config', configFile], configFile, { cwd, timeoutMs: 30_000 });
  starting.catch(() => undefined); // awaited below; a failure is reported there
  await fifo.firstReader;
  const pid = gatewayPid(cwd) ?? assert.fail('no gateway process');
  process.kill(pid, 'SIGUSR1');
  process.kill(pid, 'SIGHUP');
  await sleep(200); // the signals are delivered while the read waits
  release();
  gw = await starting;
  const running = gw;
  await waitFor(() => running.logs.some((l) => l.msg === 'Config Reloaded'), 'the reload asked for during start-up', 15_000);
  assert.doesNotMatch(running.stderr(), /inspector|Debugger/i, 'SIGUSR1 did not open the inspector');
  assert.equal(running.child.exitCode, null, 'the gateway runs');
  assert.equal((await fetch(`${running.url}/x`)).status, 200);
});

/** The pid of the `portcullis start` process whose working directory is `cwd` (the one this test spawned). */
function gatewayPid(cwd: string): number | undefined {
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      if (readlinkSync(`/proc/${entry}/cwd`) === cwd && readFileSync(`/proc/${entry}/cmdline`, 'utf8').includes('portcullis.js')) {
        return Number(entry);
      }
    } catch {
      // exited, or not ours to read
    }
  }
  return undefined;
}
