// api.logger: a plugin's log lines, with its instance name. The fields a plugin passes are its own, but a line's
// keys must stay unique (strict JSON ingesters refuse a line with two "service" or two "msg" keys, and pino writes
// a binding and a field of the same name both), so a field named like one the gateway writes on every line is
// renamed `plugin_<name>` rather than dropped.
import type { Logger } from 'pino';
import { LOG_BASE } from '../observability/logger.js';
import type { PluginLogger } from './contract.js';

/** Keys every line already has: the logger's base fields, pino's own, and the instance name. */
const RESERVED: ReadonlySet<string> = new Set([...Object.keys(LOG_BASE), 'level', 'time', 'msg', 'plugin']);

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

/** The logger a plugin instance is given: the gateway's, with `plugin: <instance name>` on every line. */
export function pluginLogger(logger: Logger, instance: string): PluginLogger {
  const child = logger.child({ plugin: instance });
  return {
    debug: (fields, msg) => child.debug(ownFields(fields), msg),
    info: (fields, msg) => child.info(ownFields(fields), msg),
    warn: (fields, msg) => child.warn(ownFields(fields), msg),
    error: (fields, msg) => child.error(ownFields(fields), msg),
  };
}
