// The access log follows `logging.access_log` alone, as nginx's and Kong's do; `logging.level` governs the operational
// lines. A gateway at `logging.level: warn` or `error` wrote no `Request Completed` at all, `access_log_file` set or
// not (the lines were info lines, gated on the level): an operator quieting the warnings lost the record of every
// request. Now the completion line (and a WebSocket tunnel's Tunnel Closed) is written whenever the access log is
// on, to the file or to stdout (JSON or pretty); Request Start and Select Upstream, the per-request detail lines,
// still follow the level; `access_log: false` still turns the lines off.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startBackend, type TestBackend } from '../helpers/backends.js';
import { childExit } from '../helpers/child-exit.js';
import { startEmbeddedWithAccessLog } from '../helpers/embedded.js';
import { getStatus as get } from '../helpers/http.js';
import { parseConfigText } from '../../src/config/load.js';
import { startInProcess, tempDataDir, upstreams, writeConfig, type ConfigInput } from '../helpers/gateway.js';
import { freePort } from '../helpers/ports.js';
import { waitFor } from '../helpers/wait.js';
import { stringify } from 'yaml';

const BIN = new URL('../../bin/portcullis.js', import.meta.url).pathname;

let backend: TestBackend;
let dir: string;
before(async () => {
  backend = await startBackend('api');
  dir = mkdtempSync(join(tmpdir(), 'portcullis-access-level-'));
});
after(async () => {
  await backend?.stop();
  if (dir !== undefined) rmSync(dir, { recursive: true, force: true });
});

/** What a gateway process wrote, read once it has exited (every buffered line flushed at its stop). */
interface Output {
  readonly stdout: string;
  readonly stderr: string;
  /** The access-log file's content ('' without a file). */
  readonly file: string;
}

/**
 * Runs `portcullis start` on a known port with `logging` (JSON unless it says otherwise), waits until it answers (at
 * warn or error there is no "Gateway Started" line to wait for), sends GET `path`, then stops it with SIGTERM and
 * returns what it wrote. `LOG_LEVEL` is left out of its environment: the config's level is the one tested.
 */
async function runOnce(logging: ConfigInput, path: string): Promise<Output> {
  const port = await freePort();
  const file = typeof logging.access_log_file === 'string' ? logging.access_log_file : undefined;
  const config = writeConfig({
    server: { listen_port: port },
    admin: { enabled: false },
    load_balancing: { upstreams: upstreams([backend.port]) },
    logging,
  });
  const dataDir = tempDataDir();
  const env: NodeJS.ProcessEnv = { ...process.env, PORTCULLIS_DATA_DIR: dataDir };
  delete env.LOG_LEVEL;
  const child = spawn(process.execPath, [BIN, 'start', '--config', config], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const exited = childExit(child);
  try {
    // /health answers once the gateway listens; a connection refused before that is 0.
    await waitFor(async () => (await get(port, '/health')) === 200, `the gateway to answer: ${stderr}`, 20_000, 50);
    assert.equal(await get(port, path), 200);
    child.kill('SIGTERM');
    const { code } = await exited;
    assert.equal(code, 0, stderr);
  } finally {
    child.kill('SIGKILL');
    await exited;
    rmSync(dataDir, { recursive: true, force: true });
    rmSync(join(config, '..'), { recursive: true, force: true });
  }
  return { stdout, stderr, file: file !== undefined && existsSync(file) ? readFileSync(file, 'utf8') : '' };
}

/** The JSON lines of `text` (other lines, such as pretty output, left out). */
function jsonLines(text: string): Array<Record<string, unknown>> {
  return text
    .split('\n')
    .filter((line) => line.startsWith('{'))
    .map((line) => JSON.parse(line) as Record<string, unknown>);
}

/** The lines of `msg` for `path` among `lines`. */
function linesOf(lines: Array<Record<string, unknown>>, msg: string, path: string): Array<Record<string, unknown>> {
  return lines.filter((l) => l.msg === msg && l.path === path);
}

describe('logging.level above info keeps the access log (spawned gateway)', () => {
  for (const level of ['warn', 'error'] as const) {
    test(`level ${level}, access_log_file set: the Request Completed line is in the file, the detail lines follow the level`, async () => {
      const file = join(dir, `access-${level}.log`);
      const path = `/file-${level}`;
      const out = await runOnce({ level, access_log_file: file }, path);
      const lines = jsonLines(out.file);
      const completed = linesOf(lines, 'Request Completed', path);
      assert.equal(completed.length, 1, `one Request Completed in the file: ${out.file}`);
      assert.equal(completed[0]!.status, 200);
      assert.equal(completed[0]!.level, 30, 'still an info line, as before');
      assert.deepEqual(linesOf(lines, 'Request Start', path), [], 'Request Start follows the level');
      assert.deepEqual(lines.filter((l) => l.msg === 'Select Upstream'), [], 'Select Upstream follows the level');
      assert.deepEqual(jsonLines(out.stdout).filter((l) => l.msg === 'Request Completed'), [], 'nothing of it on stdout');
    });

    test(`level ${level}, JSON on stdout: the Request Completed line is on stdout`, async () => {
      const path = `/stdout-${level}`;
      const out = await runOnce({ level, format: 'json' }, path);
      const lines = jsonLines(out.stdout);
      assert.equal(linesOf(lines, 'Request Completed', path).length, 1, `one Request Completed on stdout: ${out.stdout}`);
      assert.deepEqual(linesOf(lines, 'Request Start', path), [], 'Request Start follows the level');
      // The level still quiets the operational info lines.
      assert.deepEqual(lines.filter((l) => l.msg === 'Gateway Started'), []);
    });

    test(`level ${level}, pretty on stdout: the Request Completed line is on stdout`, async () => {
      const path = `/pretty-${level}`;
      const out = await runOnce({ level, format: 'pretty' }, path);
      // pino-pretty writes a record as its time, level and message, then one indented line per field.
      const records = out.stdout.split(/\n(?=\[)/);
      const completed = records.filter((r) => r.includes('Request Completed') && r.includes(`path: "${path}"`));
      assert.equal(completed.length, 1, `one Request Completed on stdout: ${out.stdout}`);
      assert.equal(out.stdout.includes('Request Start'), false, 'Request Start follows the level');
      assert.equal(out.stdout.includes('Gateway Started'), false, 'the level still quiets the operational lines');
    });
  }

  test('access_log: false at level warn: no access line in the file nor on stdout', async () => {
    const file = join(dir, 'access-off.log');
    const path = '/off-file';
    const out = await runOnce({ level: 'warn', access_log: false, access_log_file: file }, path);
    assert.deepEqual(jsonLines(out.file).filter((l) => l.msg === 'Request Completed'), [], out.file);
    const stdout = await runOnce({ level: 'warn', access_log: false, format: 'json' }, '/off-stdout');
    assert.deepEqual(jsonLines(stdout.stdout).filter((l) => l.msg === 'Request Completed'), [], stdout.stdout);
    const pretty = await runOnce({ level: 'warn', access_log: false, format: 'pretty' }, '/off-pretty');
    assert.equal(pretty.stdout.includes('Request Completed'), false, pretty.stdout);
  });
});

describe('logging.level above info keeps the access log (in-process gateway)', () => {
  test('format single at level error: one line per request', async () => {
    const gw = await startInProcess({ load_balancing: { upstreams: upstreams([backend.port]) }, admin: { enabled: false }, logging: { level: 'error', access_log_format: 'single' } });
    try {
      assert.equal(await get(gw.gateway.port, '/single'), 200);
      await waitFor(() => linesOf(gw.logs, 'Request Completed', '/single').length === 1, 'the Request Completed line', 10_000);
      assert.equal(linesOf(gw.logs, 'Request Completed', '/single')[0]!.attempts, 1);
    } finally {
      await gw.close();
    }
  });

  test('a reload from info to error keeps the completion line and drops the detail lines; access_log: false ends both', async () => {
    // As startInProcess writes it (its test defaults), so the reload changes the logging section only.
    const base: ConfigInput = {
      server: { listen_host: '127.0.0.1', listen_port: 0 },
      admin: { listen_host: '127.0.0.1', listen_port: 0, enabled: false },
      load_balancing: { upstreams: upstreams([backend.port]) },
    };
    const gw = await startInProcess({ ...base, logging: { level: 'info' } });
    const reloadTo = (logging: ConfigInput) => gw.gateway.reload(parseConfigText(stringify({ ...base, logging: { format: 'json', ...logging } })));
    try {
      assert.equal(await get(gw.gateway.port, '/before'), 200);
      await waitFor(() => linesOf(gw.logs, 'Request Completed', '/before').length === 1, 'the line at info', 10_000);
      assert.equal(linesOf(gw.logs, 'Request Start', '/before').length, 1);

      await reloadTo({ level: 'error' });
      assert.equal(await get(gw.gateway.port, '/after'), 200);
      await waitFor(() => linesOf(gw.logs, 'Request Completed', '/after').length === 1, 'the line at error', 10_000);
      assert.deepEqual(linesOf(gw.logs, 'Request Start', '/after'), []);

      await reloadTo({ level: 'error', access_log: false });
      assert.equal(await get(gw.gateway.port, '/off'), 200);
      // A request logged after it shows the lines of /off would have been written by now (they are synchronous).
      await reloadTo({ level: 'error' });
      assert.equal(await get(gw.gateway.port, '/on-again'), 200);
      await waitFor(() => linesOf(gw.logs, 'Request Completed', '/on-again').length === 1, 'the line once on again', 10_000);
      assert.deepEqual(linesOf(gw.logs, 'Request Completed', '/off'), []);
    } finally {
      await gw.close();
    }
  });
});

describe('an embedded gateway (startGateway) writes its access lines where the config says', () => {
  // Without a logger of the caller's, startGateway builds one from `logging`: it opened access_log_file, and then
  // wrote the access lines to stdout, leaving the file empty.
  test('access_log_file at level warn: the Request Completed line is in the file', async () => {
    const file = join(dir, 'embedded.log');
    const embedded = await startEmbeddedWithAccessLog(backend.port, file);
    try {
      assert.equal(await get(embedded.port, '/embedded'), 200);
    } finally {
      // close() writes out the buffered lines.
      await embedded.close();
    }
    const lines = jsonLines(existsSync(file) ? readFileSync(file, 'utf8') : '');
    assert.equal(linesOf(lines, 'Request Completed', '/embedded').length, 1, `the line in the file: ${JSON.stringify(lines)}`);
  });
});
