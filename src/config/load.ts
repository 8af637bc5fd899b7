// Turns a config file into a validated Config: .env → YAML (placeholders hidden) → ${VAR} expansion → schema, or a
// one-line ConfigError.
import { availableParallelism } from 'node:os';
import { resolve } from 'node:path';
import { isScalar, parseDocument, visit, type ScalarTag, type Schema } from 'yaml';
import type * as z from 'zod';
import { configSchema, type Config } from './schema.js';
import {
  checkClosedPlaceholders,
  expandVariables,
  ExpansionTooLargeError,
  hidePlaceholders,
  loadDotEnv,
  MissingVariableError,
  NestedPlaceholderError,
  UnclosedPlaceholderError,
  UnsupportedPlaceholderError,
  DotEnvReferenceError,
} from './env.js';
import { checkRoutesAndServices } from './route-checks.js';
import { identityHeaderProblem } from './identity-header-checks.js';
import { listenerProblem } from './listener-checks.js';
import { pluginReferenceProblem } from '../plugins/references.js';
import { ConfigError } from './config-error.js';
import { readRegularFile, UnreadableFile } from './regular-file.js';
import { PARSE_OPTIONS } from '../zod-parse.js';
import { formatReason, rangeReason } from './range-wording.js';
import { logLevelFromEnv } from './log-level.js';

/** The config file used when neither --config nor PORTCULLIS_CONFIG names one. */
export const DEFAULT_CONFIG_PATH = 'config/proxy.yaml';

export { ConfigError };

/** Picks the config path: the explicit flag, else PORTCULLIS_CONFIG, else config/proxy.yaml. */
export function resolveConfigPath(flag: string | undefined, env: NodeJS.ProcessEnv = process.env): string {
  return resolve(flag ?? (env.PORTCULLIS_CONFIG || DEFAULT_CONFIG_PATH));
}

/** Reads, expands and validates a config file. Throws ConfigError naming the file or the key path at fault. */
export function loadConfigFile(path: string, env: NodeJS.ProcessEnv = process.env): Config {
  return parseConfigText(readConfigText(path, env), env, path);
}

/**
 * The largest config file read: about 75,000 routes in flow style, far beyond any real config. The parser takes about
 * a second and 200 MB per MiB and blocks the event loop meanwhile (a reload too): a 40 MB file held a gateway's
 * requests for over a minute and took 1.8 GB before this bound.
 */
export const MAX_CONFIG_BYTES = 4 * 1024 * 1024;

/** The most text ${VAR} placeholders may add to a config, in all (16 MiB). */
const MAX_EXPANSION_CHARS = 16 * 1024 * 1024;

/** The first half of loadConfigFile: `.env` into `env`, then the file's text (ConfigError when it cannot be read). */
export function readConfigText(path: string, env: NodeJS.ProcessEnv = process.env): string {
  const dotEnvProblem = loadDotEnv(resolve('.env'), env);
  if (dotEnvProblem !== undefined) throw new ConfigError(dotEnvProblem);
  const bytes = readConfigBytes(path);
  return decodeUtf8(bytes, path);
}

/** The file's bytes, or a ConfigError `cannot read config file PATH (why)` (regular-file.ts: never a FIFO). */
function readConfigBytes(path: string): Buffer {
  try {
    return readRegularFile(path, MAX_CONFIG_BYTES, 'larger than 4 MiB');
  } catch (err) {
    if (err instanceof UnreadableFile) throw new ConfigError(`cannot read config file ${path} (${err.why})`);
    throw err;
  }
}

const UTF8 = new TextDecoder('utf-8', { fatal: true });

/**
 * The file's text. Bytes that are not UTF-8 (a file saved as Latin-1 or UTF-16) are a config error naming the line:
 * decoded leniently, each became U+FFFD, so `café` in Latin-1 was accepted as a value nobody wrote. A UTF-8 byte
 * order mark is dropped.
 */
function decodeUtf8(bytes: Buffer, path: string): string {
  try {
    return UTF8.decode(bytes);
  } catch {
    let line = 1;
    let start = 0;
    for (;;) {
      const end = bytes.indexOf(0x0a, start);
      try {
        UTF8.decode(bytes.subarray(start, end === -1 ? bytes.length : end));
      } catch {
        break;
      }
      if (end === -1) break;
      line++;
      start = end + 1;
    }
    throw new ConfigError(`${path}: not UTF-8 text (line ${line})`);
  }
}

/**
 * Validates config text. ${VAR} placeholders are expanded inside YAML values only (never in comments), in block and
 * flow style alike; an unquoted value takes the type YAML gives that scalar, so `port: ${PORT:-8080}` is a number
 * while `"${X}"` stays a string.
 */
export function parseConfigText(text: string, env: NodeJS.ProcessEnv = process.env, origin = 'config'): Config {
  // Placeholders are hidden while YAML reads the text (`{` in `${` is a flow indicator) and put back in each scalar.
  const placeholders = hidePlaceholders(text);
  // resolveKnownTags off: !!binary, !!set, !!omap, !!timestamp would be a Buffer, Set, Map or Date, which no key
  // takes (a Buffer's methods were listed as unknown keys); they fail to resolve, as unknown tags do, and are refused.
  const doc = parseDocument(placeholders.text, { prettyErrors: false, resolveKnownTags: false });
  // A tag yaml cannot resolve (`!vault secret/path`, `!!js/function`, `!!binary`) only warns, and the value became the
  // plain string it tags: a secret "secret/path" nobody meant. The core tags (!!str, !!int, !!bool, !!null, !!map,
  // !!seq) resolve and stay allowed.
  const tagWarning = doc.warnings.find((w) => w.code === 'TAG_RESOLVE_FAILED');
  if (doc.errors.length === 0 && tagWarning !== undefined) {
    const line = placeholders.text.slice(0, tagWarning.pos[0]).split('\n').length;
    // A core tag on a placeholder (`!!int ${PORT}`) fails because yaml reads the placeholder's stand-in, not its value:
    // said as such, with what to write instead, rather than as an unsupported tag.
    if (/!![a-z]+\s+["']?\$\{/.test(text.split('\n')[line - 1] ?? '')) {
      throw new ConfigError(`${origin}: invalid YAML at line ${line} (a tag on a placeholder: write the placeholder without it; unquoted it takes its value's type, quoted it is a string)`);
    }
    throw new ConfigError(`${origin}: invalid YAML at line ${line} (a tag: tags such as !!binary or !custom are not supported, write the plain value)`);
  }
  // A %YAML 1.1 directive makes yaml read the document as YAML 1.1: merge keys (`<<`) applied and yes/no/on/off read
  // as booleans, which the README refuses (`enabled: no` is a string in YAML 1.2, and a config error). All three
  // readers loaded such a file alike, merge keys and all; it is refused instead.
  if (doc.errors.length === 0 && doc.directives?.yaml.explicit === true && doc.directives.yaml.version !== '1.2') {
    const line = placeholders.text.split('\n').findIndex((text) => text.startsWith('%YAML')) + 1;
    throw new ConfigError(`${origin}: invalid YAML at line ${line} (a %YAML ${doc.directives.yaml.version} directive: the file is read as YAML 1.2, remove the directive)`);
  }
  if (doc.errors.length > 0) {
    // The line, counted from the error's offset: prettyErrors (off, since its message quotes the source, which may
    // hold a secret) is what would fill linePos. Tokens hold no line break, so lines are the file's.
    const error = doc.errors[0]!;
    const line = placeholders.text.slice(0, error.pos[0]).split('\n').length;
    const what = YAML_ERROR_WORDS[error.code];
    throw new ConfigError(`${origin}: invalid YAML at line ${line}${what === undefined ? '' : ` (${what})`}`);
  }
  // Keys a placeholder made, by what they expanded to: errors name them as written (the value may be a secret).
  const keySources = new Map<string, string>();
  // What placeholders may add in all: the same variable many times over (6,000 × a 100 kB value) was a RangeError
  // past V8's longest string, and spread over several values as much memory as there is (a reload took the gateway
  // down). Four times the largest file, room for every value of a real config to be a certificate.
  const budget = { left: MAX_EXPANSION_CHARS };
  try {
    visit(doc, {
      Scalar(key, node) {
        if (typeof node.value !== 'string') return;
        const source = node.range === undefined || node.range === null ? '' : placeholders.text.slice(node.range[0], node.range[1]);
        const value = placeholders.restore(node.value, source);
        if (!value.includes('${')) return;
        checkClosedPlaceholders(value);
        const expanded = expandVariables(value, env, budget);
        node.value = node.type === 'PLAIN' && expanded !== '' ? plainScalarValue(expanded, doc.schema) : expanded;
        if (key === 'key') keySources.set(String(node.value), value);
      },
    });
  } catch (err) {
    const placeholderErrors = [
      MissingVariableError,
      ExpansionTooLargeError,
      NestedPlaceholderError,
      UnclosedPlaceholderError,
      UnsupportedPlaceholderError,
    ];
    if (placeholderErrors.some((type) => err instanceof type)) throw new ConfigError(`${origin}: ${(err as Error).message}`);
    // It names the .env file and line at fault, not the config.
    if (err instanceof DotEnvReferenceError) throw new ConfigError(err.message);
    throw err;
  }
  if (keySources.size > 0) refuseMadeDuplicateKeys(doc, keySources, placeholders.text, origin);
  return withLogLevelFromEnv(parseConfigObject(documentValue(doc, origin) ?? {}, keySources), env);
}

/**
 * A key a placeholder made that another key of its mapping already is (`proxy_by: a` and `${K}: b` with K=proxy_by):
 * the later one silently won, where a key written twice is refused (yaml's DUPLICATE_KEY, read before expansion).
 * Named as written, never as what it expanded to.
 */
function refuseMadeDuplicateKeys(doc: ReturnType<typeof parseDocument>, keySources: ReadonlyMap<string, string>, text: string, origin: string): void {
  visit(doc, {
    Map(_, map) {
      const seen = new Set<string>();
      for (const pair of map.items) {
        if (!isScalar(pair.key)) continue;
        const name = String(pair.key.value);
        if (seen.has(name)) {
          const at = pair.key.range?.[0];
          const line = at === undefined ? undefined : text.slice(0, at).split('\n').length;
          const written = keySources.get(name) ?? name;
          throw new ConfigError(`${origin}: invalid YAML${line === undefined ? '' : ` at line ${line}`} (a key given twice in one mapping: ${written} names a key already given)`);
        }
        seen.add(name);
      }
    },
  });
}

/**
 * `logging.level` as the gateway uses it: LOG_LEVEL when it names a level (it wins, as the README says), else the
 * file's. Start-up's logger applied LOG_LEVEL by itself, but a reload took the file's level: one that changed
 * `logging.level` put it over LOG_LEVEL, and a LOG_LEVEL changed in .env (read by every reload) was never applied.
 * An unknown LOG_LEVEL is ignored, as at start-up.
 */
function withLogLevelFromEnv(config: Config, env: NodeJS.ProcessEnv): Config {
  const fromEnv = logLevelFromEnv(env.LOG_LEVEL);
  return fromEnv === undefined ? config : { ...config, logging: { ...config.logging, level: fromEnv } };
}

/**
 * The common YAML mistakes in words of ours, by yaml's error code (its messages may quote the source, which may hold
 * a secret). A duplicate key or a second document was only "invalid YAML at line N".
 */
const YAML_ERROR_WORDS: Readonly<Partial<Record<string, string>>> = {
  DUPLICATE_KEY: 'a key given twice in one mapping',
  MULTIPLE_DOCS: 'more than one document: a second ---',
  TAB_AS_INDENT: 'a tab used as indentation',
  MISSING_CHAR: 'a quote or bracket never closed',
  BAD_DQ_ESCAPE: 'an escape a double-quoted string does not have: use single quotes for backslashes',
  BLOCK_AS_IMPLICIT_KEY: 'a "key: value" inside a value: quote the value',
  KEY_OVER_1024_CHARS: 'a key longer than 1024 characters',
};

/** yaml's own bound on alias expansion (its default, named here so the message can say it). */
const MAX_ALIAS_COUNT = 100;

/**
 * The document as plain data, or a ConfigError naming the file. yaml refuses an alias bomb (anchors whose aliases
 * nest, each level multiplying the one below: maxAliasCount) and an alias to no anchor with a ReferenceError; as that,
 * check-config printed `ReferenceError: …` and a reload was logged "reload failed" rather than rejected with its
 * reason. An alias inside the node it names (`&a {k: *a}`) makes a cycle: only a plugin's free-form `config` could
 * carry it past the schema, and there it was a TypeError from JSON.stringify at start-up (and in check-config).
 */
function documentValue(doc: ReturnType<typeof parseDocument>, origin: string): unknown {
  let value: unknown;
  try {
    value = doc.toJS({ maxAliasCount: MAX_ALIAS_COUNT });
  } catch (err) {
    if (!(err instanceof ReferenceError)) throw err;
    if (/excessive alias count/i.test(err.message)) {
      throw new ConfigError(`${origin}: YAML aliases expand too far (more than yaml's limit of ${MAX_ALIAS_COUNT})`);
    }
    const unresolved = /^Unresolved alias[^:]*: (.+)$/.exec(err.message);
    if (unresolved !== null) throw new ConfigError(`${origin}: the YAML alias *${unresolved[1]} names no anchor set before it`);
    throw err;
  }
  if (hasCycle(value, new Set())) throw new ConfigError(`${origin}: a YAML alias refers to a node that contains it (a cycle)`);
  return value;
}

/** True when `value` holds itself, at any depth (an alias inside its own anchor's node). */
function hasCycle(value: unknown, path: Set<object>): boolean {
  if (value === null || typeof value !== 'object') return false;
  if (path.has(value)) return true;
  path.add(value);
  const children = value instanceof Map ? [...value.keys(), ...value.values()] : Object.values(value);
  const found = children.some((child) => hasCycle(child, path));
  path.delete(value);
  return found;
}

/**
 * What an unquoted scalar written as `text` would be: a number, true/false or null when the schema's tags say so,
 * else the string without surrounding blanks. Never the text parsed as YAML: a variable's value cannot bring a
 * mapping, a list, a comment, an anchor or a tag into the config (`a: b` stays that string). Surrounding blanks are
 * not part of a plain scalar: ` 8080` is a number, and a secret read from a file with its final newline
 * (`jwt.secret: ${JWT_SECRET}`) is the secret without it, as before placeholders were hidden from the parser.
 */
function plainScalarValue(text: string, schema: Schema): unknown {
  const trimmed = text.trim();
  // The first default tag whose pattern matches, as the parser picks one; none (or a failed resolve): a string.
  const tag = schema.tags.find((t): t is ScalarTag => t.collection === undefined && t.default === true && t.test?.test(trimmed) === true);
  if (tag === undefined) return trimmed;
  let failed = false;
  const value = tag.resolve(trimmed, () => (failed = true), {});
  if (failed) return trimmed;
  return isScalar(value) ? value.value : value;
}

/**
 * Validates a config object (the file's shape, as embedding passes it) with the same schema and rules. `keySources`:
 * the keys ${VAR} placeholders made, each with its text as written, which errors show in its place.
 */
export function parseConfigObject(input: unknown, keySources: ReadonlyMap<string, string> = new Map()): Config {
  const protoKey = protoKeyPath(input ?? {}, []);
  if (protoKey !== undefined) {
    const issue = { code: 'custom', path: protoKey, message: 'not a usable key (a JavaScript object cannot hold it)', input: undefined };
    throw new ConfigError(formatIssue(issue as z.core.$ZodIssue, input ?? {}, keySources));
  }
  const result = configSchema.safeParse(input ?? {}, PARSE_OPTIONS);
  if (!result.success) throw new ConfigError(formatIssue(reportedIssue(result.error.issues, input ?? {}), input ?? {}, keySources));
  checkCombinations(result.data);
  return result.data;
}

/**
 * The path of the first `__proto__` key, or undefined. YAML and JSON make it an own key, but zod builds each map (a
 * route's headers, services, rate-limit policies) by assignment, which sets the prototype instead: the entry was
 * dropped without a word.
 */
function protoKeyPath(value: unknown, path: PropertyKey[], seen = new Set<object>()): PropertyKey[] | undefined {
  // An embedding's object may hold itself (a YAML cycle is refused before): each object is looked at once.
  if (value === null || typeof value !== 'object' || seen.has(value)) return undefined;
  seen.add(value);
  if (!Array.isArray(value) && Object.prototype.hasOwnProperty.call(value, '__proto__')) return [...path, '__proto__'];
  for (const [key, child] of Object.entries(value)) {
    const found = protoKeyPath(child, [...path, Array.isArray(value) ? Number(key) : key], seen);
    if (found !== undefined) return found;
  }
  return undefined;
}

/**
 * The issue to report: the first, unless it is a key reported absent and the same mapping has an unknown key, which
 * is then the cause. A merge key (`- {<<: *defaults, name: a1}`) gave the keys the user sees in the anchor, yet only
 * "address: is required" was said, never that `<<` is not supported; a misspelt `adress:` likewise hid behind
 * "address: is required".
 */
function reportedIssue(issues: readonly z.core.$ZodIssue[], input: unknown): z.core.$ZodIssue {
  const first = unlessSafeIntegerBound(issues);
  if (first.code !== 'invalid_type' || first.path.length === 0 || hasKey(input, first.path)) return first;
  const mapping = first.path.slice(0, -1);
  const unknown = issues.find(
    (issue) => issue.code === 'unrecognized_keys' && issue.path.length === mapping.length && issue.path.every((p, i) => p === mapping[i]),
  );
  return unknown ?? first;
}

/**
 * The first issue, unless it is zod's own safe-integer bound (`.int()` checks it before the key's own `.min`/`.max`):
 * a port of 1e23 was told "must be at most 9007199254740991" where 70000 is told "must be between 0 and 65535". The
 * key's own range issue on the same path is reported then.
 */
function unlessSafeIntegerBound(issues: readonly z.core.$ZodIssue[]): z.core.$ZodIssue {
  const first = issues[0]!;
  const safeBound =
    (first.code === 'too_big' && first.maximum === Number.MAX_SAFE_INTEGER) || (first.code === 'too_small' && first.minimum === Number.MIN_SAFE_INTEGER);
  if (!safeBound) return first;
  const samePath = (issue: z.core.$ZodIssue) => issue.path.length === first.path.length && issue.path.every((p, i) => p === first.path[i]);
  return issues.find((issue) => issue !== first && issue.code === first.code && samePath(issue)) ?? first;
}

/** Number of worker processes the config asks for ("auto": one per core). */
export function workerCount(config: Config): number {
  const w = config.server.workers;
  return w === 'auto' ? availableParallelism() : w;
}

/**
 * Rules across keys. With several workers, buckets and revocations must be shared: the in-process memory store
 * would give each worker its own limit, so that combination is refused rather than silently multiplying the limit.
 */
function checkCombinations(config: Config): void {
  const routeProblem = identityHeaderProblem(config) ?? checkRoutesAndServices(config);
  if (routeProblem !== undefined) throw new ConfigError(routeProblem);
  const listeners = listenerProblem(config);
  if (listeners !== undefined) throw new ConfigError(listeners);
  // A named policy limits its routes whatever rate_limit.enabled says (ratelimit/phase.ts): it needs shared buckets too.
  const namesPolicy = config.routes.some((route) => route.rate_limit !== 'default' && route.rate_limit !== 'off');
  const needsSharedState = config.middleware.rate_limit.enabled || config.middleware.auth.enabled || namesPolicy;
  const redis = config.redis;
  const sharedStore = redis.url !== '' || redis.cluster.length > 0 || redis.sentinel.nodes.length > 0;
  if (workerCount(config) > 1 && !sharedStore && needsSharedState) {
    throw new ConfigError('server.workers: more than one worker needs redis.url, redis.cluster or redis.sentinel (the memory store is per process)');
  }
  const plugins = pluginReferenceProblem(config);
  if (plugins !== undefined) throw new ConfigError(plugins);
}

/**
 * "key.path: reason" for the first schema problem; unknown keys are named with their full path. Never the value the
 * file gave: it may be a secret (a token or URL written where a list was expected).
 */
function formatIssue(issue: z.core.$ZodIssue, input: unknown, keySources: ReadonlyMap<string, string>): string {
  // A key a placeholder made is shown as written: `token ${ADMIN_TOKEN}` (a missing colon) is one key, and its value
  // is the token itself.
  const written = (key: PropertyKey): string => (typeof key === 'string' ? (keySources.get(key) ?? key) : String(key));
  // routes[2].service: array indexes in brackets, as users count entries in their file.
  const path = issue.path.map((p, i) => (typeof p === 'number' ? `[${p}]` : i === 0 ? written(p) : `.${written(p)}`)).join('');
  if (issue.code === 'unrecognized_keys') {
    // YAML 1.2 has no merge key: `<<: *defaults` was read as a key named "<<" ("<<: unknown key").
    if (issue.keys.includes('<<')) {
      return `${path ? `${path}.` : ''}<<: merge keys (YAML 1.1) are not supported: write the keys out, or alias a whole mapping`;
    }
    const keys = issue.keys.map((key) => (path ? `${path}.${written(key)}` : written(key)));
    return `${keys.join(', ')}: unknown key`;
  }
  if (issue.code === 'invalid_type' || issue.code === 'invalid_union') {
    // YAML's .inf, .nan and a literal past double range (1e309) are numbers zod refuses as "not a number": said so,
    // "must be a number" was wrong (and "a number or a string" for a duration).
    const given = valueAt(input, issue.path);
    if (typeof given === 'number' && !Number.isFinite(given)) return `${path || 'the file'}: must be a finite number (not .inf, .nan or beyond about 1.8e308)`;
    // zod v4 leaves issue.input unset (reportInput is off, and stays off: it would copy the value into the issue),
    // so whether the key is there is read from the input itself. Only an absent key "is required".
    if (!hasKey(input, issue.path)) return `${path}: is required`;
    const expected = expectedOf(issue);
    if (expected !== undefined) return `${path || 'the file'}: must be ${expected}`;
  }
  if (issue.code === 'too_small' || issue.code === 'too_big') {
    const reason = rangeReason(issue);
    if (reason !== undefined) return `${path || 'the file'}: ${reason}`;
  }
  if (issue.code === 'invalid_format' || issue.code === 'not_multiple_of') {
    const reason = formatReason(issue);
    if (reason !== undefined) return `${path || 'the file'}: ${reason}`;
  }
  if (issue.code === 'invalid_key') {
    // A record's key (a service or policy name) that its key schema refused: the key is in the path already, and the
    // key schema's own issue says why ("Invalid key in record" said nothing).
    const inner = issue.issues[0];
    if (inner !== undefined) return formatIssue({ ...inner, path: issue.path } as z.core.$ZodIssue, input, keySources);
    return `${path}: is not a valid name`;
  }
  if (issue.code === 'invalid_value' && 'values' in issue) {
    return `${path}: must be one of ${issue.values.map((v) => JSON.stringify(v)).join(', ')}`;
  }
  return `${path || '(root)'}: ${issue.message}`;
}

/** The value at `path` in `input`, or undefined. */
function valueAt(input: unknown, path: readonly PropertyKey[]): unknown {
  let node = input;
  for (const key of path) {
    if (node === null || typeof node !== 'object' || !Object.hasOwn(node, key)) return undefined;
    node = (node as Record<PropertyKey, unknown>)[key];
  }
  return node;
}

/** True when `path` leads to a key present in `input` (its value may be anything but undefined). */
function hasKey(input: unknown, path: readonly PropertyKey[]): boolean {
  return valueAt(input, path) !== undefined;
}

/** How each zod type is named to someone writing YAML. */
const TYPE_NAMES: Readonly<Record<string, string>> = {
  number: 'a number',
  int: 'an integer',
  string: 'a string',
  boolean: 'true or false',
  array: 'a list',
  object: 'a mapping (key: value)',
  record: 'a mapping (key: value)',
};

/**
 * What the key should have been: its type ("a number"), or for a union each branch's ("a number or \"auto\"").
 * Undefined when a branch failed deeper than its root (then zod's own message is the better guide).
 */
function expectedOf(issue: z.core.$ZodIssue): string | undefined {
  if (issue.code === 'invalid_type') return TYPE_NAMES[issue.expected] ?? `of type ${issue.expected}`;
  if (issue.code === 'invalid_value') return issue.values.map((v) => JSON.stringify(v)).join(' or ');
  if (issue.code !== 'invalid_union') return undefined;
  const names: string[] = [];
  for (const branch of issue.errors) {
    const root = branch.length === 1 && branch[0]!.path.length === 0 ? branch[0]! : undefined;
    const name = root === undefined ? undefined : expectedOf(root);
    if (name === undefined) return undefined;
    if (!names.includes(name)) names.push(name);
  }
  return names.length === 0 ? undefined : names.join(' or ');
}

/** Directory for embedded state (SQLite file, generated secret): PORTCULLIS_DATA_DIR or ./data. */
export function resolveDataDir(env: NodeJS.ProcessEnv = process.env): string {
  return resolve(env.PORTCULLIS_DATA_DIR || 'data');
}

