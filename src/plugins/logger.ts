// api.logger: a plugin's log lines, with its instance name. The fields a plugin passes are its own, but a line's
// keys must stay unique (strict JSON ingesters refuse a line with two "service" or two "msg" keys, and pino writes
// a binding and a field of the same name both), so a field named like one the gateway writes on every line is
// renamed `plugin_<name>` rather than dropped.
import type { Logger } from 'pino';
import { LOG_BASE } from '../observability/logger.js';
import type { PluginLogger } from './contract.js';

/**
 * Keys every line already has: the logger's base fields, pino's own, the instance name, and `worker`, which a
 * worker's lines carry (the base of a multi-worker gateway's loggers).
 */
const RESERVED: ReadonlySet<string> = new Set([...Object.keys(LOG_BASE), 'worker', 'level', 'time', 'msg', 'plugin']);

/** `fields` with every reserved key renamed; the same object when it has none (the usual case: no copy). */
export function ownFields(fields: object): object {
  if (fields === null || typeof fields !== 'object') return fields; // not the contract's shape: pino's to judge
  let renamed: Record<string, unknown> | undefined;
  for (const key of Object.keys(fields)) {
    if (!RESERVED.has(key)) continue;
    renamed ??= { ...fields };
    renamed[`plugin_${key}`] = renamed[key];
    delete renamed[key];
  }
  return renamed ?? fields;
}

/**
 * A TypeError unless the call has the contract's shape, `(fields, message?)`: fields an object that is not an array
 * (or null/undefined: none, or a string: pino's message-only form, `info('text')`), the message a string when
 * given. pino took anything: warn(42, 'text') wrote `"msg": 42` and dropped the text, info(fields, { … }) wrote an
 * object as `msg` (a line a log ingester expecting text may refuse), and an array's elements became keys "0", "1".
 */
function checkCall(fields: unknown, msg: unknown): void {
  if (msg !== undefined && typeof msg !== 'string') throw new TypeError('logger: the message must be a string');
  if (fields === undefined || fields === null || typeof fields === 'string') return;
  if (typeof fields !== 'object' || Array.isArray(fields)) throw new TypeError('logger: fields must be an object (or the message alone, a string)');
}

/** The logger a plugin instance is given: the gateway's, with `plugin: <instance name>` on every line. */
export function pluginLogger(logger: Logger, instance: string): PluginLogger {
  const child = logger.child({ plugin: instance });
  const level = (write: (fields: object, msg?: string) => void) => (fields: object, msg?: string): void => {
    checkCall(fields, msg);
    write(ownFields(fields), msg);
  };
  return {
    debug: level((fields, msg) => child.debug(fields, msg)),
    info: level((fields, msg) => child.info(fields, msg)),
    warn: level((fields, msg) => child.warn(fields, msg)),
    error: level((fields, msg) => child.error(fields, msg)),
  };
}
