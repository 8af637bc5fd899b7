// Finds, imports and checks plugin modules: `plugins[i].module` → its default export, validated, or a ConfigError.
import { createHash } from 'node:crypto';
import { existsSync, readFileSync, realpathSync, statSync } from 'node:fs';
import { createRequire, isBuiltin } from 'node:module';
import { dirname, isAbsolute, join, resolve, sep } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import type { Config } from '../config/schema.js';
import { ConfigError } from '../config/load.js';
import { readRegularFile, UnreadableFile } from '../config/regular-file.js';
import type { Plugin, PluginApi, PluginHooks } from './contract.js';
import { errorClassOf, isThenable, PluginError } from './plugin-error.js';
import { MetricConflictError } from './metrics.js';

/** One declared instance with its module loaded and its config validated. */
export interface LoadedPlugin {
  /** Index in `plugins[]`, for error messages. */
  readonly index: number;
  readonly name: string;
  /** The module as written in the config. */
  readonly module: string;
  /** What identifies the code: the resolved URL plus the file's version (its times and inode: a changed file is new code). */
  readonly moduleKey: string;
  /**
   * The module's definition as the gateway calls it: `create` read once from the default export, and wrapped so
   * that whatever it throws or rejects with (a `then` that throws included) reaches the gateway as a PluginError
   * (the instance's name and the thrown value's class, never its message).
   */
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
 * there first (the deployment's node_modules), then from Portcullis's own location. The file's version (a hash of
 * its content) goes into the URL's query, so a reload after the file changed imports the new code instead of the
 * cached module.
 */
function resolveModule(specifier: string, baseDir: string): { url: string; key: string; file: string | undefined } | 'not found' {
  let file: string | undefined;
  if (isPath(specifier)) {
    file = specifier.startsWith('file:') ? fileURLToPath(specifier) : resolve(baseDir, specifier);
    if (!existsSync(file) || !statSync(file).isFile()) return 'not found';
  } else {
    try {
      file = createRequire(join(baseDir, 'noop.js')).resolve(specifier);
    } catch {
      // ESM-only exports ("import" alone), which require's conditions never match: looked up with import's, from the
      // config's directory and then from Portcullis's own, as import() would. Before, import() alone found such a
      // package from Portcullis's location only ("not found" beside the config), and with no file to stat a reload
      // kept the running instance after the package was upgraded.
      file = resolveImportEntry(specifier, baseDir) ?? resolveImportEntry(specifier, OWN_DIR);
    }
  }
  if (file === undefined) return { url: specifier, key: specifier, file };
  // The file a symlink names now: node's resolver keeps the real path it found for a URL for the process's life, so
  // after a symlink swap (a Kubernetes ConfigMap's ..data, a Capistrano `current`) the same path imported the old
  // target, or failed with ENOENT once it was deleted.
  const real = realpathSync(file);
  const href = pathToFileURL(real).href;
  // Read without waiting (a FIFO is refused, not waited on for ever on the event loop) and bounded.
  const hash = createHash('sha256').update(readRegularFile(real, MAX_PLUGIN_FILE_BYTES, 'larger than 64 MiB')).digest('base64url').slice(0, 22);
  const version = versionOf(real, hash);
  return { url: `${href}?v=${version}`, key: `${href}@${version}`, file: real };
}

/** The largest plugin entry file read: a bundle of every dependency fits many times over. */
const MAX_PLUGIN_FILE_BYTES = 64 * 1024 * 1024;

/** Each plugin file's content hash as last seen, and the generation it was given. */
const VERSIONS = new Map<string, { readonly hash: string; readonly generation: number }>();

/**
 * A file's version in the URL imported: its content's hash, so that a `touch`, a `chmod` or a symlink swap to the
 * same bytes imports nothing again (node never unloads a module: each such reload kept another copy of the plugin
 * and its top-level state for good, +15 MB a reload for a plugin holding a table); and a generation that grows with
 * every change, so that content seen before (a rollback) is imported afresh, its top-level code run again, rather
 * than handed back as the module node kept with the state of its first run.
 */
function versionOf(file: string, hash: string): string {
  const last = VERSIONS.get(file);
  if (last !== undefined && last.hash === hash) return `${hash}.${last.generation}`;
  const generation = (last?.generation ?? 0) + 1;
  VERSIONS.set(file, { hash, generation });
  return `${hash}.${generation}`;
}

/** Where this module is (src/plugins, dist/plugins or the bundle's directory): Portcullis's own node_modules are above. */
const OWN_DIR = dirname(fileURLToPath(import.meta.url));

/** require, for its cache (Module._cache, shared by every require of the process). */
const OWN_REQUIRE = createRequire(import.meta.url);

/** The conditions import() resolves a package's "exports" with (node's defaults for ES modules). */
const IMPORT_CONDITIONS: ReadonlySet<string> = new Set(['node', 'import', 'default']);

/** The file a conditional "exports" target names under IMPORT_CONDITIONS ("./x.js"), or undefined. */
function conditionalTarget(target: unknown): string | undefined {
  if (typeof target === 'string') return target.startsWith('./') ? target : undefined;
  if (Array.isArray(target)) {
    for (const each of target) {
      const found = conditionalTarget(each);
      if (found !== undefined) return found;
    }
    return undefined;
  }
  if (target === null || typeof target !== 'object') return undefined;
  for (const [condition, value] of Object.entries(target as Record<string, unknown>)) {
    if (!IMPORT_CONDITIONS.has(condition)) continue;
    const found = conditionalTarget(value);
    if (found !== undefined) return found;
  }
  return undefined;
}

/**
 * The entry file import() would load for package `specifier` ("pkg", "@scope/pkg", "pkg/sub") from `fromDir`, for a
 * package whose "exports" answer import's conditions only; undefined when there is none, or its subpath is a
 * pattern ("./*"): import() then decides, as before. Node stops at the first directory holding the package.
 */
function resolveImportEntry(specifier: string, fromDir: string): string | undefined {
  const parts = specifier.split('/');
  const nameLength = specifier.startsWith('@') ? 2 : 1;
  if (parts.length < nameLength || parts.slice(0, nameLength).some((part) => part === '' || part === '.' || part === '..')) return undefined;
  const name = parts.slice(0, nameLength).join('/');
  const subpath = parts.length === nameLength ? '.' : `./${parts.slice(nameLength).join('/')}`;
  let dirs: string[] | null;
  try {
    dirs = createRequire(join(fromDir, 'noop.js')).resolve.paths(specifier);
  } catch {
    return undefined;
  }
  for (const dir of dirs ?? []) {
    const packageDir = join(dir, name);
    const manifest = join(packageDir, 'package.json');
    if (!existsSync(manifest)) continue;
    try {
      const exports = (JSON.parse(readFileSync(manifest, 'utf8')) as { exports?: unknown } | null)?.exports;
      if (exports === undefined) return undefined; // no "exports": require's lookup already answered for it
      const sugar = typeof exports === 'string' || Array.isArray(exports) || (exports !== null && typeof exports === 'object' && !Object.keys(exports).some((key) => key.startsWith('.')));
      const target = sugar ? (subpath === '.' ? conditionalTarget(exports) : undefined) : conditionalTarget((exports as Record<string, unknown> | null)?.[subpath]);
      if (target === undefined) return undefined;
      const file = resolve(packageDir, target);
      // Inside the package only ("./../x" is no export of it), and a file.
      return file.startsWith(packageDir + sep) && existsSync(file) && statSync(file).isFile() ? file : undefined;
    } catch {
      return undefined; // an unreadable package.json: import() reports it
    }
  }
  return undefined;
}

/**
 * The `"type"` of the package `file` belongs to (its nearest package.json), as node decides a .js or .ts file's
 * module system; undefined when there is none or it cannot be read (node then runs the file as CommonJS).
 */
function packageTypeOf(file: string): unknown {
  for (let dir = dirname(file); ; dir = dirname(dir)) {
    const manifest = join(dir, 'package.json');
    if (existsSync(manifest)) {
      try {
        return (JSON.parse(readFileSync(manifest, 'utf8')) as { type?: unknown } | null)?.type;
      } catch {
        return undefined;
      }
    }
    if (dirname(dir) === dir) return undefined;
  }
}

/**
 * Why a `.ts` file cannot be a plugin, or undefined. Outside a `"type": "module"` package node runs a .ts file as
 * CommonJS (tsx follows node's rule), which has no `export default`: the import failed with a bare SyntaxError (or,
 * under `node --import tsx`, handed over `{ default: plugin }`). .mts is an ES module wherever it is.
 */
function commonJsTypeScript(file: string | undefined): string | undefined {
  if (file === undefined || !file.endsWith('.ts') || file.endsWith('.d.ts') || packageTypeOf(file) === 'module') return undefined;
  return 'a .ts file outside a package with "type": "module" is CommonJS to node, and a plugin is an ES module: rename it .mts, or add "type": "module" to its package.json';
}

/**
 * Why an import failed, in a few words: "not found", "SyntaxError", "TypeScript needs compiling"... Never the
 * error's message, which may quote the file, or be the plugin's own words: a module's top-level code may throw
 * anything. Its class, and a code only when it has the shape of node's own (NODE_CODE), which says what went wrong.
 */
function importFailure(err: unknown, specifier: string): string {
  let code: unknown;
  let message = '';
  try {
    code = (err as { code?: unknown }).code;
    message = String((err as Error).message);
  } catch {
    return errorClassOf(err);
  }
  if ((code === 'ERR_MODULE_NOT_FOUND' || code === 'MODULE_NOT_FOUND') && message.includes(`'${specifier}'`)) return 'not found';
  if (code === 'ERR_UNKNOWN_FILE_EXTENSION' && /\.[cm]?ts$/.test(specifier)) return 'TypeScript needs compiling first (see README, "Writing a plugin")';
  // tsx's (esbuild's) refusal of TypeScript it cannot compile: a plain Error named TransformError, which read as
  // "Error", the words of a module whose own top-level code threw. Its message quotes the file: not repeated.
  if (errorName(err) === 'TransformError') return 'TypeScript syntax error (TransformError: run tsc on the file for the line)';
  const errorClass = errorClassOf(err);
  return typeof code === 'string' && NODE_CODE.test(code) ? `${errorClass}(${code})` : errorClass;
}

/** An error's own `name`, or undefined (a getter that throws, a value that is no object). */
function errorName(err: unknown): string | undefined {
  try {
    const name = (err as { name?: unknown } | null)?.name;
    return typeof name === 'string' ? name : undefined;
  } catch {
    return undefined;
  }
}

/**
 * The shape of node's error codes (ERR_MODULE_NOT_FOUND, ERR_REQUIRE_ESM...), CommonJS's MODULE_NOT_FOUND and the
 * system's (EACCES, EISDIR...). A code of another shape is not repeated: it can only be a module's own.
 */
const NODE_CODE = /^(ERR_[A-Z0-9_]{1,60}|MODULE_NOT_FOUND|E[A-Z]{2,15})$/;

let tsxRegistered = false;

/**
 * import(), and for a TypeScript file that node cannot run: tsx registered on demand, then import() again. In a
 * checkout tsx is there (a dev dependency), even when the gateway itself runs from dist/; in an image built with
 * `npm ci --omit=dev` it is not, and the plugin must be shipped compiled.
 */
async function importModule(url: string): Promise<{ default?: unknown }> {
  const typescript = /\.[cm]?ts(\?|$)/.test(url);
  // Straight to the URL tsx loaded once tsx is registered: node keeps the failed first import of the plain URL, so a
  // second gateway in the same process (portcullis/testing, an embedding) loading the same file was refused with
  // "TypeScript needs compiling first".
  if (typescript && tsxRegistered) return (await import(viaTsx(url))) as { default?: unknown };
  try {
    return (await import(url)) as { default?: unknown };
  } catch (err) {
    if (!typescript || tsxRegistered || (err as { code?: unknown }).code !== 'ERR_UNKNOWN_FILE_EXTENSION') throw err;
    try {
      const api = (await import('tsx/esm/api')) as { register: () => unknown };
      api.register();
      tsxRegistered = true;
    } catch {
      throw err; // no tsx here: report the original failure
    }
    return (await import(viaTsx(url))) as { default?: unknown };
  }
}

/** A new URL for a file whose plain URL failed to import: node remembers that failure. */
function viaTsx(url: string): string {
  return `${url}${url.includes('?') ? '&' : '?'}tsx`;
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
 * A plugin module whose import did not finish in time: a config error, but one a later start may not meet (the
 * module's top level reached out to something slow, or the machine was busy starting every worker at once), so a
 * cluster's primary restarts the worker, as for a failed create() (plugins/host.ts PluginCreateFailed).
 */
export class PluginImportTimedOut extends ConfigError {}

/**
 * Imports and checks one declared instance. Throws ConfigError naming `plugins[i].<key>`. The import is bounded by
 * `timeoutMs` (middleware.plugin_load_timeout).
 */
export async function loadPlugin(entry: Config['plugins'][number], index: number, baseDir: string, timeoutMs: number): Promise<LoadedPlugin> {
  const at = `plugins[${index}]`;
  const cannotLoad = (why: string) => new ConfigError(`${at}.module: cannot load ${entry.module}: ${why}`);
  if (isBuiltin(entry.module)) throw new ConfigError(`${at}.module: ${entry.module} is a Node built-in module, not a plugin`);
  let resolved: ReturnType<typeof resolveModule>;
  try {
    resolved = resolveModule(entry.module, baseDir);
  } catch (err) {
    if (err instanceof UnreadableFile) throw cannotLoad(err.why); // a FIFO, a file too large, unreadable
    throw cannotLoad(importFailure(err, entry.module)); // a file: URL node refuses, a file that cannot be stat'ed
  }
  if (resolved === 'not found') throw cannotLoad('not found');
  const commonJs = commonJsTypeScript(resolved.file);
  if (commonJs !== undefined) throw cannotLoad(commonJs);
  // A CommonJS file is imported through require's cache, keyed by its file name without the URL's version: a
  // reload re-created the instance of a changed .cjs file (or CommonJS package) from the old code. Dropped first,
  // so a new version is read again; an unchanged URL is still node's cached module, never re-run.
  if (resolved.file !== undefined) delete OWN_REQUIRE.cache[resolved.file];
  let namespace: { default?: unknown };
  try {
    namespace = await importWithin(resolved.url, timeoutMs);
  } catch (err) {
    if (err === IMPORT_TIMEOUT) throw new PluginImportTimedOut(`${at}.module: cannot load ${entry.module}: import did not finish within ${timeoutMs} ms (middleware.plugin_load_timeout)`);
    throw cannotLoad(importFailure(err, entry.module));
  }
  // The default export is the plugin's own object: a getter or a Proxy may throw, and what it throws is reported
  // by class only. Each property is read once, so a getter cannot answer one thing now and another at create().
  let definition: unknown;
  let create: unknown;
  let validate: unknown;
  let name: unknown;
  try {
    definition = namespace.default;
    if (definition === null || typeof definition !== 'object') throw new ConfigError(`${at}.module: ${entry.module} has no default export object`);
    ({ create, validate, name } = definition as Partial<Record<'create' | 'validate' | 'name', unknown>>);
  } catch (err) {
    if (err instanceof ConfigError) throw err;
    throw new ConfigError(`${at}.module: ${entry.module}: reading its default export threw ${errorClassOf(err)}`);
  }
  if (typeof create !== 'function') throw new ConfigError(`${at}.module: ${entry.module} has no create() in its default export`);
  if (validate !== undefined && typeof validate !== 'function') {
    throw new ConfigError(`${at}.module: ${entry.module}: validate is not a function`);
  }
  const config = entry.config ?? {};
  if (validate !== undefined) {
    let result: unknown;
    try {
      result = (validate as (config: unknown) => unknown).call(definition, config);
    } catch (err) {
      // validate()'s message is the config error (README): the plugin's author writes it for the operator.
      throw new ConfigError(`${at}.config: ${oneLine(validationMessage(err)) || 'invalid'}`);
    }
    // An async validate() would have its verdict ignored (a config it refuses would run) and its rejection left
    // unhandled: refused, with what to do instead. Its settling is awaited by nobody, so a rejection is swallowed here.
    let thenable: boolean;
    try {
      thenable = isThenable(result);
    } catch {
      thenable = true; // a `then` getter that throws: a broken thenable, still no synchronous verdict
    }
    if (thenable) {
      Promise.resolve(result).catch(() => undefined);
      throw new ConfigError(`${at}.module: ${entry.module}: validate() returned a promise; it must check synchronously (asynchronous checks belong in create())`);
    }
  }
  const guarded: Plugin = {
    name: typeof name === 'string' ? name : entry.name,
    create: guardCreate(entry.name, definition, create as Plugin['create']),
  };
  return { index, name: entry.name, module: entry.module, moduleKey: resolved.key, definition: guarded, config };
}

/** A validate() failure's message: an Error's, or the thrown string; anything else says nothing. */
function validationMessage(err: unknown): string {
  try {
    if (err instanceof Error) return String(err.message);
    return typeof err === 'string' ? err : '';
  } catch {
    return '';
  }
}

/** The hooks create() may return: read once here, so a getter that throws is create()'s failure. */
const HOOKS = ['onRequest', 'onUpstreamRequest', 'onResponse', 'onLog', 'close'] as const;

/**
 * What a create() that threw is reported as: its class alone (PluginError), except api.metrics' own
 * MetricConflictError, whose text is the gateway's and says what to do: a reload's refusal then says a restart is
 * needed, as for any setting a reload cannot change, rather than only naming the class.
 */
function createFailure(instance: string, err: unknown): Error {
  return MetricConflictError.remade(err) ?? new PluginError(instance, 'create', err);
}

/**
 * The plugin's create(), called on its own default export, with every failure shape turned into a PluginError: a
 * throw, a rejection, a returned thenable whose `then` throws, a hook getter that throws. A thenable is adopted as
 * `Promise.resolve` adopts it (its first settlement alone counts). What it returns is otherwise passed on as it is:
 * the host checks it (an object, hooks that are functions) and bounds it in time.
 */
function guardCreate(instance: string, definition: unknown, create: Plugin['create']): Plugin['create'] {
  const checked = (hooks: unknown): PluginHooks => {
    if (hooks !== null && typeof hooks === 'object') {
      try {
        for (const hook of HOOKS) void (hooks as Record<string, unknown>)[hook];
      } catch (err) {
        throw new PluginError(instance, 'create', err);
      }
    }
    return hooks as PluginHooks;
  };
  return (config: unknown, api: PluginApi) => {
    let result: unknown;
    let thenable: boolean;
    try {
      result = create.call(definition, config, api);
      thenable = isThenable(result);
      if (thenable) result = Promise.resolve(result);
    } catch (err) {
      throw createFailure(instance, err);
    }
    if (!thenable) return checked(result);
    return (result as Promise<unknown>).then(checked, (err: unknown) => {
      throw createFailure(instance, err);
    });
  };
}

/** Loads every declared instance, in order (check-config, start-up, reload). */
export async function loadPlugins(config: Config, baseDir: string): Promise<LoadedPlugin[]> {
  const loaded: LoadedPlugin[] = [];
  const timeoutMs = config.middleware.plugin_load_timeout;
  for (let i = 0; i < config.plugins.length; i++) loaded.push(await loadPlugin(config.plugins[i]!, i, baseDir, timeoutMs));
  return loaded;
}
