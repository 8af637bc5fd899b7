// A stand-in sentinel speaking just enough of the protocol for node-redis's Sentinel client: it names `masterPort` as
// the master of any name asked, knows no other sentinel or replica, accepts subscriptions, and answers each command
// after `delayMs`. For what a real sentinel will not do on demand: name a replica as the master, or answer slowly.
import { createServer, type Server, type Socket } from 'node:net';

export interface FakeSentinel {
  readonly port: number;
  readonly url: string;
  close(): Promise<void>;
}

const bulk = (s: string): string => `$${Buffer.byteLength(s)}\r\n${s}\r\n`;
const map = (entries: Array<[string, string]>): string => `%${entries.length}\r\n${entries.map(([k, v]) => bulk(k) + bulk(v)).join('')}`;

/** The commands in `buffer` (RESP arrays of bulk strings), and what is left of an incomplete one. */
function parseCommands(buffer: Buffer): { commands: string[][]; rest: Buffer } {
  const commands: string[][] = [];
  let at = 0;
  for (;;) {
    if (at >= buffer.length || buffer[at] !== 0x2a) break; // '*'
    let end = buffer.indexOf('\r\n', at);
    if (end < 0) break;
    const count = Number(buffer.subarray(at + 1, end).toString());
    let pos = end + 2;
    const args: string[] = [];
    for (let i = 0; i < count; i++) {
      end = buffer.indexOf('\r\n', pos);
      if (end < 0) break;
      const length = Number(buffer.subarray(pos + 1, end).toString());
      if (buffer.length < end + 2 + length + 2) break;
      args.push(buffer.subarray(end + 2, end + 2 + length).toString());
      pos = end + 2 + length + 2;
    }
    if (args.length < count) break;
    commands.push(args);
    at = pos;
  }
  return { commands, rest: buffer.subarray(at) };
}

function reply(command: string[], masterPort: number): string {
  const [name, sub] = command.map((c) => c.toUpperCase());
  if (name === 'PING') return '+PONG\r\n';
  if (name === 'HELLO') return map([['server', 'redis'], ['version', '7.0.15'], ['mode', 'sentinel'], ['role', 'master']]);
  if (name === 'SENTINEL' && sub === 'MASTER') {
    return map([['name', command[2] ?? ''], ['ip', '127.0.0.1'], ['port', String(masterPort)], ['flags', 'master'], ['config-epoch', '0']]);
  }
  if (name === 'SENTINEL' && sub === 'GET-MASTER-ADDR-BY-NAME') return `*2\r\n${bulk('127.0.0.1')}${bulk(String(masterPort))}`;
  if (name === 'SENTINEL') return '*0\r\n';
  if (name === 'SUBSCRIBE' || name === 'PSUBSCRIBE') {
    return command.slice(1).map((channel, i) => `>3\r\n${bulk(name.toLowerCase())}${bulk(channel)}:${i + 1}\r\n`).join('');
  }
  return '+OK\r\n';
}

/** Starts a fake sentinel on a free port of 127.0.0.1. */
export async function startFakeSentinel(masterPort: number, delayMs = 0): Promise<FakeSentinel> {
  const sockets = new Set<Socket>();
  const server: Server = createServer((socket) => {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
    socket.on('error', () => undefined);
    let pending: Buffer = Buffer.alloc(0);
    socket.on('data', (data: Buffer) => {
      const { commands, rest } = parseCommands(Buffer.concat([pending, data]));
      pending = rest;
      for (const command of commands) {
        const text = reply(command, masterPort);
        const send = (): void => {
          if (!socket.destroyed) socket.write(text);
        };
        if (delayMs > 0) setTimeout(send, delayMs);
        else send();
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as { port: number }).port;
  return {
    port,
    url: `redis://127.0.0.1:${port}`,
    close: () => {
      for (const s of sockets) s.destroy();
      return new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
