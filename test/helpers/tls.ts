// Throwaway PKI for TLS tests, made with Debian's openssl CLI in a temp dir that cleanup() removes: a CA, and
// certificates for given names (valid, expired, not yet valid, or from another CA). Nothing here is ever checked in.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before } from 'node:test';

/** A certificate and its key, as files. */
export interface IssuedCertificate {
  readonly certFile: string;
  readonly keyFile: string;
  /** The certificate PEM text. */
  readonly cert: Buffer;
  readonly key: Buffer;
}

export interface IssueOptions {
  /** subjectAltName entries, e.g. ['DNS:a.test', 'IP:127.0.0.1']; default: DNS:<cn>. */
  readonly san?: readonly string[];
  /** An already expired certificate (valid in 2020). */
  readonly expired?: boolean;
  /**
   * The validity window, as `openssl ca` takes it (YYYYMMDDHHMMSSZ, UTC): a certificate not valid yet, or one that
   * became valid seconds ago. Overrides `expired`.
   */
  readonly validity?: { readonly notBefore: string; readonly notAfter: string };
  /** File name stem (default: the common name). */
  readonly stem?: string;
  /** The key: ECDSA on P-256 (default), ECDSA on P-384, or RSA 2048. */
  readonly key?: 'ec' | 'ec-p384' | 'rsa';
}

/** `openssl req -newkey` arguments for IssueOptions.key. */
function newKeyArgs(key: IssueOptions['key']): string[] {
  if (key === 'rsa') return ['-newkey', 'rsa:2048'];
  return ['-newkey', 'ec', '-pkeyopt', `ec_paramgen_curve:${key === 'ec-p384' ? 'secp384r1' : 'prime256v1'}`];
}

export interface TestCa {
  readonly dir: string;
  /** The CA certificate (PEM) file, to trust. */
  readonly caFile: string;
  readonly ca: Buffer;
  /** Issues a leaf certificate for `cn`, signed by this CA. */
  issue(cn: string, options?: IssueOptions): IssuedCertificate;
}

function openssl(args: readonly string[], cwd: string): void {
  execFileSync('openssl', args, { cwd, stdio: ['ignore', 'ignore', 'pipe'] });
}

/** A new CA in its own directory (under `parent` when given, so one cleanup removes several CAs). */
export function createTestCa(name = 'Portcullis Test CA', parent?: string): TestCa {
  const dir = mkdtempSync(join(parent ?? tmpdir(), 'portcullis-pki-'));
  openssl(
    [
      'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', 'ca.key', '-out', 'ca.pem',
      '-days', '2', '-subj', `/CN=${name}`, '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign',
    ],
    dir,
  );
  writeFileSync(join(dir, 'index.txt'), '');
  writeFileSync(join(dir, 'serial'), '1000\n');
  // `openssl ca` rather than `x509 -req`: only it can set a validity in the past (the expired certificate).
  writeFileSync(
    join(dir, 'ca.cnf'),
    [
      '[ca]', 'default_ca = test_ca', '[test_ca]', `dir = ${dir}`, 'database = $dir/index.txt', 'new_certs_dir = $dir',
      'serial = $dir/serial', 'default_md = sha256', 'policy = any', 'copy_extensions = copy', 'unique_subject = no',
      '[any]', 'commonName = supplied',
    ].join('\n'),
  );
  const caFile = join(dir, 'ca.pem');
  return {
    dir,
    caFile,
    ca: readFileSync(caFile),
    issue(cn, options = {}) {
      const stem = options.stem ?? cn.replace(/[^a-z0-9.-]/gi, '_');
      const san = (options.san ?? [`DNS:${cn}`]).join(',');
      openssl(
        [
          'req', '-new', ...newKeyArgs(options.key), '-nodes', '-keyout', `${stem}.key`, '-out', `${stem}.csr`,
          '-subj', `/CN=${cn}`, '-addext', `subjectAltName=${san}`, '-addext', 'extendedKeyUsage=serverAuth,clientAuth',
        ],
        dir,
      );
      const validity = options.validity
        ? ['-startdate', options.validity.notBefore, '-enddate', options.validity.notAfter]
        : options.expired
          ? ['-startdate', '20200101000000Z', '-enddate', '20200102000000Z']
          : ['-days', '1'];
      openssl(
        ['ca', '-batch', '-notext', '-config', 'ca.cnf', '-cert', 'ca.pem', '-keyfile', 'ca.key', '-in', `${stem}.csr`, '-out', `${stem}.pem`, ...validity],
        dir,
      );
      const certFile = join(dir, `${stem}.pem`);
      const keyFile = join(dir, `${stem}.key`);
      return { certFile, keyFile, cert: readFileSync(certFile), key: readFileSync(keyFile) };
    },
  };
}

/** `date` as `openssl ca -startdate/-enddate` take it: YYYYMMDDHHMMSSZ, UTC. */
export function opensslTime(date: Date): string {
  return `${date.toISOString().slice(0, 19).replace(/[-:T]/g, '')}Z`;
}

/** A temp dir for several CAs; remove() deletes everything (call it in a finally or after()). */
export function pkiDir(): { readonly path: string; remove(): void } {
  const path = mkdtempSync(join(tmpdir(), 'portcullis-tls-'));
  return { path, remove: () => rmSync(path, { recursive: true, force: true }) };
}

/** What aTestCertificateHooks sets up: a CA, its certificate for a.test, and the gateways a suite starts with it. */
export interface ATestCertificate {
  readonly ca: TestCa;
  readonly certFile: string;
  readonly keyFile: string;
  /** Gateways the suite started with this certificate: the after hook closes them. */
  readonly gateways: Array<{ close(): Promise<void> }>;
}

/**
 * Registers hooks in the calling describe(): before, a throwaway CA (`caName`) and its certificate for a.test and
 * 127.0.0.1; after, every gateway pushed on `gateways` closed and the PKI removed. Fields are set by the before hook.
 */
export function aTestCertificateHooks(caName: string): ATestCertificate {
  const pki = pkiDir();
  const state = { gateways: [] } as unknown as { ca: TestCa; certFile: string; keyFile: string; gateways: Array<{ close(): Promise<void> }> };
  before(() => {
    state.ca = createTestCa(caName, pki.path);
    const cert = state.ca.issue('a.test', { san: ['DNS:a.test', 'IP:127.0.0.1'] });
    state.certFile = cert.certFile;
    state.keyFile = cert.keyFile;
  });
  after(async () => {
    for (const gw of state.gateways) await gw.close();
    pki.remove();
  });
  return state;
}
