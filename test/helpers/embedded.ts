// A gateway embedded through the package's public entry (src/index.ts startGateway) with no logger of the caller's:
// it builds its own from `logging`, as an application embedding it does.
import { rmSync } from 'node:fs';
import { startGateway, type EmbeddedGateway } from '../../src/index.js';
import { tempDataDir, upstreams } from './gateway.js';

export interface EmbeddedAccessLogGateway {
  readonly gateway: EmbeddedGateway;
  readonly port: number;
  /** The gateway's close() (which writes out the buffered lines), then its data directory removed. */
  close(): Promise<void>;
}

/**
 * Starts one in front of the backend on `backendPort` (health checks off), at level warn, JSON lines, the access log
 * to `accessLogFile`, on a free port, in a fresh data directory.
 */
export async function startEmbeddedWithAccessLog(backendPort: number, accessLogFile: string): Promise<EmbeddedAccessLogGateway> {
  const dataDir = tempDataDir();
  let gateway: EmbeddedGateway;
  try {
    gateway = await startGateway(
      {
        server: { listen_host: '127.0.0.1', listen_port: 0 },
        admin: { enabled: false },
        load_balancing: { upstreams: upstreams([backendPort]) as never, health_check: { enabled: false } },
        logging: { level: 'warn', format: 'json', access_log_file: accessLogFile },
      },
      { dataDir },
    );
  } catch (err) {
    rmSync(dataDir, { recursive: true, force: true });
    throw err;
  }
  return {
    gateway,
    port: Number(new URL(gateway.url).port),
    async close() {
      await gateway.close();
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}
