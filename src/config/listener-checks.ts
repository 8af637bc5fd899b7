// The config's listeners (the proxy port, its http_redirect port, the admin port) on one port: check-config said
// "config ok" and start failed with a bare EADDRINUSE once the first of them was bound. Refused here instead, with the
// keys, by check-config, start and reload alike (a reload cannot change a listener, so it only ever repeats start's).
import { isIP } from 'node:net';
import type { Config } from './schema.js';

interface Listener {
  readonly key: string;
  readonly host: string;
  readonly port: number;
}

/** An address that binds every interface of its family (and, for `::`, of IPv4 as well). */
function isUnspecified(host: string): boolean {
  return host === '' || host === '0.0.0.0' || host === '::' || host === '[::]';
}

/**
 * Whether two listen hosts could be the same socket address: the same text, either the unspecified address, or
 * either one a name (`localhost` resolves to a loopback address, which another listener may have named as a literal).
 */
function mayOverlap(a: string, b: string): boolean {
  if (a === b || isUnspecified(a) || isUnspecified(b)) return true;
  return isIP(a) === 0 || isIP(b) === 0;
}

/** "key: the same port as other…" for the first two listeners that cannot both bind, or undefined. */
export function listenerProblem(config: Config): string | undefined {
  const listeners: Listener[] = [{ key: 'server.listen_port', host: config.server.listen_host, port: config.server.listen_port }];
  const redirect = config.server.http_redirect.listen_port;
  if (redirect !== undefined) listeners.push({ key: 'server.http_redirect.listen_port', host: config.server.listen_host, port: redirect });
  if (config.admin.enabled) listeners.push({ key: 'admin.listen_port', host: config.admin.listen_host, port: config.admin.listen_port });
  for (let i = 1; i < listeners.length; i++) {
    const later = listeners[i]!;
    if (later.port === 0) continue; // a free port of its own
    for (const earlier of listeners.slice(0, i)) {
      if (earlier.port !== later.port || !mayOverlap(earlier.host, later.host)) continue;
      return `${later.key}: the same port as ${earlier.key}, on addresses that overlap (both listeners cannot bind it)`;
    }
  }
  return undefined;
}
