// Client text reaches log lines, and a log is read on terminals (`tail -f`, `docker logs`), where DEL and the C1
// controls (U+007F-U+009F) can act as escape sequences (U+009B is a CSI). JSON lets them stand raw in a string, and
// JSON.stringify and pino write them so; the gateway writes them escaped, the same JSON value. The family's members:
// a refused request target over HTTP/2 (the path may hold any Latin-1 byte there) in the access log on stdout and in
// the access-log file, in both formats, and a header value a plugin logs (HTTP/1 obs-text). Read from a real
// `portcullis start`, as written; and the pretty format, which prints values rather than JSON, shows them as text.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { childExit } from '../helpers/child-exit.js';
import { tempDataDir, writeConfig } from '../helpers/gateway.js';
import { freePort } from '../helpers/ports.js';
import { h2connect, h2request } from '../helpers/h2.js';
import { openSocket, responseUntilClose } from '../helpers/raw.js';
import { tlsStackHooks } from '../helpers/tls-stack.js';
import { waitFor } from '../helpers/wait.js';

const BIN = new URL('../../bin/portcullis.js', import.meta.url).pathname;

const CONTROLS = /[\u007f-\u009f]/;
// (DEL too is escaped, but nghttp2 refuses it in :path before the gateway sees it.)
const PATHS = ['/a\u009b31mred', '/b\u0080x', '/c\u0085\u0090\u009f'];

const stack = tlsStackHooks('Log Controls CA');
const { ca, cert, cleanups, backend } = stack;
const gateway = stack.gateway;

/** Sends each of PATHS over HTTP/2; each is refused (400) before any phase. */
async function sendPaths(port: number): Promise<void> {
  const session = await h2connect(port, ca.ca);
  try {
    for (const path of PATHS) assert.equal((await h2request(session, { ':path': path })).status, 400, JSON.stringify(path));
  } finally {
    session.close();
  }
}

function assertEscaped(lines: readonly string[]): void {
  for (const line of lines) assert.doesNotMatch(line, CONTROLS, `a control character written raw: ${JSON.stringify(line)}`);
}

for (const format of ['events', 'single'] as const) {
  test(`refused HTTP/2 targets with C1 controls: escaped in the access log on stdout and in the file (${format})`, async () => {
    const b = await backend();
    const tls = { cert_file: cert.certFile, key_file: cert.keyFile };
    const upstreams = { upstreams: [{ name: 'api', address: '127.0.0.1', port: b.port }], health_check: { enabled: false } };
    const onStdout = await gateway({ server: { tls }, load_balancing: upstreams, logging: { access_log_format: format } });
    await sendPaths(onStdout.port);
    await waitFor(() => onStdout.logs.filter((l) => l.msg === 'Request Completed').length === PATHS.length, 'the requests logged', 5_000);
    assertEscaped(onStdout.lines);
    const logged = onStdout.logs.filter((l) => l.msg === 'Request Completed').map((l) => l.path);
    assert.deepEqual(logged, PATHS, 'the same path as sent, once read as JSON');

    const file = join(stack.dir, `access-${format}.log`);
    const toFile = await gateway({ server: { tls }, load_balancing: upstreams, logging: { access_log_format: format, access_log_file: file } });
    await sendPaths(toFile.port);
    const fileLines = (): string[] => readFileSync(file, 'utf8').split('\n').filter((l) => l.includes('"Request Completed"'));
    await waitFor(() => fileLines().length === PATHS.length, 'the requests in the file', 5_000); // written within 200 ms
    assertEscaped(fileLines());
    assert.deepEqual(fileLines().map((l) => (JSON.parse(l) as { path: string }).path), PATHS);
  });
}

test("a header value with C1 controls that a plugin logs (HTTP/1 obs-text) is escaped in the plugin's line", async () => {
  const b = await backend();
  const gw = await gateway({
    load_balancing: { upstreams: [{ name: 'api', address: '127.0.0.1', port: b.port }], health_check: { enabled: false } },
    plugins: [{ name: 'notes', module: new URL('../plugins/fixtures/header-logger.mjs', import.meta.url).pathname, config: { header: 'x-note' } }],
    middleware: { plugins: ['notes'] },
  });
  // Bytes 0x9B and 0x85 inside a header value: HTTP/1 allows them (obs-text), and node reads them as U+009B, U+0085.
  const socket = await openSocket(gw.port);
  socket.write(Buffer.from('GET /x HTTP/1.1\r\nHost: a\r\nX-Note: a\u009b31mb\u0085c\r\nConnection: close\r\n\r\n', 'latin1'));
  const res = await responseUntilClose(socket);
  assert.equal(res.status, 200);
  await waitFor(() => gw.logs.some((l) => l.msg === 'Header Seen'), 'the plugin line', 5_000);
  assertEscaped(gw.lines);
  assert.equal(gw.logs.find((l) => l.msg === 'Header Seen')!.note, 'a\u009b31mb\u0085c');
});

test('the pretty format (a terminal\'s default) shows the controls as text, never as characters', async () => {
  const b = await backend();
  const port = await freePort();
  const config = writeConfig({
    server: { listen_port: port },
    load_balancing: { upstreams: [{ name: 'api', address: '127.0.0.1', port: b.port }], health_check: { enabled: false } },
    plugins: [{ name: 'notes', module: new URL('../plugins/fixtures/header-logger.mjs', import.meta.url).pathname, config: { header: 'x-note' } }],
    middleware: { plugins: ['notes'] },
    logging: { format: 'pretty' },
  });
  const dataDir = tempDataDir();
  const child = spawn(process.execPath, [BIN, 'start', '--config', config], { env: { ...process.env, PORTCULLIS_DATA_DIR: dataDir }, stdio: ['ignore', 'pipe', 'pipe'] });
  let text = '';
  child.stdout.on('data', (d: Buffer) => (text += d.toString()));
  child.stderr.on('data', (d: Buffer) => (text += d.toString()));
  const exited = childExit(child);
  cleanups.push(async () => {
    child.kill('SIGKILL');
    await exited;
    rmSync(dataDir, { recursive: true, force: true });
  });
  await waitFor(() => text.includes('Gateway Started'), 'the pretty start line', 15_000);
  const socket = await openSocket(port);
  socket.write(Buffer.from('GET /x HTTP/1.1\r\nHost: a\r\nX-Note: a\u009b31mb\r\nConnection: close\r\n\r\n', 'latin1'));
  assert.equal((await responseUntilClose(socket)).status, 200);
  await waitFor(() => text.includes('Header Seen') && text.includes('a\\u009b31mb'), 'the plugin line, its control shown as text', 5_000);
  assert.doesNotMatch(text, CONTROLS);
});
