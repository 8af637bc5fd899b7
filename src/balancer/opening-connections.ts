// The connections an upstream pool is still opening, so that destroying the pool ends them too. undici's destroy()
// fails the pool's requests and closes its connections, but a connect in progress is left to finish or time out
// (upstream_connect; with it off, the kernel's SYN retries, about two minutes): an upstream that never answered its
// SYN kept the stopped gateway's process alive until then, and its sockets open.
import type { Socket } from 'node:net';
import type { Pool as UndiciPool } from 'undici';
import { Pool } from './undici.js';
import { poolConnector } from '../proxy/upstream-tls.js';

const openingOf = new WeakMap<object, Set<Socket>>();

/** A Pool whose connector keeps each socket it opens until that socket has connected or failed. */
export function poolTrackingConnects(origin: string, options: UndiciPool.Options): UndiciPool {
  const opening = new Set<Socket>();
  const connector = poolConnector(options);
  const pool = new Pool(origin, {
    ...options,
    connect: (connectOptions, callback) => {
      let socket: Socket | undefined;
      let settled = false;
      // undici's connector returns the socket it opens (core/connect.js), though its type says void.
      socket = (connector as (...args: Parameters<typeof connector>) => unknown)(connectOptions, (...args) => {
        settled = true;
        if (socket !== undefined) opening.delete(socket);
        callback(...args);
      }) as Socket | undefined;
      if (!settled && socket !== undefined && typeof socket.destroy === 'function') {
        const opened = socket;
        opening.add(opened);
        opened.once('close', () => opening.delete(opened));
      }
    },
  });
  openingOf.set(pool, opening);
  return pool;
}

/** Destroys the connections `pool` is still opening (before its own destroy()). */
export function endOpeningConnections(pool: object): void {
  const opening = openingOf.get(pool);
  if (opening === undefined) return;
  for (const socket of opening) socket.destroy();
  opening.clear();
}
