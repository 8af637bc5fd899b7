// node's TLS, HTTPS and HTTP/2 modules, loaded on first use instead of imported. Together they are about 2 MB of
// memory and a few milliseconds of start-up that a gateway on cleartext HTTP/1.1 upstreams and listeners (the
// default) never uses; a gateway with TLS or HTTP/2 loads them as it builds its listener or its first such pool.
// Modules that only need their types import those as types.
import { createRequire } from 'node:module';

const load = createRequire(import.meta.url);

let tls: typeof import('node:tls') | undefined;
let https: typeof import('node:https') | undefined;
let http2: typeof import('node:http2') | undefined;

export function nodeTls(): typeof import('node:tls') {
  return (tls ??= load('node:tls') as typeof import('node:tls'));
}

export function nodeHttps(): typeof import('node:https') {
  return (https ??= load('node:https') as typeof import('node:https'));
}

export function nodeHttp2(): typeof import('node:http2') {
  return (http2 ??= load('node:http2') as typeof import('node:http2'));
}
