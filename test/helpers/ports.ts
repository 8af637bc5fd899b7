// Ports for servers a test starts and stops itself. They are taken below the kernel's ephemeral range, where
// Linux picks the local port of every outgoing connection (and of bind(0)): a port from that range, released and
// listened on again later (a restarted backend, a Redis killed and started again, a port kept closed on purpose)
// can meanwhile become the local port of a connection, then the restart fails with EADDRINUSE; and a connection to
// a closed port in that range can even be assigned that same port as its own and connect to itself.
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import { createServer } from 'node:net';

/**
 * The first port of the kernel's ephemeral range (where `bind(0)` and every outgoing connection take their local
 * port from); 32768 where it cannot be read.
 */
function ephemeralLow(): number {
  try {
    const low = Number(readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/)[0]);
    return Number.isInteger(low) && low > 20_000 ? low : 32_768;
  } catch {
    return 32_768;
  }
}

/** Ports this process has handed out, never handed out twice (cluster nodes each take two, at once). */
const handedOut = new Set<number>();

/**
 * A TCP port on 127.0.0.1 that nothing listens on, below the ephemeral range, never handed out twice by this
 * process: for a server started on it later, or as a port where connections are refused.
 */
export async function freePort(): Promise<number> {
  const high = ephemeralLow();
  const low = 15_000;
  for (let attempt = 0; attempt < 200; attempt++) {
    const port = low + Math.floor(Math.random() * (high - low));
    if (handedOut.has(port)) continue;
    const server = createServer();
    const bound = await new Promise<boolean>((resolve) => {
      server.once('error', () => resolve(false));
      server.listen(port, '127.0.0.1', () => resolve(true));
    });
    if (!bound) continue;
    server.close();
    await once(server, 'close');
    handedOut.add(port);
    return port;
  }
  throw new Error('no free port below the ephemeral range after 200 tries');
}
