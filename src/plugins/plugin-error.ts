// The boundary between plugin code and the gateway's logs, config errors and admin answers: whatever a plugin throws
// is reduced to its class name before the gateway keeps it. A plugin's message, `code` or `name` may carry data (a
// user's input, a connection string with its password), and none of them is ever logged or answered.

/** A class name as code declares it: an identifier, short. Anything else is not repeated. */
const CLASS_NAME = /^[A-Za-z_$][\w$]{0,63}$/;

/**
 * What a thrown value is, by its constructor's name: "TypeError", "PluginBug"; "Error" for an error whose class has
 * no plain name; `typeof` for a primitive ("string", "undefined"), "null", "Object" for an object literal. Never the
 * message, `code` or `name` property. Never throws, whatever the value (a Proxy, a throwing getter).
 */
export function errorClassOf(thrown: unknown): string {
  if (thrown === null) return 'null';
  if (typeof thrown !== 'object' && typeof thrown !== 'function') return typeof thrown;
  try {
    const ctor = (thrown as { constructor?: unknown }).constructor;
    const name = typeof ctor === 'function' ? (ctor as { name?: unknown }).name : undefined;
    if (typeof name === 'string' && CLASS_NAME.test(name)) return name;
    return thrown instanceof Error ? 'Error' : 'Object';
  } catch {
    return 'unknown';
  }
}

/** Where plugin code ran: the definition's entry points, then the instance's hooks. */
export type PluginPhase = 'validate' | 'create' | 'close' | 'onRequest' | 'onUpstreamRequest' | 'onResponse' | 'onLog';

/**
 * A failure of plugin code, as the gateway keeps it: the instance's name (from the config), where it ran and the
 * thrown value's class (errorClassOf). The thrown value itself is not kept, so nothing downstream (a log line's
 * `cause`, a config error, the admin API's reload answer) can repeat what it said. describeCause gives
 * "PluginError <- <class>".
 */
export class PluginError extends Error {
  readonly plugin: string;
  readonly phase: PluginPhase;
  readonly errorClass: string;

  constructor(plugin: string, phase: PluginPhase, thrown: unknown) {
    const errorClass = errorClassOf(thrown);
    super(`${errorClass} thrown by plugin "${plugin}" (its message is not shown)`);
    this.name = 'PluginError';
    this.plugin = plugin;
    this.phase = phase;
    this.errorClass = errorClass;
  }
}

/** A thenable as Promise.resolve sees one (`then` is a function). A `then` getter that throws throws here: call it inside the try. */
export function isThenable(value: unknown): value is PromiseLike<unknown> {
  return value !== null && (typeof value === 'object' || typeof value === 'function') && typeof (value as { then?: unknown }).then === 'function';
}
