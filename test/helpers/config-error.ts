// The one-line ConfigError a config text produces, for tests of the loader's refusals; and the verdict ('ok' or the
// one-line refusal) check-config and start give on a config file, for tests that the readers agree.
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { ConfigError, parseConfigText } from '../../src/config/load.js';
import { runCli, startProcess, type GatewayProcess } from './gateway.js';

const ROOT = new URL('../../', import.meta.url).pathname;

/** The ConfigError message `text` produces under `env` (fails the test when the text loads, or throws another error). */
export function configErrorOf(text: string, env: NodeJS.ProcessEnv = {}): string {
  try {
    parseConfigText(text, env);
  } catch (err) {
    assert.ok(err instanceof ConfigError, `expected ConfigError, got ${String(err)}`);
    assert.ok(!err.message.includes('\n'), 'one line');
    return err.message;
  }
  assert.fail('config unexpectedly loaded');
}

/** A gateway with auth on and nothing else of note: the config the JWT-secret tests start with a data dir of theirs. */
export const AUTH_ONLY_CONFIG = `server: {listen_host: 127.0.0.1, listen_port: 0}
admin: {enabled: false}
logging: {format: json}
middleware: {auth: {enabled: true}}
load_balancing:
  health_check: {enabled: false}
  upstreams: [{name: a, address: 127.0.0.1, port: 1}]
`;

/** check-config's verdict on `path`: 'ok', or its one stderr line. Bounded: a check that waits for ever fails the test. */
export async function checkConfigVerdict(path: string, env: NodeJS.ProcessEnv, cwd: string): Promise<string> {
  const result = await runCli(['check-config', '--config', path], env, { cwd, boundMs: 15_000 });
  assert.notEqual(result.code, null, `check-config of ${path} did not end`);
  return result.code === 0 ? 'ok' : result.stderr.trim();
}

/** start's verdict on `path`: 'ok' once it serves (then stopped), or its one stderr line; bounded: one that hangs fails. */
export async function startVerdict(path: string, env: NodeJS.ProcessEnv, cwd: string): Promise<string> {
  let gw: GatewayProcess;
  try {
    gw = await startProcess(process.execPath, [join(ROOT, 'bin/portcullis.js'), 'start', '--config', path], path, { cwd, env, timeoutMs: 12_000 });
  } catch (err) {
    const exited = /^gateway exited with 1: ([^\n]*)\n$/.exec((err as Error).message);
    assert.ok(exited !== null, `start on ${path}: ${(err as Error).message}`);
    return exited[1]!;
  }
  await gw.cleanup();
  return 'ok';
}
