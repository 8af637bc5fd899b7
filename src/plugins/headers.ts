// ctx.upstreamHeaders / ctx.responseHeaders: get/set/delete over the gateway's header record, refusing owned headers.
import { validateHeaderName, validateHeaderValue } from 'node:http';
import type { PluginHeaders } from './contract.js';
import { isOwnedHeader, type HeaderDirection, type OwnedByConfig } from './owned-headers.js';
import { HTTP2_LIST_VALUED, HTTP2_SINGLE_VALUE } from '../proxy/headers.js';

/** A header record as node and undici take it (lower-case names). */
type HeaderRecord = Record<string, string | string[] | number | undefined>;

/**
 * A TypeError unless `name` is a string, as node's setHeader/getHeader/removeHeader demand: the views converted it
 * with String(), so set(undefined, v) sent a header named "undefined" (set(42, v) one named "42"), get(undefined)
 * read it and delete(undefined) removed it, with no error for the plugin to see.
 */
function checkNameType(name: unknown): asserts name is string {
  if (typeof name !== 'string') throw new TypeError(`header name must be a string (got ${name === null ? 'null' : typeof name})`);
}

/**
 * `name` in lower case, or a TypeError naming it when it is not a string, or not a header name node accepts (an
 * RFC 9110 token). Checked when the plugin sets it, with node's own rule: node would otherwise throw when the head is
 * written, long after the hook returned, where the throw cannot be the plugin's error.
 */
export function checkedHeaderName(name: unknown): string {
  checkNameType(name);
  const key = name.toLowerCase();
  try {
    validateHeaderName(key);
  } catch {
    throw new TypeError(`invalid header name ${JSON.stringify(key.slice(0, 64))}: must be an HTTP token`);
  }
  // A token, but the records are plain objects: assigning it changes the record's prototype (an array's elements
  // then became headers and undici refused the request, a 400 blamed on the client) or does nothing. Node drops a
  // client's header of that name too.
  if (key === '__proto__') throw new TypeError('header name "__proto__" cannot be set');
  return key;
}

/**
 * Response headers that take one value: those node's HTTP/2 layer sends once. Given several, it throws when the head
 * is written, after the hook has returned.
 */
const SINGLE_VALUE = HTTP2_SINGLE_VALUE;

/**
 * Of those, the ones RFC 9110 defines as a list (`#` rule): Content-Encoding, Content-Language, If-Match and
 * If-None-Match. A request may carry them several times: a recipient may join the lines with ", " (§5.3).
 */
const LIST_VALUED = HTTP2_LIST_VALUED;

/**
 * Request headers that take one value: those whose syntax is a single value, not a list. undici sends an array as
 * one line per value, which RFC 9110 §5.3 forbids for such a header (a sender MUST NOT repeat a field that is not a
 * list), and each backend resolves it its own way: node keeps the first ETag, Authorization, Content-Type, User-Agent,
 * Referer, If-Modified-Since... and drops the rest; others keep the last, join them into a value that no longer
 * parses, or answer 400. A plugin would never learn which of its values the backend saw, so the second value is
 * refused when set rather than lost on the way. The response list without its list-valued headers, plus Origin
 * (RFC 6454 §7.3: one per request) and Cookie (RFC 6265 §5.4: one line, its pairs joined with "; "; a backend that
 * joins repeated lines with ", " reads two lines as one broken cookie). Host and Content-Length, the other singletons
 * of a request, are owned.
 */
const REQUEST_SINGLE_VALUE: ReadonlySet<string> = new Set([...[...SINGLE_VALUE].filter((name) => !LIST_VALUED.has(name)), 'origin', 'cookie']);

/**
 * Throws a TypeError naming header `key` unless every value is a string node accepts in a header: no control
 * character but tab (CR, LF and NUL would split the message), nothing beyond Latin-1 (node throws for it over
 * HTTP/1.1, and its HTTP/2 layer would cut it to one byte), and one value for a single-value header of that direction.
 * Checked at set time, as names are. The message never quotes the value, which may hold a secret.
 */
export function checkHeaderValues(key: string, values: readonly unknown[], direction: HeaderDirection = 'response'): void {
  if (values.length > 1 && (direction === 'response' ? SINGLE_VALUE : REQUEST_SINGLE_VALUE).has(key)) {
    throw new TypeError(`header ${key} takes a single value`);
  }
  for (const value of values) {
    if (typeof value !== 'string') throw new TypeError(`header ${key}: values must be strings`);
    try {
      validateHeaderValue(key, value);
    } catch {
      throw new TypeError(`header ${key}: value has a character a header cannot carry (a control character, or one beyond Latin-1)`);
    }
  }
}

/**
 * The view a hook gets of one header record. Its record is swapped in by the chain before each hook runs (retarget); outside
 * its hook (no target) every call throws, so a plugin cannot edit a message that has already gone.
 */
export class GuardedHeaders implements PluginHeaders {
  #target: HeaderRecord | undefined = undefined;
  /**
   * What this hook's set/delete replaced, oldest first (name, whether it was there, its value): an onResponse
   * abandoned at plugin_timeout is skipped (README), so its edits are undone (undoEdits). Allocated on the first edit.
   */
  #undo: Array<readonly [string, boolean, HeaderRecord[string]]> | undefined = undefined;
  readonly #direction: HeaderDirection;
  readonly #owned: OwnedByConfig;

  /**
   * Points the view at a hook's record (undefined: none); the record's edit log starts anew. A static function, not a
   * member: a plugin holds this view, and a `target` it could read or assign reached the raw record past every guard
   * (owned headers set, a Content-Length that desynchronised the client's connection).
   */
  static retarget(view: GuardedHeaders, record: HeaderRecord | undefined): void {
    view.#target = record;
    view.#undo = undefined;
  }

  /** Puts back what set/delete changed since the record was bound (newest first). */
  undoEdits(): void {
    const record = this.#target;
    const undo = this.#undo;
    this.#undo = undefined;
    if (record === undefined || undo === undefined) return;
    for (let i = undo.length - 1; i >= 0; i--) {
      const [key, had, value] = undo[i]!;
      if (had) record[key] = value;
      else delete record[key];
    }
  }

  constructor(direction: HeaderDirection, owned: OwnedByConfig) {
    this.#direction = direction;
    this.#owned = owned;
  }

  get(name: string): string | undefined {
    const record = this.#record();
    checkNameType(name);
    const key = name.toLowerCase();
    // Own properties only: "constructor" or "__proto__" would otherwise answer with Object.prototype's members.
    if (!Object.hasOwn(record, key)) return undefined;
    const value = record[key];
    if (value === undefined) return undefined;
    return Array.isArray(value) ? value.join(', ') : String(value);
  }

  set(name: string, value: string | readonly string[]): void {
    const key = this.#writable(name);
    // An array is copied before it is checked, and the copy is what is stored: checking the plugin's array and then
    // copying it read it twice, so a Proxy (or a getter) could pass the check with one value and send another
    // (CR LF included), which node then refused when writing the head, outside the hook.
    const values: unknown[] | undefined = typeof value === 'string' ? [value] : Array.isArray(value) ? [...(value as readonly unknown[])] : undefined;
    if (values === undefined) throw new TypeError(`header ${key}: values must be strings`);
    checkHeaderValues(key, values, this.#direction);
    const record = this.#record();
    this.#remember(record, key);
    record[key] = typeof value === 'string' ? value : (values as string[]);
  }

  delete(name: string): void {
    const record = this.#record();
    const key = this.#writable(name);
    this.#remember(record, key);
    delete record[key];
  }

  #remember(record: HeaderRecord, key: string): void {
    (this.#undo ??= []).push([key, Object.hasOwn(record, key), record[key]]);
  }

  #writable(name: string): string {
    const key = checkedHeaderName(name);
    if (isOwnedHeader(key, this.#direction, this.#owned)) throw new TypeError(`header ${key} is owned by the gateway`);
    return key;
  }

  #record(): HeaderRecord {
    const target = this.#target;
    if (target === undefined) {
      const hook = this.#direction === 'request' ? 'onUpstreamRequest' : 'onResponse';
      throw new TypeError(`${this.#direction === 'request' ? 'upstreamHeaders' : 'responseHeaders'} is only available in ${hook}`);
    }
    return target;
  }
}
