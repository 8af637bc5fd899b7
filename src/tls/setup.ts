// The TLS and HTTP/2 parts of the composition root: the HSTS response phase, the settings a reload cannot change,
// and the start-up warning for unverified upstreams. server.ts calls these, so its own edits stay a few lines.
import type { Logger } from 'pino';
import type { Config } from '../config/schema.js';
import type { Phase } from '../pipeline/phase.js';
import { loadUpstreamTransport, warnIfUnverified } from '../proxy/upstream-tls.js';
import { loadAll, tlsEnabled } from './store.js';
import { resolveServices } from '../config/services.js';

/**
 * `check-config`: reads every certificate, key and CA file the config names, as start-up would. Throws the same
 * one-line ConfigError (unreadable file, key not matching its certificate, expired or not yet valid certificate).
 */
export function checkTlsFiles(config: Config): void {
  if (tlsEnabled(config.server.tls)) loadAll(config.server.tls);
  for (const service of resolveServices(config).values()) loadUpstreamTransport(service, service.keyPath);
}

/**
 * The Strict-Transport-Security value of TLS responses under these settings, '' when TLS is off or HSTS is not
 * wanted: the one reading of `server.tls.hsts`, for the response phase and the listener's own raw answers alike.
 */
export function hstsValue(server: Config['server']): string {
  return tlsEnabled(server.tls) ? server.tls.hsts : '';
}

/**
 * Response-filter phases for TLS: Strict-Transport-Security on every response to a TLS client, proxied or made by
 * the gateway, when `server.tls.hsts` is set. `current` is the config as the last reload left it: HSTS reloads
 * (tlsFixedSettings), so the value is read per response, as the listener's raw answers read it. Empty when TLS is
 * off, which a reload cannot change. The answers node's parser refused never reach a phase: the proxy listener adds
 * the header to those itself (listeners/proxy-events.ts).
 */
export function tlsPhases(current: () => Config): Phase[] {
  if (!tlsEnabled(current().server.tls)) return [];
  return [
    {
      name: 'hsts',
      onResponse(ctx, headers) {
        if (!ctx.secure) return;
        const hsts = hstsValue(current().server);
        if (hsts !== '') headers['strict-transport-security'] = hsts;
      },
    },
  ];
}

/**
 * What a reload cannot change about TLS and HTTP/2: turning TLS or h2 on or off changes the kind of server, the
 * redirect port is a listener. Certificate files, min_version, ciphers, HSTS, the stream limit and upstream TLS (a changed
 * service gets new pools) do reload.
 */
export function tlsFixedSettings(config: Config): unknown {
  const { tls, http_redirect } = config.server;
  return [tlsEnabled(tls), tls.http2, http_redirect.listen_port ?? null];
}

/** Logs the loud warning for every upstream group with `tls.verify: false`. */
export function warnUnverifiedUpstreams(config: Config, logger: Logger): void {
  for (const service of resolveServices(config).values()) warnIfUnverified(service, service.keyPath, logger);
}
