// API key strings: `pk_<id>_<secret>` with a 256-bit secret. Generation, parsing and the stored SHA-256; pure.
import { createHash, randomBytes } from 'node:crypto';

/** Every key starts with this, so a bearer value can be told from a JWT without decoding it. */
export const API_KEY_PREFIX = 'pk_';
/** 16 hex characters: 64 random bits, enough for a unique id that is not secret. */
const KEY_SHAPE = /^pk_([0-9a-f]{16})_([0-9a-f]{64})$/;

/** A freshly generated key: `key` is shown once to the operator, only `keyHash` is stored. */
export interface GeneratedApiKey {
  readonly id: string;
  readonly key: string;
  readonly keyHash: string;
}

/** Makes a new key from the OS CSPRNG. */
export function generateApiKey(): GeneratedApiKey {
  const id = randomBytes(8).toString('hex');
  const key = `${API_KEY_PREFIX}${id}_${randomBytes(32).toString('hex')}`;
  return { id, key, keyHash: hashApiKey(key) };
}

/** True when `value` looks like an API key rather than a JWT (the bearer value decides which check runs). */
export function looksLikeApiKey(value: string): boolean {
  return value.startsWith(API_KEY_PREFIX);
}

/** A key of the generated shape anywhere in a text (a header value), for removing keys that must not be forwarded. */
export const API_KEY_INSIDE = /pk_[0-9a-f]{16}_[0-9a-f]{64}/;

/**
 * `text` with every API key's secret part replaced (`pk_<id>_<secret not shown>`): for messages that print back what
 * an operator typed, which scripts and CI jobs keep in their logs.
 */
export function withoutKeySecrets(text: string): string {
  return text.indexOf(API_KEY_PREFIX) === -1 ? text : text.replace(new RegExp(API_KEY_INSIDE.source, 'g'), (key) => `${key.slice(0, 19)}_<secret not shown>`);
}

/** The key's id, or undefined when `key` is not exactly of the generated shape (checked before any lookup). */
export function apiKeyId(key: string): string | undefined {
  return KEY_SHAPE.exec(key)?.[1];
}

/** SHA-256 of the whole key, hex. A 256-bit random secret needs no slow hash: it cannot be guessed offline. */
export function hashApiKey(key: string): string {
  return createHash('sha256').update(key).digest('hex');
}
