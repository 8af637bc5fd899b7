// HTTP/2 and HTTPS client helpers for tests: one request on a node:http2 session, an HTTPS GET that reports the
// certificate the server chose, and curl runs (for a client that is not node).
import { connect, type ClientHttp2Session, type IncomingHttpHeaders, type OutgoingHttpHeaders } from 'node:http2';
import { execFile } from 'node:child_process';
import { request as httpsRequest } from 'node:https';
import type { PeerCertificate, TLSSocket } from 'node:tls';

export interface H2Response {
  readonly status: number;
  readonly headers: IncomingHttpHeaders;
  readonly body: Buffer;
  readonly trailers: IncomingHttpHeaders | undefined;
}

/** Opens an h2 session to https://127.0.0.1:port trusting `ca`, with SNI `servername`. */
export function h2connect(port: number, ca: Buffer, servername = 'a.test'): Promise<ClientHttp2Session> {
  return new Promise((resolve, reject) => {
    const session = connect(`https://127.0.0.1:${port}`, { ca, servername });
    session.once('connect', () => resolve(session));
    session.once('error', reject);
  });
}

/** One request on `session`; resolves once the stream has ended (body and trailers read). */
export function h2request(
  session: ClientHttp2Session,
  headers: OutgoingHttpHeaders,
  body?: Buffer | string,
  timeoutMs = 15_000,
): Promise<H2Response> {
  return new Promise((resolve, reject) => {
    const stream = session.request(headers, { endStream: body === undefined });
    const timer = setTimeout(() => {
      stream.close();
      reject(new Error(`h2 request ${String(headers[':path'])} timed out`));
    }, timeoutMs);
    let status = 0;
    let responseHeaders: IncomingHttpHeaders = {};
    let trailers: IncomingHttpHeaders | undefined;
    const chunks: Buffer[] = [];
    stream.on('response', (h) => {
      status = Number(h[':status']);
      responseHeaders = h;
    });
    stream.on('trailers', (t) => (trailers = t));
    stream.on('data', (c: Buffer) => chunks.push(c));
    stream.on('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    stream.on('close', () => {
      clearTimeout(timer);
      if (status === 0) reject(new Error(`h2 stream closed without a response (rst ${stream.rstCode})`));
      else resolve({ status, headers: responseHeaders, body: Buffer.concat(chunks), trailers });
    });
    if (body !== undefined) stream.end(body);
  });
}

/** An HTTPS/1.1 GET to 127.0.0.1 with SNI `servername` (none when undefined): status, headers and the server's certificate. */
export function httpsGet(
  port: number,
  ca: Buffer,
  servername: string | undefined,
  path = '/',
): Promise<{ status: number; headers: Record<string, string | string[] | undefined>; cert: PeerCertificate; body: string }> {
  return new Promise((resolve, reject) => {
    const req = httpsRequest(
      {
        host: '127.0.0.1',
        port,
        path,
        ca,
        servername: servername ?? '',
        // Without SNI the name check must still pass: the default certificate carries IP:127.0.0.1.
        agent: false,
        headers: { host: servername ?? '127.0.0.1' },
      },
      (res) => {
        const cert = (res.socket as TLSSocket).getPeerCertificate();
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (d: string) => (body += d));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, cert, body }));
      },
    );
    req.on('error', reject);
    req.end();
  });
}

/** Runs curl with `args`; resolves with its stdout (curl failures reject with its stderr). */
export function curl(args: readonly string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile('curl', ['-sS', '--max-time', '10', ...args], (err, stdout, stderr) => {
      if (err) reject(new Error(`curl failed: ${stderr || err.message}`));
      else resolve(stdout);
    });
  });
}
