// The files `database.url` names (sslrootcert, sslcert, sslkey), read and judged before the PostgreSQL driver reads
// them. The driver reads them with a blocking readFileSync when its pool makes a client: a missing file stopped start
// with a bare ENOENT, a FIFO held it for ever, and a certificate expired, not a certificate, or not matching its key
// failed every connection, while check-config, which never opened them, said ok. Judged here as the upstream TLS
// files are (proxy/upstream-tls.ts): regular files of at most 1 MiB, PEM that parses, a key that matches its
// certificate, a client certificate valid now. Paths are relative to the working directory, as the driver reads them.
import { createPrivateKey, X509Certificate, type KeyObject } from 'node:crypto';
import { ConfigError } from './config-error.js';
import { parsePostgresUrl } from './postgres-url.js';
import { readRegularFile, UnreadableFile } from './regular-file.js';
import { validityProblem } from '../tls/certificate.js';
import { nodeTls } from '../node-builtins.js';

const MAX_PEM_BYTES = 1024 * 1024;
const PEM_CERTIFICATE = /-----BEGIN CERTIFICATE-----[\s\S]*?-----END CERTIFICATE-----/g;

function refused(parameter: string, file: string, why: string): ConfigError {
  return new ConfigError(`database.url: ${parameter} ${file} ${why}`);
}

function read(parameter: string, file: string): Buffer {
  try {
    return readRegularFile(file, MAX_PEM_BYTES, 'larger than 1 MiB');
  } catch (err) {
    throw refused(parameter, file, `cannot be read (${err instanceof UnreadableFile ? err.why : 'unreadable'})`);
  }
}

/**
 * Throws the ConfigError for a file `url` names that the driver would fail on; does nothing for a URL that names
 * none. Called by check-config and wherever the store is opened (start, migrate, the identity commands).
 */
export function checkPostgresUrlFiles(url: string): void {
  const params = parsePostgresUrl(url)?.params;
  if (params === undefined) return; // the schema refuses it
  // With sslmode=disable the driver still reads every file it names (a missing one still stops it), and uses none:
  // then they must be readable, and what they hold is not judged.
  const used = params.get('sslmode') !== 'disable';
  const rootFile = params.get('sslrootcert') ?? '';
  if (rootFile !== '') {
    const text = read('sslrootcert', rootFile);
    const blocks = used ? text.toString('latin1').match(PEM_CERTIFICATE) : [];
    if (blocks === null) throw refused('sslrootcert', rootFile, 'holds no PEM certificate');
    for (const block of blocks) {
      try {
        new X509Certificate(block);
      } catch {
        throw refused('sslrootcert', rootFile, 'holds a PEM certificate that does not parse');
      }
    }
  }
  const certFile = params.get('sslcert') ?? '';
  const keyFile = params.get('sslkey') ?? '';
  // The schema has both or neither.
  if (certFile === '' || keyFile === '') return;
  const cert = read('sslcert', certFile);
  const key = read('sslkey', keyFile);
  if (!used) return;
  let x509: X509Certificate;
  try {
    x509 = new X509Certificate(cert);
  } catch {
    throw refused('sslcert', certFile, 'is not a PEM certificate');
  }
  let privateKey: KeyObject;
  try {
    privateKey = createPrivateKey(key);
  } catch {
    throw refused('sslkey', keyFile, 'is not a PEM private key (or it is encrypted)');
  }
  if (!x509.checkPrivateKey(privateKey)) throw refused('sslkey', keyFile, `does not match the certificate in ${certFile}`);
  // The rule of every certificate the gateway presents (tls/certificate.ts): a server that checks client
  // certificates refuses one expired or not yet valid in every handshake.
  const invalid = validityProblem(x509);
  if (invalid !== undefined) throw refused('sslcert', certFile, invalid);
  // What OpenSSL takes (a key under its security level is refused in every connection's context).
  try {
    nodeTls().createSecureContext({ cert, key });
  } catch (err) {
    throw refused('sslcert', certFile, `cannot be used (${(err as { code?: string }).code ?? 'invalid'})`);
  }
}
