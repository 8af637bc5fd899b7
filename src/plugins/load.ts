// Finds, imports and checks plugin modules: `plugins[i].module` → its default export, validated, or a ConfigError.
import { existsSync, statSync } from 'node:fs';
import { createRequire } from 'node:module';
import { isAbsolute, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import type { Config } from '../config/schema.js';
import { ConfigError } from '../config/load.js';
import { describeCause } from '../errors.js';
import type { Plugin } from './contract.js';

/** One declared instance with its module loaded and its config validated. */
export interface LoadedPlugin {
  /** Index in `plugins[]`, for error messages. */
  readonly index: number;
  readonly name: string;
  /** The module as written in the config. */
  readonly module: string;
  /** What identifies the code: the resolved URL plus the file's modification time (a changed file is new code). */
  readonly moduleKey: string;
  readonly definition: Plugin;
  readonly config: unknown;
}

/** A module specifier that names a file rather than a package. */
function isPath(specifier: string): boolean {
  return specifier.startsWith('./') || specifier.startsWith('../') || specifier.startsWith('file:') || isAbsolute(specifier);
}

/** The first line of a message, bounded: it goes into a one-line config error. */
function oneLine(message: string): string {
  const line = message.split('\n')[0]!.trim();
  return line.length > 200 ? `${line.slice(0, 197)}...` : line;
}

/**
 * The URL to import. A path is relative to `baseDir` (the config file's directory); a package is resolved from
 * there first (the deployment's node_modules), then from Portcullis's own location. The file's mtime goes into the
 * URL's query, so a reload after the file changed imports the new code instead of the cached module.
 */
function resolveModule(specifier: string, baseDir: string): { url: string; key: string } | 'not found' {
  let file: string | undefined;
  if (isPath(specifier)) {
    file = specifier.startsWith('file:') ? fileURLToPath(specifier) : resolve(baseDir, specifier);
    if (!existsSync(file) || !statSync(file).isFile()) return 'not found';
  } else {
    try {
      file = createRequire(join(baseDir, 'noop.js')).resolve(specifier);
    } catch {
      file = undefined; // ESM-only exports, or not installed there: import() decides below
    }
  }
  if (file === undefined) return { url: specifier, key: specifier };
  const href = pathToFileURL(file).href;
  const version = Math.trunc(statSync(file).mtimeMs);
  return { url: `${href}?v=${version}`, key: `${href}@${version}` };
}

/** Why an import failed, in a few words: "not found", "SyntaxError", "TypeScript needs compiling"... */
function importFailure(err: unknown, specifier: string): string {
  const code = (err as { code?: unknown }).code;
  if ((code === 'ERR_MODULE_NOT_FOUND' || code === 'MODULE_NOT_FOUND') && String((err as Error).message).includes(`'${specifier}'`)) return 'not found';
  if (code === 'ERR_UNKNOWN_FILE_EXTENSION' && /\.[cm]?ts$/.test(specifier)) return 'TypeScript needs compiling first (see README, "Writing a plugin")';
  return describeCause(err) ?? 'unknown error';
}

let tsxRegistered = false;

/**
 * import(), and for a TypeScript file that node cannot run: tsx registered on demand, then import() again. In a
 * checkout tsx is there (a dev dependency), even when the gateway itself runs from dist/; in an image built with
 * `npm ci --omit=dev` it is not, and the plugin must be shipped compiled.
 */
async function importModule(url: string): Promise<{ default?: unknown }> {
  try {
    return (await import(url)) as { default?: unknown };
  } catch (err) {
    const typescript = /\.[cm]?ts(\?|$)/.test(url);
    if (!typescript || tsxRegistered || (err as { code?: unknown }).code !== 'ERR_UNKNOWN_FILE_EXTENSION') throw err;
    try {
      const api = (await import('tsx/esm/api')) as { register: () => unknown };
      api.register();
      tsxRegistered = true;
    } catch {
      throw err; // no tsx here: report the original failure
    }
    // A new URL: node remembers the failed load of the first one.
    return (await import(`${url}${url.includes('?') ? '&' : '?'}tsx`)) as { default?: unknown };
  }
}

const IMPORT_TIMEOUT = Symbol('import timeout');

/**
 * importModule, or a rejection with IMPORT_TIMEOUT after `ms`: a module whose top-level await never settles would
 * otherwise hold start-up, check-config or a reload forever, without a word. The timer is ref'd on purpose: while
 * the import hangs nothing else may keep the process alive (check-config), and node would then end it with exit
 * code 13 ("unsettled top-level await") instead of this error. The abandoned import stays pending in node's module
 * map; nothing can cancel it.
 */
function importWithin(url: string, ms: number): Promise<{ default?: unknown }> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(IMPORT_TIMEOUT), ms)));
  const imported = importModule(url);
  imported.catch(() => undefined); // a failure after the timeout is nobody's to handle
  return Promise.race([imported, timeout]).finally(() => clearTimeout(timer));
}

/**
 * Imports and checks one declared instance. Throws ConfigError naming `plugins[i].<key>`. The import is bounded by
 * `timeoutMs` (middleware.plugin_load_timeout).
 */
export async function loadPlugin(entry: Config['plugins'][number], index: number, baseDir: string, timeoutMs: number): Promise<LoadedPlugin> {
  const at = `plugins[${index}]`;
  const resolved = resolveModule(entry.module, baseDir);
  if (resolved === 'not found') throw new ConfigError(`${at}.module: cannot load ${entry.module}: not found`);
  let namespace: { default?: unknown };
  try {
    namespace = await importWithin(resolved.url, timeoutMs);
  } catch (err) {
    const why = err === IMPORT_TIMEOUT ? `import did not finish within ${timeoutMs} ms (middleware.plugin_load_timeout)` : importFailure(err, entry.module);
    throw new ConfigError(`${at}.module: cannot load ${entry.module}: ${why}`);
  }
  const definition = namespace.default as Partial<Plugin> | undefined;
  if (definition === null || typeof definition !== 'object') {
    throw new ConfigError(`${at}.module: ${entry.module} has no default export object`);
  }
  if (typeof definition.create !== 'function') throw new ConfigError(`${at}.module: ${entry.module} has no create() in its default export`);
  if (definition.validate !== undefined && typeof definition.validate !== 'function') {
    throw new ConfigError(`${at}.module: ${entry.module}: validate is not a function`);
  }
  const config = entry.config ?? {};
  if (definition.validate !== undefined) {
    try {
      definition.validate(config);
    } catch (err) {
      const message = err instanceof Error ? err.message : String(err);
      throw new ConfigError(`${at}.config: ${oneLine(message) || 'invalid'}`);
    }
  }
  return { index, name: entry.name, module: entry.module, moduleKey: resolved.key, definition: definition as Plugin, config };
}

/** Loads every declared instance, in order (check-config, start-up, reload). */
export async function loadPlugins(config: Config, baseDir: string): Promise<LoadedPlugin[]> {
  const loaded: LoadedPlugin[] = [];
  const timeoutMs = config.middleware.plugin_load_timeout;
  for (let i = 0; i < config.plugins.length; i++) loaded.push(await loadPlugin(config.plugins[i]!, i, baseDir, timeoutMs));
  return loaded;
}
