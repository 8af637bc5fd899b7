// The 16 KiB bound on an HTTP/2 request's header list (MAX_HEADER_LIST_SIZE, as node bounds an HTTP/1.1 head), held
// for every request. Node enforces the SETTINGS_MAX_HEADER_LIST_SIZE the listener advertises only once the client has
// acknowledged that SETTINGS frame; before that it takes lists up to its own 64 KiB. A client's first requests go out
// before the acknowledgement, and a client that never sends one kept the 64 KiB bound for good: 60 KB paths, header
// values and :method names reached the pipeline, the upstream and the access log (measured, node 20).
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Http2ServerRequest } from 'node:http2';
import { H2_ENHANCE_YOUR_CALM } from '../proxy/h2-codes.js';
import { MAX_HEADER_LIST_SIZE } from './h2-guard.js';

/** Per field, the octets RFC 9113 §6.5.2 counts (name, value, 32), as node counts them against the setting. */
const FIELD_OVERHEAD = 32;

/** The header list size of a request's raw fields, pseudo-header fields included, as HPACK decoded them. */
export function headerListSize(rawHeaders: readonly string[]): number {
  let size = 0;
  for (let i = 0; i + 1 < rawHeaders.length; i += 2) size += rawHeaders[i]!.length + rawHeaders[i + 1]!.length + FIELD_OVERHEAD;
  return size;
}

/**
 * Wraps the listener's request handler: an HTTP/2 request whose header list is over the bound has its stream reset
 * with ENHANCE_YOUR_CALM, which is what node does with it once SETTINGS are acknowledged, and `onRefused` logs it
 * (the client alone: nothing it sent). HTTP/1 requests pass untouched: node's parser has bounded their heads.
 */
export function boundHeaderList(
  handle: (req: IncomingMessage, res: ServerResponse) => void,
  onRefused: (req: IncomingMessage) => void,
): (req: IncomingMessage, res: ServerResponse) => void {
  return (req, res) => {
    if (req.httpVersionMajor !== 2 || headerListSize(req.rawHeaders) <= MAX_HEADER_LIST_SIZE) {
      handle(req, res);
      return;
    }
    onRefused(req);
    (req as unknown as Http2ServerRequest).stream.close(H2_ENHANCE_YOUR_CALM);
  };
}
