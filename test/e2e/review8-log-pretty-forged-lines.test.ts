// The pretty log format (logging.format: pretty, and `auto` on a terminal) prints each line's message and field
// names as text, not JSON: pino-pretty drops the controls that start escape sequences there, but keeps a newline.
// A plugin that logs client text as its message (a decoded query parameter: %0A is a newline) or as a field's name
// let a client write lines of its own on the operator's terminal, a forged "Gateway Stopped" or "Config Reloaded"
// under the real ones. The JSON format escapes them; the pretty one now shows a newline or carriage return in a
// message or a name as the text \n or \r, so each event stays one entry. Members: LF, CR LF, CR alone, and a
// newline with the line's indentation (a forged field), through the message and through a field's name.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { rmSync } from 'node:fs';
import { childExit } from '../helpers/child-exit.js';
import { startBackend } from '../helpers/backends.js';
import { tempDataDir, writeConfig } from '../helpers/gateway.js';
import { freePort } from '../helpers/ports.js';
import { createClient } from '../helpers/http.js';
import { waitFor } from '../helpers/wait.js';

const BIN = new URL('../../bin/portcullis.js', import.meta.url).pathname;
const FORGED = 'Forged Event';

/** Each a query value that tries to start a line of its own; the marker tells its lines apart. */
const VALUES = [
  `m1\n[12:00:00.000] INFO: ${FORGED}`,
  `m2\r\n[12:00:00.000] WARN: ${FORGED}`,
  `m3\r[12:00:00.000] INFO: ${FORGED}`,
  `m4\n    user: "admin"`,
];

test('pretty logs: a newline or carriage return in a plugin\'s message or field name cannot start a line of its own', async () => {
  const up = await startBackend('up');
  const port = await freePort();
  const dataDir = tempDataDir();
  const config = writeConfig({
    server: { listen_port: port },
    load_balancing: { upstreams: [{ name: 'api', address: '127.0.0.1', port: up.port }], health_check: { enabled: false } },
    plugins: [{ name: 'notes', module: new URL('../plugins/fixtures/query-logger.mjs', import.meta.url).pathname, config: { param: 'q' } }],
    middleware: { plugins: ['notes'] },
    logging: { format: 'pretty' },
  });
  const child = spawn(process.execPath, [BIN, 'start', '--config', config], { env: { ...process.env, PORTCULLIS_DATA_DIR: dataDir }, stdio: ['ignore', 'pipe', 'pipe'] });
  const exited = childExit(child);
  const client = createClient();
  try {
    let text = '';
    child.stdout.on('data', (d: Buffer) => (text += d.toString()));
    child.stderr.on('data', (d: Buffer) => (text += d.toString()));
    await waitFor(() => text.includes('Gateway Started'), 'the pretty start line', 15_000);
    for (const value of VALUES) {
      const res = await client.request(`http://127.0.0.1:${port}/x?q=${encodeURIComponent(value)}`);
      assert.equal(res.status, 200);
    }
    await waitFor(() => (text.match(/Query Key Seen/g) ?? []).length === VALUES.length, 'the plugin lines', 10_000);
    const lines = text.split('\n');
    // An entry starts with "[time] LEVEL:"; a field line starts with four spaces, then its name.
    const forged = lines.filter((line) => line.includes(FORGED) && /^\S*\[12:00:00\.000\]/.test(line.replace(/^\r/, '')));
    assert.deepEqual(forged, [], 'no entry of the client\'s own');
    assert.doesNotMatch(text, /\r/, 'no carriage return reaches the terminal');
    assert.ok(!lines.some((line) => line.startsWith('    user: "admin"')), 'no field line of the client\'s own');
    for (const marker of ['m1', 'm2', 'm3', 'm4']) {
      // The message, then the name, each on the entry's own line: the newline shown as text.
      assert.ok(lines.some((line) => /^\[[\d:.]+\] INFO: /.test(line) && line.includes(`${marker}\\`)), `${marker}: the message on its entry's line`);
      assert.ok(lines.some((line) => line.startsWith(`    ${marker}\\`)), `${marker}: the field name on its own line`);
    }
  } finally {
    await client.close();
    child.kill('SIGKILL');
    await exited;
    rmSync(dataDir, { recursive: true, force: true });
    await up.stop();
  }
});
