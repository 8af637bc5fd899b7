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

/**
 * What a listen host occupies of a port: per family, every address of it ('*') or one address in one canonical
 * spelling; undefined for a name (it resolves at start-up, to an address another listener may have named). node's
 * listen() on '' or '::' takes IPv4's port too (a dual-stack socket); an IPv4-mapped IPv6 address is its IPv4 one.
 */
function occupied(host: string): { readonly v4?: string; readonly v6?: string } | undefined {
  if (host === '' || host === '::' || host === '[::]') return { v4: '*', v6: '*' };
  if (host === '0.0.0.0') return { v4: '*' };
  const family = isIP(host);
  if (family === 4) return { v4: host };
  if (family !== 6) return undefined;
  const canonical = canonicalIpv6(host);
  const mapped = /^::ffff:([0-9a-f]{1,4}):([0-9a-f]{1,4})$/.exec(canonical);
  if (mapped !== null) {
    const [high, low] = [Number.parseInt(mapped[1]!, 16), Number.parseInt(mapped[2]!, 16)];
    const v4 = [high >> 8, high & 255, low >> 8, low & 255].join('.');
    return { v4: v4 === '0.0.0.0' ? '*' : v4 };
  }
  return canonical === '::' ? { v4: '*', v6: '*' } : { v6: canonical };
}

/** RFC 5952's spelling of an IPv6 address (0:0:0:0:0:0:0:1 is ::1), as the URL parser writes it; a zone id kept as written. */
function canonicalIpv6(host: string): string {
  const zone = host.indexOf('%');
  if (zone !== -1) return host.toLowerCase();
  return new URL(`http://[${host}]/`).hostname.slice(1, -1);
}

/**
 * Whether two listen hosts could be the same socket address: one family in common, on every address of it or on the
 * same one (127.0.0.1 and ::ffff:127.0.0.1, ::1 and 0:0:0:0:0:0:0:1 are one address: check-config said ok, start
 * failed with EADDRINUSE; 0.0.0.0 and ::1 are not, and were refused), or either one a name.
 */
function mayOverlap(a: string, b: string): boolean {
  if (a === b) return true;
  const [x, y] = [occupied(a), occupied(b)];
  if (x === undefined || y === undefined) return true;
  const same = (p: string | undefined, q: string | undefined): boolean => p !== undefined && q !== undefined && (p === '*' || q === '*' || p === q);
  return same(x.v4, y.v4) || same(x.v6, y.v6);
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
