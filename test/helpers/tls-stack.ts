// A test file's TLS stack of spawned processes: a throwaway CA and its a.test certificate, backends and
// `portcullis start` processes, all stopped (last started first) and the PKI removed after the file's tests.
import { after } from 'node:test';
import { startBackend, type TestBackend } from './backends.js';
import { spawnGateway, type ConfigInput, type GatewayProcess } from './gateway.js';
import { createTestCa, pkiDir, type IssuedCertificate, type TestCa } from './tls.js';

export interface TlsStack {
  readonly ca: TestCa;
  /** For a.test and 127.0.0.1. */
  readonly cert: IssuedCertificate;
  /** The PKI's temp dir, also a place for the file's other temp files (removed with it). */
  readonly dir: string;
  /** Run after the file's tests, last pushed first, before the PKI goes. */
  readonly cleanups: Array<() => Promise<void>>;
  /** An 'api' backend, stopped after the file. */
  backend(): Promise<TestBackend>;
  /** A spawned gateway, stopped after the file. */
  gateway(input: ConfigInput): Promise<GatewayProcess>;
}

/** Call at a test file's top level: the CA is made at once, the after hook registered. */
export function tlsStackHooks(caName: string): TlsStack {
  const pki = pkiDir();
  const ca = createTestCa(caName, pki.path);
  const cleanups: Array<() => Promise<void>> = [];
  after(async () => {
    for (const cleanup of cleanups.reverse()) await cleanup();
    pki.remove();
  });
  return {
    ca,
    cert: ca.issue('a.test', { san: ['DNS:a.test', 'IP:127.0.0.1'] }),
    dir: pki.path,
    cleanups,
    async backend() {
      const b = await startBackend('api');
      cleanups.push(() => b.stop());
      return b;
    },
    async gateway(input) {
      const gw = await spawnGateway(input);
      cleanups.push(() => gw.cleanup());
      return gw;
    },
  };
}
