// An answer given while the client is still uploading reaches the client (found by review). The gateway closes such a
// connection after the answer (it will not read a refused upload to its end), and node closed it by destroying the
// socket at once: the client's bytes still arriving met a closed socket, the kernel reset the connection, and a client
// that had not read the answer yet lost it ("connection reset" instead of the 401, in most tries). The close now
// lingers, as nginx's does: FIN after the answer, the rest read and thrown away until the client closes or 5 s pass.
// The clients run in their own process: the race between the reset and the client's read needs two processes.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import type { InProcessGateway } from '../helpers/gateway.js';
import { ADMIN_TOKEN } from '../helpers/identity.js';
import { startAuthStack, type AuthStack } from '../helpers/auth-gateway.js';

/** Sends `tries` POSTs declaring 20 MB, written as fast as the socket takes them; prints the status each one got. */
const CLIENT = `
import net from 'node:net';
const [port, path, tries, ...headers] = process.argv.slice(1);
const total = 20_000_000;
const chunk = Buffer.alloc(256 * 1024, 'a');
function once() {
  return new Promise((resolve) => {
    const s = net.connect(Number(port), '127.0.0.1');
    let got = '';
    let sent = 0;
    s.write('POST ' + path + ' HTTP/1.1\\r\\nHost: 127.0.0.1\\r\\nContent-Type: application/json\\r\\nContent-Length: ' + total + '\\r\\n' + headers.map((h) => h + '\\r\\n').join('') + '\\r\\n');
    const pump = () => { while (sent < total && !s.destroyed) { sent += chunk.length; if (!s.write(chunk)) return void s.once('drain', pump); } };
    s.on('data', (d) => (got += d.toString('latin1')));
    s.on('error', () => {});
    s.on('close', () => { clearTimeout(timer); resolve((/^HTTP\\/1\\.1 (\\d{3})/.exec(got) ?? [])[1] ?? 'none'); });
    const timer = setTimeout(() => s.destroy(), 10_000);
    pump();
  });
}
const statuses = [];
for (let i = 0; i < Number(tries); i++) statuses.push(await once());
process.stdout.write(JSON.stringify(statuses));
`;

function uploads(port: number, path: string, tries: number, ...headers: string[]): Promise<string[]> {
  return new Promise((resolve, reject) => {
    execFile(process.execPath, ['--input-type=module', '-e', CLIENT, String(port), path, String(tries), ...headers], { timeout: 120_000 }, (err, stdout) => {
      if (err) reject(err);
      else resolve(JSON.parse(stdout) as string[]);
    });
  });
}

// The /auth/* protections off (startAuthStack's default): this suite sends many logins from one address.
let stack: AuthStack;
let gw: InProcessGateway;

before(async () => {
  stack = await startAuthStack({ admin: { token: ADMIN_TOKEN } });
  gw = stack.gw;
});

after(async () => {
  await stack?.close();
});

const TRIES = 8;

test('a protected route refusing a 20 MB upload without a token: the client reads its 401 every time', async () => {
  assert.deepEqual(await uploads(gw.gateway.port, '/private/upload', TRIES), Array(TRIES).fill('401'));
});

test('/auth/login over its 64 KB body limit: the client reads its 413 every time', async () => {
  assert.deepEqual(await uploads(gw.gateway.port, '/auth/login', TRIES), Array(TRIES).fill('413'));
});

test('the admin listener refusing a 20 MB upload (no token; over the API body limit): 401 and 413 every time', async () => {
  const port = Number(new URL(gw.adminUrl!).port);
  assert.deepEqual(await uploads(port, '/metrics', TRIES), Array(TRIES).fill('401'));
  assert.deepEqual(await uploads(port, '/admin/users', TRIES, `Authorization: Bearer ${ADMIN_TOKEN}`), Array(TRIES).fill('413'));
});
