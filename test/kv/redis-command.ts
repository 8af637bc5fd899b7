// One Redis command over a socket of its own, its reply printed as `redis-cli` prints it to a pipe (each element of an
// array on a line of its own, nested arrays flattened, nil as an empty line). For the helpers that poll throwaway
// servers many times a second: a redis-cli process per poll cost a fork of the (large) test process and an exec each,
// about 1.5 CPU-s over a Sentinel file. Errors reject, with the server's text.
import { connect } from 'node:net';

/** A reply, decoded: RESP2, as redis-cli speaks by default. */
type Reply = string | number | null | Reply[];

/** An error reply (`-ERR …`, `-LOADING …`), which redis-cli 7.0 prints as text with exit status 0. */
export class RedisErrorReply extends Error {}

/** Sends `args` to 127.0.0.1:`port`; resolves with the reply as redis-cli's text output, rejects on an error reply. */
export function redisCommand(port: number, args: readonly string[], timeoutMs = 5_000): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host: '127.0.0.1', port });
    let buffer = Buffer.alloc(0);
    const finish = (err: Error | undefined, text?: string): void => {
      socket.destroy();
      if (err !== undefined) reject(err);
      else resolve(text as string);
    };
    socket.setTimeout(timeoutMs, () => finish(new Error(`no reply from 127.0.0.1:${port} within ${timeoutMs} ms to ${args[0]}`)));
    socket.on('error', (err) => finish(err));
    socket.on('close', () => finish(new Error(`127.0.0.1:${port} closed the connection before replying to ${args[0]}`)));
    socket.on('connect', () => {
      const parts = [`*${args.length}\r\n`];
      for (const arg of args) parts.push(`$${Buffer.byteLength(arg)}\r\n${arg}\r\n`);
      socket.write(parts.join(''));
    });
    socket.on('data', (chunk: Buffer) => {
      buffer = Buffer.concat([buffer, chunk]);
      let parsed: { reply: Reply; end: number } | undefined;
      try {
        parsed = parse(buffer, 0);
      } catch (err) {
        finish(err as Error);
        return;
      }
      if (parsed !== undefined) finish(undefined, `${lines(parsed.reply).join('\n')}\n`);
    });
  });
}

function lines(reply: Reply): string[] {
  if (Array.isArray(reply)) return reply.flatMap(lines);
  return [reply === null ? '' : String(reply)];
}

/** One reply starting at `at`, or undefined when the buffer does not hold all of it yet. */
function parse(buffer: Buffer, at: number): { reply: Reply; end: number } | undefined {
  const eol = buffer.indexOf('\r\n', at);
  if (eol === -1) return undefined;
  const head = buffer.toString('utf8', at + 1, eol);
  switch (String.fromCharCode(buffer[at]!)) {
    case '+':
      return { reply: head, end: eol + 2 };
    case '-':
      throw new RedisErrorReply(head);
    case ':':
      return { reply: Number(head), end: eol + 2 };
    case '$': {
      const length = Number(head);
      if (length < 0) return { reply: null, end: eol + 2 };
      if (buffer.length < eol + 2 + length + 2) return undefined;
      return { reply: buffer.toString('utf8', eol + 2, eol + 2 + length), end: eol + 2 + length + 2 };
    }
    case '*': {
      const count = Number(head);
      if (count < 0) return { reply: null, end: eol + 2 };
      const items: Reply[] = [];
      let next = eol + 2;
      for (let i = 0; i < count; i++) {
        const item = parse(buffer, next);
        if (item === undefined) return undefined;
        items.push(item.reply);
        next = item.end;
      }
      return { reply: items, end: next };
    }
    default:
      throw new Error(`not a RESP reply: ${JSON.stringify(buffer.toString('utf8', at, Math.min(buffer.length, at + 40)))}`);
  }
}
