// SIGHUP and SIGUSR1 while the command line is still loading, before the gateway listens for them. Before the fix
// nothing listened until run-gateway.ts did: Node's default actions applied, so SIGHUP ended the process (code 129)
// and SIGUSR1 opened Node's inspector (a debugger on 127.0.0.1:9229), although the README says a SIGHUP during
// start-up is applied once the gateway runs. bin/portcullis.js now listens from its first line and hands what came
// to the gateway. The process is held while bin imports the command line (test/helpers/hold-entry-import.mjs, a module
// loader hook), so the signals land there every time: after bin's code has run and before the gateway's.
import { test, after, before } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startBackend, type TestBackend } from '../helpers/backends.js';
import { startProcess, upstreams, writeConfig, type GatewayProcess } from '../helpers/gateway.js';
import { sleep, waitFor } from '../helpers/wait.js';

const BIN = new URL('../../bin/portcullis.js', import.meta.url).pathname;
const HOLD = new URL('../helpers/hold-entry-import.mjs', import.meta.url).pathname;

let backend: TestBackend;
before(async () => {
  backend = await startBackend('echo');
});
after(async () => {
  await backend?.stop();
});

test('SIGHUP and SIGUSR1 while the command line loads: no inspector, no exit, the reload applied once started', async (t) => {
  const cwd = mkdtempSync(join(tmpdir(), 'portcullis-early-'));
  const configFile = writeConfig({ load_balancing: { upstreams: upstreams([backend.port]) } });
  const go = () => writeFileSync(join(cwd, 'go'), '');
  let gw: GatewayProcess | undefined;
  t.after(async () => {
    go();
    await gw?.cleanup();
    rmSync(cwd, { recursive: true, force: true });
  });
  const starting = startProcess(process.execPath, ['--import', HOLD, BIN, 'start', '--config', configFile], configFile, {
    cwd,
    env: { PORTCULLIS_TEST_HOLD_DIR: cwd },
    timeoutMs: 30_000,
  });
  starting.catch(() => undefined); // awaited below; a failure is reported there
  await waitFor(() => existsSync(join(cwd, 'held')), 'the process held while bin imports the command line', 15_000);
  const pid = gatewayPid(cwd) ?? assert.fail('no gateway process');
  process.kill(pid, 'SIGUSR1');
  process.kill(pid, 'SIGHUP');
  await sleep(200); // the signals are delivered while the import waits
  go();
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
