// A spawned gateway with a low RLIMIT_NOFILE (util-linux prlimit wrapping `portcullis start`), and a flood of idle
// client connections that fills its descriptor table, for tests of what the gateway does once accept(), connect()
// and open() meet EMFILE.
import { readdirSync } from 'node:fs';
import net from 'node:net';
import { join } from 'node:path';
import { FAST_ARGON2, TEST_SECRET } from './auth-gateway.js';
import { startBackend } from './backends.js';
import { startProcess, upstreams, writeConfig, type ConfigInput, type GatewayProcess, type ProcessOptions } from './gateway.js';
import { waitFor } from './wait.js';

const ROOT = new URL('../../', import.meta.url).pathname;

/**
 * The settings a flood test's config starts with: no admin port, and header and idle timeouts long enough that the
 * flood's idle connections and a client connected before it stay open for the whole test.
 */
export const FLOOD_SETTINGS = { admin: { enabled: false }, server: { timeouts: { header: '60s', idle: '60s' } } } as const;

/** Starts `portcullis start` with its soft and hard descriptor limits at `nofile`. */
export function spawnLimitedGateway(input: ConfigInput, nofile: number, options: ProcessOptions = {}): Promise<GatewayProcess> {
  const configFile = writeConfig(input);
  const args = [`--nofile=${nofile}:${nofile}`, process.execPath, join(ROOT, 'bin/portcullis.js'), 'start', '--config', configFile];
  return startProcess('prlimit', args, configFile, options);
}

/**
 * An echo backend and, in front of it under `nofile`, a gateway (FLOOD_SETTINGS) with auth on: fast hashing, no auth
 * rate limit; `store` adds the store's keys (database:). Both are stopped by `cleanups` (the test's, run in `after`).
 */
export async function spawnLimitedAuthGateway(nofile: number, cleanups: Array<() => Promise<void> | void>, store: ConfigInput = {}): Promise<GatewayProcess> {
  const b = await startBackend('echo');
  cleanups.push(() => b.stop());
  const gw = await spawnLimitedGateway(
    {
      ...FLOOD_SETTINGS,
      load_balancing: { upstreams: upstreams([b.port]) },
      jwt: { secret: TEST_SECRET },
      ...store,
      middleware: { auth: { enabled: true, argon2: FAST_ARGON2 }, rate_limit: { auth: { enabled: false } } },
    },
    nofile,
  );
  cleanups.push(() => gw.cleanup());
  return gw;
}

/** How many descriptors process `pid` holds open now. */
export function openDescriptors(pid: number): number {
  return readdirSync(`/proc/${pid}/fd`).length;
}

export interface Flood {
  /** Connections the flood opened that the gateway has not closed. */
  readonly sockets: Set<net.Socket>;
  /** Closes every connection of the flood. */
  release(): void;
}

/**
 * Opens idle connections to `port` until process `pid` holds `nofile` descriptors (every further accept() fails
 * with EMFILE), and `extra` more beyond that, which the gateway can no longer take.
 */
export async function fillDescriptors(port: number, pid: number, nofile: number, extra = 50): Promise<Flood> {
  const sockets = new Set<net.Socket>();
  const open = (): void => {
    const socket = net.connect(port, '127.0.0.1');
    socket.on('error', () => undefined); // a connection the gateway could not keep is reset or closed
    socket.on('close', () => sockets.delete(socket));
    sockets.add(socket);
  };
  for (let i = 0; i < nofile; i++) open();
  await waitFor(() => openDescriptors(pid) >= nofile, 'the gateway holding every descriptor it may have', 10_000);
  for (let i = 0; i < extra; i++) open();
  return {
    sockets,
    release() {
      for (const socket of sockets) socket.destroy();
    },
  };
}

/** Sends one request on `socket` (already connected) and reads its whole answer (the gateway closes or it ends). */
export function requestOn(socket: net.Socket, path: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    let text = '';
    const done = (): void => {
      const match = /^HTTP\/1\.1 (\d{3})/.exec(text);
      const end = text.indexOf('\r\n\r\n');
      if (match === null || end < 0) return;
      const head = text.slice(0, end);
      const rest = text.slice(end + 4);
      const length = /content-length: (\d+)/i.exec(head);
      let body: string;
      if (length !== null) {
        if (rest.length < Number(length[1])) return;
        body = rest.slice(0, Number(length[1]));
      } else {
        if (!rest.endsWith('0\r\n\r\n')) return; // chunked: whole once its last chunk is in
        body = '';
        for (let at = 0; ; ) {
          const eol = rest.indexOf('\r\n', at);
          const size = parseInt(rest.slice(at, eol), 16);
          if (size === 0) break;
          body += rest.slice(eol + 2, eol + 2 + size);
          at = eol + 2 + size + 2;
        }
      }
      socket.off('data', onData);
      resolve({ status: Number(match[1]), body });
    };
    const onData = (chunk: Buffer): void => {
      text += chunk.toString('latin1');
      done();
    };
    socket.on('data', onData);
    socket.once('error', reject);
    socket.write(`GET ${path} HTTP/1.1\r\nHost: gateway.test\r\n\r\n`);
  });
}

/**
 * A client connection to `port`, connected before a flood takes the descriptors (it already has its own), destroyed
 * by `cleanups` (the test's, run in its `after`).
 */
export async function connectedSocket(port: number, cleanups: Array<() => Promise<void> | void>): Promise<net.Socket> {
  const socket = net.connect(port, '127.0.0.1');
  await new Promise((resolve) => socket.once('connect', resolve));
  cleanups.push(() => {
    socket.destroy();
  });
  return socket;
}

/** Sends one POST with a JSON body on `socket` and reads the answer's status, Retry-After and body (Content-Length). */
export function postOn(socket: net.Socket, path: string, json: unknown): Promise<{ status: number; retryAfter?: string; body: string }> {
  const body = JSON.stringify(json);
  return new Promise((resolve, reject) => {
    let text = '';
    const onData = (chunk: Buffer): void => {
      text += chunk.toString('utf8');
      const end = text.indexOf('\r\n\r\n');
      const length = end < 0 ? null : /content-length: (\d+)/i.exec(text.slice(0, end));
      if (end < 0 || length === null || Buffer.byteLength(text.slice(end + 4)) < Number(length[1])) return;
      socket.off('data', onData);
      const head = text.slice(0, end);
      resolve({ status: Number(head.slice(9, 12)), retryAfter: /retry-after: (\S+)/i.exec(head)?.[1], body: text.slice(end + 4) });
    };
    socket.on('data', onData);
    socket.once('error', reject);
    socket.write(`POST ${path} HTTP/1.1\r\nHost: gateway.test\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`);
  });
}
