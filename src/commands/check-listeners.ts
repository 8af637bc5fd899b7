// `check-config`: the listen addresses, asked of the kernel as start-up will ask it. A host that is not an address of
// this machine (192.0.2.1, an IPv6 address not configured) passed check-config, and start stopped with EADDRNOTAVAIL.
//
// Each literal address is bound on port 0 (a free port the kernel picks) and closed at once. Not the configured port:
// the gateway being checked is usually running and holds it, and whether a port is free is a question of the moment,
// not of the files. Not os.networkInterfaces() either: whether an address can be bound is the kernel's answer, which
// that list does not give in full (the whole of 127.0.0.0/8, `ip route add local` ranges, net.ipv*.ip_nonlocal_bind
// for a floating address a standby holds, a link-local IPv6 address without its %interface, IPv4-mapped IPv6). A name
// is left to start-up: it is looked up then, and may resolve otherwise where check-config runs; '' is every interface.
import { createServer, isIP } from 'node:net';
import type { Config } from '../config/schema.js';
import { ADMIN_LISTEN_KEYS, ListenAddressError, listenFailure, PROXY_LISTEN_KEYS, type ListenKeys } from '../listen.js';

/** Throws start-up's ListenAddressError for a listen host this machine cannot listen on. */
export async function checkListenAddresses(config: Config): Promise<void> {
  // The redirect listener binds server.listen_host too: one probe answers for both.
  await probe(config.server.listen_host, config.server.listen_port, PROXY_LISTEN_KEYS);
  if (config.admin.enabled) await probe(config.admin.listen_host, config.admin.listen_port, ADMIN_LISTEN_KEYS);
}

async function probe(host: string, port: number, keys: ListenKeys): Promise<void> {
  if (isIP(host) === 0) return;
  const server = createServer();
  try {
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen({ port: 0, host, exclusive: true }, () => resolve());
    });
  } catch (err) {
    // Worded as start-up words it, with the configured port. Anything else (no free port left, say) is no verdict on
    // the config: left to start-up.
    const failure = listenFailure(err, host, port, keys);
    if (failure instanceof ListenAddressError) throw failure;
  } finally {
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }
}
