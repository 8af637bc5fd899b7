// Starts a server listening and resolves once it accepts connections (rejects on EADDRINUSE and the like).
import type { Server } from 'node:net';

/** Used for the proxy and the admin listener alike. */
export function listen(server: Server, port: number, host: string): Promise<void> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
}
