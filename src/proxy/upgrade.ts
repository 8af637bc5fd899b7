// Joins a client's upgraded connection (WebSocket) to the upstream's once the upstream has answered 101.
import type { OutgoingHttpHeaders } from 'node:http';
import type { Duplex } from 'node:stream';
import type { RequestContext } from '../pipeline/context.js';

/** Serializes a status line and headers by hand: after a 101 the socket no longer belongs to node's HTTP layer. */
function headBlock(statusCode: number, headers: OutgoingHttpHeaders): string {
  let head = `HTTP/1.1 ${statusCode} Switching Protocols\r\n`;
  for (const name in headers) {
    const value = headers[name];
    if (value === undefined) continue;
    if (Array.isArray(value)) for (const v of value) head += `${name}: ${v}\r\n`;
    else head += `${name}: ${value}\r\n`;
  }
  return `${head}\r\n`;
}

/**
 * Writes the upstream's 101 (with the gateway headers) to the client and pipes the two sockets together. Any bytes
 * the client sent after its upgrade request (`ctx.upgradeHead`) go first. Either side closing closes the other.
 */
export function spliceUpgrade(ctx: RequestContext, statusCode: number, headers: OutgoingHttpHeaders, upstream: Duplex): void {
  const client = ctx.req.socket;
  ctx.res.detachSocket(client);
  if (client.destroyed) {
    upstream.destroy();
    return;
  }
  client.write(headBlock(statusCode, headers));
  if (ctx.upgradeHead && ctx.upgradeHead.length > 0) upstream.write(ctx.upgradeHead);
  // Either side ending, failing or being destroyed (shutdown) takes the other down with it: no half-open leftovers.
  upstream.once('close', () => client.destroy());
  client.once('close', () => upstream.destroy());
  upstream.on('error', () => client.destroy());
  client.on('error', () => upstream.destroy());
  upstream.pipe(client);
  client.pipe(upstream);
}
