// A command whose reader has gone (`portcullis routes --json | true`, a pager quit early) ends as it would have, with
// its own exit code and nothing on stderr: it printed `Error: write EPIPE` with a stack trace and exited 1.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { writeConfig } from '../helpers/gateway.js';

const BIN = join(import.meta.dirname, '../../bin/portcullis.js');

/** Runs the command with its stdout a pipe whose reading end is closed at once. */
function runIntoClosedPipe(args: readonly string[]): Promise<{ code: number | null; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [BIN, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    child.stdout.destroy(); // the reader is gone before the command writes anything
    let stderr = '';
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stderr }));
  });
}

test('output to a closed pipe: the exit code of the command, no EPIPE stack trace', async () => {
  const config = writeConfig({ load_balancing: { upstreams: [{ name: 'a', address: '127.0.0.1', port: 3000 }] } });
  const cases: [string[], number][] = [
    [['routes', '--config', config, '--json'], 0],
    [['routes', '--config', config], 0],
    [['schema'], 0],
    [['--help'], 0],
    [['check-config', '--config', config], 0],
    [['routes', '--config', config, '--match', 'GET http://x/a/../b'], 3],
  ];
  for (const [args, code] of cases) {
    const result = await runIntoClosedPipe(args);
    assert.equal(result.stderr, '', args.join(' '));
    assert.equal(result.code, code, args.join(' '));
  }
});
