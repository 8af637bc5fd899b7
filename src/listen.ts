// Starts a server listening and resolves once it accepts connections; a listen that fails is one line naming the
// config key (ListenAddressError, ListenPortError), never node's bare "listen EADDRNOTAVAIL: address not available".
import { isIP, type Server } from 'node:net';
import { ConfigError } from './config/config-error.js';

/** The config keys a listener's host and port come from, for its errors. */
export interface ListenKeys {
  readonly host: string;
  readonly port: string;
}

export const PROXY_LISTEN_KEYS: ListenKeys = { host: 'server.listen_host', port: 'server.listen_port' };
/** The redirect listener binds server.listen_host too. */
export const REDIRECT_LISTEN_KEYS: ListenKeys = { host: 'server.listen_host', port: 'server.http_redirect.listen_port' };
export const ADMIN_LISTEN_KEYS: ListenKeys = { host: 'admin.listen_host', port: 'admin.listen_port' };

/**
 * Codes that say the host cannot be listened on here whatever the port and whenever the gateway starts: the config
 * names an address this machine does not have (EADDRNOTAVAIL: 192.0.2.1, an IPv6 address not configured), one it
 * cannot take as written (EINVAL: a link-local IPv6 address without its %interface), a family it lacks, a name that
 * does not exist. A config error, which check-config gives too (commands/check-listeners.ts).
 */
const ADDRESS_CODES: Readonly<Record<string, string>> = {
  EADDRNOTAVAIL: 'no interface of this host has that address',
  EINVAL: 'this host cannot listen on that address as written',
  EAFNOSUPPORT: 'this host does not support that address family',
  ENOTFOUND: 'the name does not resolve',
};

/** Codes about the port, which may be otherwise at another time (another process holds it, privileges). */
const PORT_CODES: Readonly<Record<string, string>> = {
  EADDRINUSE: 'another process listens there',
  EACCES: 'permission denied',
};

/**
 * The config names a host this machine cannot listen on: a config error from start and check-config alike. `code` is
 * node's (EADDRNOTAVAIL and the like), kept for embedders that read it.
 */
export class ListenAddressError extends ConfigError {
  constructor(
    message: string,
    readonly code: string,
  ) {
    super(message);
    this.name = 'ListenAddressError';
  }
}

/**
 * The port cannot be taken now (in use, a privileged port) or the name could not be looked up now: one line naming the
 * key, not a config error (the same files may start later). `code` is node's.
 */
export class ListenPortError extends Error {
  constructor(
    message: string,
    readonly code: string,
  ) {
    super(message);
    this.name = 'ListenPortError';
  }
}

/** `host:port` as a person writes it: IPv6 in brackets, every interface as "port N". */
function shownAddress(host: string, port: number): string {
  if (host === '') return `port ${port}`;
  return isIP(host) === 6 ? `[${host}]:${port}` : `${host}:${port}`;
}

/** Whether `err` is node's failure to listen (the bind, or the name's lookup before it), not another start-up error. */
export function isListenFailure(err: unknown): boolean {
  const { code, syscall } = (err ?? {}) as NodeJS.ErrnoException;
  return typeof code === 'string' && (syscall === 'listen' || syscall === 'bind' || syscall === 'getaddrinfo');
}

/** The error `listen(port, host)` failing with `err` is reported as: one line naming the key, without node's text. */
export function listenFailure(err: unknown, host: string, port: number, keys: ListenKeys): Error {
  const code = (err as NodeJS.ErrnoException | null)?.code;
  if (typeof code !== 'string' || !isListenFailure(err)) return err instanceof Error ? err : new Error(String(err));
  const at = shownAddress(host, port);
  const address = ADDRESS_CODES[code];
  if (address !== undefined) return new ListenAddressError(`${keys.host}: cannot listen on ${at} (${code}: ${address})`, code);
  const portReason = PORT_CODES[code];
  if (portReason !== undefined) {
    const privileged = code === 'EACCES' && port > 0 && port < 1024 ? ', a port below 1024 needs CAP_NET_BIND_SERVICE' : '';
    return new ListenPortError(`${keys.port}: cannot listen on ${at} (${code}: ${portReason}${privileged})`, code);
  }
  // A lookup that failed for now (EAI_AGAIN) or anything else: the host's key, the code alone.
  return new ListenPortError(`${keys.host}: cannot listen on ${at} (${code})`, code);
}

/**
 * Used for the proxy, redirect and admin listeners; `keys` name the settings in its error (the admin listener's is
 * named where the admin server is started, server.ts).
 */
export function listen(server: Server, port: number, host: string, keys?: ListenKeys): Promise<void> {
  return new Promise((resolve, reject) => {
    const onError = (err: unknown): void => reject(keys === undefined ? err : listenFailure(err, host, port, keys));
    server.once('error', onError);
    server.listen(port, host, () => {
      server.off('error', onError);
      resolve();
    });
  });
}
