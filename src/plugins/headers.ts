// ctx.upstreamHeaders / ctx.responseHeaders: get/set/delete over the gateway's header record, refusing owned headers.
import type { PluginHeaders } from './contract.js';
import { isOwnedHeader, type HeaderDirection } from './owned-headers.js';

/** A header record as node and undici take it (lower-case names). */
type HeaderRecord = Record<string, string | string[] | number | undefined>;

/** A header name as RFC 9110 allows it (token characters). */
const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
/** Field values must not contain CR, LF or NUL (header injection). */
const BAD_VALUE = /[\r\n\0]/;

/**
 * The view a hook gets of one header record. `target` is swapped in by the chain before each hook runs; outside
 * its hook (no target) every call throws, so a plugin cannot edit a message that has already gone.
 */
export class GuardedHeaders implements PluginHeaders {
  target: HeaderRecord | undefined = undefined;
  readonly #direction: HeaderDirection;
  readonly #identity: ReadonlySet<string>;

  constructor(direction: HeaderDirection, identity: ReadonlySet<string>) {
    this.#direction = direction;
    this.#identity = identity;
  }

  get(name: string): string | undefined {
    const value = this.#record()[String(name).toLowerCase()];
    if (value === undefined) return undefined;
    return Array.isArray(value) ? value.join(', ') : String(value);
  }

  set(name: string, value: string | readonly string[]): void {
    const key = this.#writable(name);
    const values = typeof value === 'string' ? [value] : Array.isArray(value) ? value : undefined;
    if (values === undefined || values.some((v) => typeof v !== 'string' || BAD_VALUE.test(v))) {
      throw new TypeError(`header ${key}: values must be strings without CR, LF or NUL`);
    }
    this.#record()[key] = typeof value === 'string' ? value : [...values];
  }

  delete(name: string): void {
    delete this.#record()[this.#writable(name)];
  }

  #writable(name: string): string {
    const key = String(name).toLowerCase();
    if (!TOKEN.test(key)) throw new TypeError('invalid header name');
    if (isOwnedHeader(key, this.#direction, this.#identity)) throw new TypeError(`header ${key} is owned by the gateway`);
    return key;
  }

  #record(): HeaderRecord {
    const target = this.target;
    if (target === undefined) {
      const hook = this.#direction === 'request' ? 'onUpstreamRequest' : 'onResponse';
      throw new TypeError(`${this.#direction === 'request' ? 'upstreamHeaders' : 'responseHeaders'} is only available in ${hook}`);
    }
    return target;
  }
}
