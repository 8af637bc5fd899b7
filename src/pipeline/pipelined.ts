// Pipelined requests whose client leaves: node never closes their queued responses, so the driver is told here.
import type { ServerResponse } from 'node:http';

const kQueued = Symbol('portcullis.queuedResponses');
type WatchedSocket = NonNullable<ServerResponse['req']['socket']> & { [kQueued]?: Map<ServerResponse, () => void> };

/**
 * For a response queued behind another on the same connection (HTTP/1.1 pipelining: `res.socket` is still null).
 * Node emits no 'close' on such a response when the connection drops, so its request would never be logged and its
 * upstream attempt would wait for a 'drain' that never comes. Calls its `onOrphaned` for every one of them still
 * unfinished when the connection closes. Costs nothing for requests that are not queued.
 */
export function watchQueuedResponse(res: ServerResponse, onOrphaned: () => void): void {
  const socket = res.req.socket as WatchedSocket;
  let queued = socket[kQueued];
  if (queued === undefined) {
    const waiting = new Map<ServerResponse, () => void>();
    queued = socket[kQueued] = waiting;
    socket.once('close', () => {
      for (const [response, orphaned] of waiting) if (!response.writableFinished) orphaned();
      waiting.clear();
    });
  }
  queued.set(res, onOrphaned);
  res.once('finish', () => queued.delete(res));
}
