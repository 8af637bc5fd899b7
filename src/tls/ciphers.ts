// `server.tls.ciphers`: which TLS 1.2 cipher suites the listener accepts, and the check of a configured list.
import { nodeTls } from '../node-builtins.js';

/**
 * The default TLS 1.2 suites: ECDHE key exchange with an AEAD cipher only, the ECDHE part of Mozilla's
 * "intermediate" profile (its DHE suites need DH parameters, which the gateway does not set; Caddy and Traefik's
 * defaults are ECDHE AEAD suites alike). node's own default list also takes the CBC-SHA suites (AES-CBC with
 * HMAC-SHA1, e.g. ECDHE-RSA-AES128-SHA), whose MAC-then-encrypt design Lucky13-style padding oracles attack and
 * which scanners (testssl.sh, SSL Labs) flag as weak. Every client of the last decade offers one of these; TLS 1.3
 * suites are OpenSSL's defaults and untouched. ECDSA and RSA certificates are both covered.
 */
export const DEFAULT_TLS12_CIPHERS = [
  'ECDHE-ECDSA-AES128-GCM-SHA256',
  'ECDHE-RSA-AES128-GCM-SHA256',
  'ECDHE-ECDSA-AES256-GCM-SHA384',
  'ECDHE-RSA-AES256-GCM-SHA384',
  'ECDHE-ECDSA-CHACHA20-POLY1305',
  'ECDHE-RSA-CHACHA20-POLY1305',
].join(':');

/**
 * Why OpenSSL refuses `ciphers` (none of its names is a suite it knows, or it is empty), or undefined. Loads node:tls:
 * called only when TLS is on, as the certificates are loaded (start-up, reload, check-config).
 */
export function cipherListProblem(ciphers: string): string | undefined {
  if (ciphers.trim() === '') return 'must name at least one cipher suite';
  try {
    nodeTls().createSecureContext({ ciphers });
    return undefined;
  } catch {
    return 'names no cipher suite OpenSSL knows (an OpenSSL cipher list such as ECDHE-RSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES128-GCM-SHA256)';
  }
}
