// Ports for servers a test starts and stops itself. They are taken outside the kernel's ephemeral range, where
// Linux picks the local port of every outgoing connection (and of bind(0)): a port from that range, released and
// listened on again later (a restarted backend, a Redis killed and started again, a port kept closed on purpose)
// can meanwhile become the local port of a connection, then the restart fails with EADDRINUSE; and a connection to
// a closed port in that range can even be assigned that same port as its own and connect to itself.
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import { createServer } from 'node:net';

/** The kernel's ephemeral range (where `bind(0)` and every outgoing connection take their local port from). */
function ephemeralRange(): [low: number, high: number] {
  try {
    const [low, high] = readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/).map(Number);
    if (Number.isInteger(low) && Number.isInteger(high)) return [low!, high!];
  } catch {
    // not Linux: its usual default
  }
  return [32_768, 60_999];
}

/**
 * The ports we pick from: from 15,000 up to the ephemeral range (and below 30,000, where Kubernetes' NodePorts
 * start: kube-proxy may answer on those even on 127.0.0.1), else above the range. Throws when neither side has
 * room, rather than quietly picking ports that outgoing connections share.
 */
function window(): [from: number, to: number] {
  const [low, high] = ephemeralRange();
  const below: [number, number] = [15_000, Math.min(low, 30_000)];
  if (below[1] - below[0] >= 2_000) return below;
  if (65_535 - high >= 2_000) return [high + 1, 65_536];
  throw new Error(`no room for test ports outside the ephemeral range ${low}-${high} (net.ipv4.ip_local_port_range)`);
}

/** Ports this process has handed out or is probing, never handed out twice (cluster nodes each take two, at once). */
const handedOut = new Set<number>();

/**
 * A TCP port on 127.0.0.1 that nothing listens on, outside the ephemeral range, never handed out twice by this
 * process: for a server started on it later, or as a port where connections are refused.
 */
export async function freePort(): Promise<number> {
  const [from, to] = window();
  for (let attempt = 0; attempt < 200; attempt++) {
    const port = from + Math.floor(Math.random() * (to - from));
    if (handedOut.has(port)) continue;
    // Claimed before the probe: calls running at once never probe, and return, the same port.
    handedOut.add(port);
    const server = createServer();
    const bound = await new Promise<boolean>((resolve) => {
      server.once('error', () => resolve(false));
      server.listen(port, '127.0.0.1', () => resolve(true));
    });
    if (!bound) continue;
    server.close();
    await once(server, 'close');
    return port;
  }
  throw new Error(`no free port in ${from}-${to - 1} after 200 tries`);
}
