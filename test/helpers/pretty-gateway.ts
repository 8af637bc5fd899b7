// A spawned gateway logging in `logging.format: pretty` with its stdout a pipe the test reads (or stops reading):
// the set-up the review9-output-pretty-* files share.
import { spawn, type ChildProcessByStdio } from 'node:child_process';
import { rmSync } from 'node:fs';
import type { Readable } from 'node:stream';
import { childExit } from './child-exit.js';
import { tempDataDir, upstreams, writeConfig } from './gateway.js';
import { getStatus } from './http.js';
import { freePort } from './ports.js';
import { waitFor } from './wait.js';

const ROOT = new URL('../../', import.meta.url).pathname;

export interface PrettyGateway {
  readonly child: ChildProcessByStdio<null, Readable, Readable>;
  readonly exited: ReturnType<typeof childExit>;
  readonly port: number;
  /** The admin port, when started with `admin: true`. */
  readonly adminPort: number | undefined;
  /** What the gateway wrote on stderr so far. */
  stderr(): string;
  /** SIGKILL if still running, then its data dir removed. */
  stop(): Promise<void>;
}

/**
 * Starts `bin/portcullis.js start` in front of `backendPort` with pretty logs, hands every stdout chunk to `onStdout`
 * from the first one (a listener attached later would leave the start-up lines in the pipe), and resolves once
 * `/health` answers 200. Without `admin`, the admin listener stays on its default settings.
 */
export async function startPrettyGateway(backendPort: number, options: { admin?: boolean; onStdout: (chunk: Buffer) => void }): Promise<PrettyGateway> {
  const port = await freePort();
  const adminPort = options.admin === true ? await freePort() : undefined;
  const config = writeConfig({
    server: { listen_port: port },
    ...(adminPort === undefined ? {} : { admin: { listen_port: adminPort } }),
    load_balancing: { upstreams: upstreams([backendPort]) },
    logging: { format: 'pretty' },
  });
  const dataDir = tempDataDir();
  const child = spawn(process.execPath, [`${ROOT}bin/portcullis.js`, 'start', '--config', config], {
    cwd: ROOT,
    env: { ...process.env, PORTCULLIS_DATA_DIR: dataDir },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const exited = childExit(child);
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  child.stdout.on('data', options.onStdout);
  const stop = async (): Promise<void> => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    await exited;
    rmSync(dataDir, { recursive: true, force: true });
  };
  try {
    await waitFor(async () => (await getStatus(port, '/health')) === 200, 'the gateway to listen', 15_000, 50);
  } catch (err) {
    await stop();
    throw err;
  }
  return { child, exited, port, adminPort, stderr: () => stderr, stop };
}
