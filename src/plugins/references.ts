// Config rules across keys for plugins, checked with the schema (no module loading): names unique, lists resolvable.
import type { Config } from '../config/schema.js';
import { isOwnedHeader, ownedByConfig } from './owned-headers.js';
import { checkHeaderValues } from './headers.js';

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
  const owned = ownedByConfig(config);
  for (let i = 0; i < config.routes.length; i++) {
    const route = config.routes[i]!;
    const problem = route.plugins === undefined ? undefined : listProblem(route.plugins, `routes[${i}].plugins`, names);
    if (problem !== undefined) return problem;
    // The header rewrites run as a first-party plugin: what the plugin contract refuses is refused here, up front.
    for (const [key, rewrite, direction] of [
      ['request_headers', route.request_headers, 'request'],
      ['response_headers', route.response_headers, 'response'],
    ] as const) {
      if (rewrite === undefined) continue;
      const taken = [...Object.keys(rewrite.set), ...rewrite.remove].find((name) => isOwnedHeader(name, direction, owned));
      if (taken !== undefined) return `routes[${i}].${key}: "${taken}" is set by the gateway and cannot be rewritten`;
      // And a value node cannot send (a control character, one beyond Latin-1) would fail every request it meets.
      const value = valueProblem(rewrite.set);
      if (value !== undefined) return `routes[${i}].${key}.set.${value}`;
    }
  }
  return undefined;
}

/** "name: reason" for the first value `set` holds that checkHeaderValues refuses (the message never quotes it). */
function valueProblem(set: Readonly<Record<string, string>>): string | undefined {
  for (const [name, value] of Object.entries(set)) {
    try {
      checkHeaderValues(name, [value]);
    } catch (err) {
      return `${name}: ${(err as Error).message}`;
    }
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
