// Config rules across keys for plugins, checked with the schema (no module loading): names unique, lists resolvable.
import type { Config } from '../config/schema.js';

/**
 * The first problem as a one-line "key: reason" (a duplicate instance name, a `middleware.plugins` entry naming
 * no instance), or undefined. config/load.ts turns it into a ConfigError.
 */
export function pluginReferenceProblem(config: Config): string | undefined {
  const names = new Set<string>();
  for (let i = 0; i < config.plugins.length; i++) {
    const name = config.plugins[i]!.name;
    if (names.has(name)) return `plugins[${i}].name: duplicate plugin name "${name}"`;
    names.add(name);
  }
  const global = listProblem(config.middleware.plugins, 'middleware.plugins', names);
  if (global !== undefined) return global;
  for (let i = 0; i < config.routes.length; i++) {
    const list = config.routes[i]!.plugins;
    const problem = list === undefined ? undefined : listProblem(list, `routes[${i}].plugins`, names);
    if (problem !== undefined) return problem;
  }
  return undefined;
}

/** One list of instance names (middleware.plugins, and routes[i].plugins once routes exist). */
export function listProblem(list: readonly string[], key: string, names: ReadonlySet<string>): string | undefined {
  const seen = new Set<string>();
  for (let i = 0; i < list.length; i++) {
    const name = list[i]!;
    if (!names.has(name)) return `${key}[${i}]: unknown plugin "${name}"`;
    if (seen.has(name)) return `${key}[${i}]: plugin "${name}" is listed twice`;
    seen.add(name);
  }
  return undefined;
}
