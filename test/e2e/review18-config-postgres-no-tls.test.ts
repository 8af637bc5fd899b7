// What was wrong (found by review): `database.url` with `sslmode=require` against a PostgreSQL server without TLS
// ended every command and start-up with "user store unavailable (no error code from the driver)", after node-postgres
// printed a nine-line "SECURITY WARNING" on stderr (not JSON, in the gateway's log stream) about how it reads the
// mode. The driver's refusal is now named, and the mode is handed to the driver as the verify-full it reads it as.
// The server here is a stand-in that answers PostgreSQL's SSLRequest as a server without TLS does: one byte, "N".
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runCli } from '../helpers/gateway.js';
import { withoutSslModeAlias } from '../../src/store/postgres.js';

let server: Server;
let port: number;
const dir = mkdtempSync(join(tmpdir(), 'portcullis-pg-no-tls-'));

before(async () => {
  server = createServer((socket) => {
    socket.once('data', () => socket.write('N')); // SSLRequest → "no TLS here"
    socket.on('error', () => undefined);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  port = (server.address() as { port: number }).port;
});

after(async () => {
  await new Promise((resolve) => server.close(resolve));
  rmSync(dir, { recursive: true, force: true });
});

test('sslmode=require against a server without TLS: one line naming the cause, no driver warning', async () => {
  for (const mode of ['require', 'prefer', 'verify-full']) {
    const config = join(dir, `${mode}.yaml`);
    writeFileSync(
      config,
      `server: {listen_host: 127.0.0.1, listen_port: 0}
admin: {enabled: false}
middleware: {auth: {enabled: true}}
jwt: {secret: "0123456789abcdef0123456789abcdef0123"}
database: {url: "postgres://postgres@127.0.0.1:${port}/test?sslmode=${mode}"}
load_balancing: {upstreams: [{name: a, address: 127.0.0.1, port: 1}], health_check: {enabled: false}}
`,
    );
    for (const command of ['users', 'start']) {
      const run = await runCli(command === 'users' ? ['users', 'list', '--config', config] : ['start', '--config', config], {}, { cwd: dir, boundMs: 20_000 });
      assert.equal(run.code, 1, `${mode} ${command}`);
      assert.equal(
        run.stderr,
        'portcullis: user store unavailable: SERVER_NO_TLS (the server does not take TLS connections, which sslmode in database.url asks for)\n',
        `${mode} ${command}`,
      );
    }
  }
});

test('the modes node-postgres reads as verify-full are handed to it so; the others, and libpq compatibility, as written', () => {
  assert.equal(withoutSslModeAlias('postgres://u:p@h/db?sslmode=require'), 'postgres://u:p@h/db?sslmode=verify-full');
  assert.equal(withoutSslModeAlias('postgres://u:p@h/db?x=1&sslmode=prefer&y=2'), 'postgres://u:p@h/db?x=1&sslmode=verify-full&y=2');
  assert.equal(withoutSslModeAlias('postgres://u:p@h/db?sslmode=verify-ca&sslrootcert=ca.pem'), 'postgres://u:p@h/db?sslmode=verify-full&sslrootcert=ca.pem');
  for (const same of [
    'postgres://u:p@h/db?sslmode=disable',
    'postgres://u:p@h/db?sslmode=no-verify',
    'postgres://u:p@h/db?sslmode=require&uselibpqcompat=true',
    'postgres://u:sslmode=require@h/db',
    'postgres://u:p@h/db?sslmode=requirex',
  ]) {
    assert.equal(withoutSslModeAlias(same), same);
  }
});
