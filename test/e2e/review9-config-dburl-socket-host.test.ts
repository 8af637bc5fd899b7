// database.url naming a Unix-socket directory in its query with a user (and password) before an empty host:
// `postgres://user:pass@/db?host=/var/run/postgresql`, Cloud SQL's `...@/db?host=/cloudsql/project:region:instance`.
// node-postgres reads it (pg-connection-string retries the parse with a placeholder host, then takes the query's
// host), but the schema asked the WHATWG parser alone, which refuses credentials without a host: check-config and
// start said "must be empty (SQLite in the data dir) or a postgres:// or postgresql:// URL" to a URL the driver
// connects with. Now the URL is parsed as the driver parses it (config/postgres-url.ts) for that verdict too.
// Real sockets: the test PostgreSQL's own socket directory.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { AUTH_ONLY_CONFIG, checkConfigVerdict, configErrorOf, startVerdict } from '../helpers/config-error.js';
import { isolatedDatabase, uniqueApplicationName, type IsolatedDatabase } from '../helpers/postgres-db.js';
import { DATABASE_URL, requirePostgres } from '../helpers/services.js';
import { pkiDir } from '../helpers/tls.js';

const skip = await requirePostgres();
const SOCKET_DIR = process.env.PGSOCKET_DIR ?? '/var/run/postgresql';
const work = pkiDir();
let db: IsolatedDatabase | undefined;
before(async () => {
  if (skip) return;
  // The test PostgreSQL's socket: missing is a failure, as a missing server is under CI.
  assert.ok(existsSync(join(SOCKET_DIR, `.s.PGSQL.${new URL(DATABASE_URL).port || 5432}`)), `PostgreSQL's socket in ${SOCKET_DIR}`);
  db = await isolatedDatabase();
});
after(async () => {
  await db?.cleanup('review9-dburl-socket-');
  work.remove();
});

let files = 0;
async function verdicts(url: string): Promise<[string, string]> {
  const path = join(work.path, `config-${++files}.yaml`);
  writeFileSync(path, `${AUTH_ONLY_CONFIG}database: {url: '${url}'}\n`);
  const env = { PORTCULLIS_DATA_DIR: mkdtempSync(join(work.path, 'data-')) };
  return [await checkConfigVerdict(path, env, work.path), await startVerdict(path, env, work.path)];
}

test('a user (and password) before an empty host, the socket directory in the query: check-config ok, start opens the store', { skip }, async () => {
  const user = new URL(DATABASE_URL).username || 'postgres';
  const port = new URL(DATABASE_URL).port || '5432';
  const app = uniqueApplicationName('review9_dbsock');
  // The password is unused by the server's local rule; its %-escape is decoded by the driver as written.
  for (const credentials of [user, `${user}:p%40ss`]) {
    const url = `postgres://${credentials}@/${db!.name}?host=${SOCKET_DIR}&port=${port}&application_name=${app}`;
    assert.deepEqual(await verdicts(url), ['ok', 'ok'], credentials);
  }
});

test('the placeholder host admits no other form: a URL the driver cannot parse either is still refused', () => {
  const MIN = 'load_balancing: {upstreams: [{name: a, address: 127.0.0.1, port: 1}]}\n';
  const refused = 'database.url: must be empty (SQLite in the data dir) or a postgres:// or postgresql:// URL';
  // A space in the host the driver would percent-encode and look up ("h h"): refused as before.
  for (const url of ['postgres://u@:5432/db', 'postgres://u:p@h:99999/db', 'postgres://[::1/db', 'mysql://u@/db?host=/s', 'postgres://u:p@h h/db']) {
    assert.equal(configErrorOf(`${MIN}database: {url: '${url}'}\n`), refused, url);
  }
});
