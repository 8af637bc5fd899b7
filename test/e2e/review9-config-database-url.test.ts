// database.url's parameters as the PostgreSQL driver reads them. check-config took any URL the WHATWG parser takes,
// and start then failed or connected otherwise than written: `sslmode=bogus` (any mode the driver does not know
// means a verified TLS connection: against this server, which has no TLS, "user store unavailable"),
// `ssl=false` (TLS on: any value but 0), an unknown `sslnegotiation` or a query `port=abc` (thrown at start), a
// database name ending in a lone `%` (URIError), and the files the URL names (sslrootcert, sslcert, sslkey), which
// the driver reads with a blocking readFileSync when it connects: missing (a bare ENOENT), a FIFO (start held for
// ever), a client certificate expired. Now check-config and start give the same one line naming database.url.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseConfigText } from '../../src/config/load.js';
import { AUTH_ONLY_CONFIG, checkConfigVerdict, configErrorOf, startVerdict } from '../helpers/config-error.js';
import { isolatedDatabase, taggedUrl, uniqueApplicationName, type IsolatedDatabase } from '../helpers/postgres-db.js';
import { requirePostgres } from '../helpers/services.js';
import { createTestCa, pkiDir } from '../helpers/tls.js';

const skip = await requirePostgres();
const pki = pkiDir();
const ca = createTestCa('Review9 database CA', pki.path);
const expired = ca.issue('portcullis', { stem: 'expired', expired: true });
const fifo = join(pki.path, 'ca.fifo');
execFileSync('mkfifo', [fifo]);
let db: IsolatedDatabase | undefined;
let base = '';
before(async () => {
  if (skip) return;
  db = await isolatedDatabase();
  base = taggedUrl(db.name, uniqueApplicationName('review9_dburl'));
});
after(async () => {
  await db?.cleanup('review9-dburl-');
  pki.remove();
});

/** The isolated database's URL with `extra` parameters added. */
const withParams = (extra: string): string => `${base}&${extra}`;

let files = 0;
function configFile(url: string): string {
  const path = join(pki.path, `config-${++files}.yaml`);
  writeFileSync(path, `${AUTH_ONLY_CONFIG}database: {url: '${url}'}\n`);
  return path;
}

async function verdicts(url: string): Promise<[string, string]> {
  const path = configFile(url);
  const env = { PORTCULLIS_DATA_DIR: mkdtempSync(join(pki.path, 'data-')) };
  return [await checkConfigVerdict(path, env, pki.path), await startVerdict(path, env, pki.path)];
}

test('parameters the driver reads otherwise, or throws on: refused by the config reader every command shares', () => {
  const url = 'postgres://postgres@127.0.0.1:5432/db';
  const MIN = 'load_balancing: {upstreams: [{name: a, address: 127.0.0.1, port: 1}]}\n';
  const cases: Array<[string, string]> = [
    [`${url}?uselibpqcompat=true&sslmode=allow`, 'sslmode is not one the PostgreSQL driver knows with uselibpqcompat=true: it would require a verified TLS connection (write disable, prefer, require, verify-ca, verify-full)'],
    [`${url}?uselibpqcompat=true&sslmode=no-verify`, 'sslmode is not one the PostgreSQL driver knows with uselibpqcompat=true: it would require a verified TLS connection (write disable, prefer, require, verify-ca, verify-full)'],
    [`${url}?uselibpqcompat=true&sslmode=verify-ca`, 'sslmode "verify-ca" with uselibpqcompat=true needs sslrootcert (the CA the server\'s certificate is checked against)'],
    [`${url}?ssl=off`, 'ssl other than true, 1, 0 or no-verify turns TLS on in the PostgreSQL driver (ssl=false too: write ssl=0 or sslmode=disable for none)'],
    [`${url}?sslnegotiation=tls`, 'sslnegotiation must be postgres or direct'],
    [`${url}?sslnegotiation=direct&sslmode=disable`, 'sslnegotiation "direct" needs TLS, which sslmode=disable (or ssl=0) turns off'],
    [`${url}?port=abc`, 'port is not a port number (1-65535)'],
    ['postgres://postgres@127.0.0.1:0/db', 'port is not a port number (1-65535)'],
    [`${url}?sslcert=/x/client.pem`, 'sslcert and sslkey must be set together (the client certificate and its key)'],
    [`${url}%`, 'has a malformed percent-escape in its user, password, host or database name (write a literal % as %25)'],
    // An unescaped # in a password: the driver read "t" as the host and sent "S3cr" to it (review15).
    ['postgres://postgres:S3cr@t#pw@127.0.0.1:5432/x', 'has a "#", which ends a URL: a # (or @, /, ?) in the user or password must be percent-escaped (# as %23, @ as %40)'],
    [`${url}#fragment`, 'has a "#", which ends a URL: a # (or @, /, ?) in the user or password must be percent-escaped (# as %23, @ as %40)'],
  ];
  for (const [value, reason] of cases) {
    assert.equal(configErrorOf(`${MIN}database: {url: '${value}'}\n`), `database.url: ${reason}`, value);
  }
  // What the driver reads as written is taken.
  // sslmode=allow and prefer are both read as verify-full by the driver (not libpq's cleartext first): taken alike.
  assert.doesNotThrow(() => parseConfigText(`${MIN}database: {url: 'postgres://postgres:S3cr%40t%23pw@127.0.0.1:5432/x'}\n`, {}), 'escaped # and @');
  for (const query of ['sslmode=allow', 'sslmode=prefer', 'sslmode=disable', 'sslmode=verify-full', 'ssl=0', 'ssl=true', 'ssl=no-verify', 'sslmode=disable&ssl=false', 'port=5433', 'sslnegotiation=postgres']) {
    assert.doesNotThrow(() => parseConfigText(`${MIN}database: {url: '${url}?${query}'}\n`, {}), query);
  }
});

test('an unknown sslmode, ssl=false, and certificate files that cannot be used: one line from check-config and start', { skip }, async () => {
  const refused: Array<[string, string]> = [
    [withParams('sslmode=bogus'), 'sslmode is not one the PostgreSQL driver knows: it would require a verified TLS connection (write disable, prefer, require, verify-ca, verify-full, no-verify)'],
    [withParams('ssl=false'), 'ssl other than true, 1, 0 or no-verify turns TLS on in the PostgreSQL driver (ssl=false too: write ssl=0 or sslmode=disable for none)'],
    [withParams(`sslmode=verify-full&sslrootcert=${join(pki.path, 'missing.pem')}`), `sslrootcert ${join(pki.path, 'missing.pem')} cannot be read (ENOENT)`],
    [withParams(`sslmode=verify-full&sslrootcert=${fifo}`), `sslrootcert ${fifo} cannot be read (not a regular file)`],
    [
      withParams(`sslmode=verify-full&sslrootcert=${ca.caFile}&sslcert=${expired.certFile}&sslkey=${expired.keyFile}`),
      `sslcert ${expired.certFile} expired on 2020-01-02T00:00:00.000Z`,
    ],
  ];
  for (const [url, reason] of refused) {
    const [checked, started] = await verdicts(url);
    assert.equal(checked, `portcullis: config error: database.url: ${reason}`, `check-config, ${url}`);
    assert.equal(started, `portcullis: config error: database.url: ${reason}`, `start, ${url}`);
  }
  // A readable CA named with sslmode=disable is read and unused by the driver: ok to both, and the store opens.
  assert.deepEqual(await verdicts(withParams(`sslmode=disable&sslrootcert=${ca.caFile}`)), ['ok', 'ok']);
});
