// Test servers closed at the end of a file: their open connections (keep-alive, held requests) cut first, or close()
// would wait for them.
import type { Server } from 'node:http';

/** Closes every server of `servers`, cutting their connections first. */
export async function closeServers(servers: Iterable<Server>): Promise<void> {
  for (const server of servers) {
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }
}
