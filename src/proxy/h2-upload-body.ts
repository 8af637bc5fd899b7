// The body undici's HTTP/2 client is handed for an upload of unknown length. undici 7 (client-h2's writeH2) reads the
// length of a stream body that has already ended as its buffered length: for an empty body (a gRPC call that
// half-closes with no message, an HTTP/1.1 chunked body of just its last chunk) that is 0, and it then sends
// `content-length: 0` on a stream it opened without END_STREAM, writes nothing and never ends the stream. The
// upstream waited for the end of a body that never came, and no timeout ended it (the request awaited its client),
// holding an upstream connection until the client left: four such requests made a pool of four answer 503 to all.
// A body already ended when the request is dispatched was not the only case: it can end while the request waits
// for an upstream connection.
import { IncomingMessage } from 'node:http';
import { Readable } from 'node:stream';

/**
 * The body to hand undici for an HTTP/2 upstream: an upload without a Content-Length goes length-hidden (see the
 * file's comment); one declared empty (`content-length: 0`, the client's stream left open or not) goes as none, its
 * HEADERS ending the stream, since undici writes no body for a declared length of 0 and never ends the stream either;
 * one with a length undici reads right goes as it is.
 */
export function bodyForHttp2(body: Readable | null, headers: IncomingMessage['headers']): Readable | null {
  if (body === null) return null;
  const length = headers['content-length'];
  if (length === '0') return null;
  return length === undefined ? lengthHidden(body) : body;
}

/**
 * `source` as an object-mode stream, which undici never measures (util.bodyLength answers null): it pipes it into
 * the upstream stream, and the pipe's end sends END_STREAM, whatever the body's length. The source is read only once
 * undici reads this one, as when undici read the source itself: whether the body was taken (a retry's test) is
 * unchanged. Failures travel both ways: the source failing or closing early fails this one (undici then resets the
 * upstream stream), and undici destroying this one destroys the source as it would have (an IncomingMessage detached
 * from its socket first, which stays the client's).
 */
export function lengthHidden(source: Readable): Readable {
  let started = false;
  let ended = false;
  const onData = (chunk: Buffer): void => {
    if (!body.push(chunk)) source.pause();
  };
  const onEnd = (): void => {
    ended = true;
    body.push(null);
  };
  const onError = (err: Error): void => void body.destroy(err);
  const onClose = (): void => {
    if (!ended && !body.destroyed) body.destroy(source.errored ?? new PrematureBodyClose());
  };
  const body = new Readable({
    objectMode: true,
    read() {
      if (!started) {
        started = true;
        source.on('data', onData);
        source.once('end', onEnd);
      }
      source.resume();
    },
    destroy(err, callback) {
      source.off('data', onData);
      source.off('end', onEnd);
      source.off('error', onError);
      source.off('close', onClose);
      if (!ended && !source.destroyed) {
        if (Object.getPrototypeOf(source).constructor === IncomingMessage) (source as IncomingMessage).socket = null as never;
        source.destroy(err ?? undefined);
      }
      callback(err);
    },
  });
  source.once('error', onError);
  source.once('close', onClose);
  // undici destroys a failed attempt's body with the attempt's error after it let go of its own listener; the error
  // has reached the attempt's handler already (and the source, above): unheard here, it would end the process.
  body.on('error', () => undefined);
  return body;
}

/** The client's body stream closed before its end, without an error of its own. */
export class PrematureBodyClose extends Error {
  constructor() {
    super('the request body closed before its end');
    this.name = 'PrematureBodyClose';
  }
}
