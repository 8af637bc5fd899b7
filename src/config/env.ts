// Reads a .env file into process.env (never over the real environment; again on each reload), expands ${VAR} /
// ${VAR:-default} in config values, and hides placeholders from the YAML parser while it reads the text.
import { lstatSync } from 'node:fs';
import { basename } from 'node:path';
import { readRegularFile, UnreadableFile } from './regular-file.js';

const ENV_LINE = /^\s*(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)\s*=\s*(.*?)\s*$/;
/**
 * `${VAR}` or `${VAR:-default}`; with a second `$` in front (`$${VAR}`), the escape that stands for the literal text.
 * Docker compose's other forms (`${VAR:?message}`, `${VAR?message}`, `${VAR-default}`, `${VAR:+alt}`, `${VAR+alt}`,
 * and the shell's `=`) are matched too, only to be refused (UnsupportedPlaceholderError): left alone, such a value was
 * its literal text, so `token: ${ADMIN_TOKEN:?required}` with ADMIN_TOKEN unset gave the admin API (and
 * `jwt.secret` the token signer) a secret anyone reading the config knows, the very case the `:?` was written for.
 */
const PLACEHOLDER = /\$(\$)?\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?+=])([^}]*))?\}/g;

/**
 * What each .env file last put in an environment, by environment then file: only those variables may a later read
 * change or unset. Without this record a value read once would count as the real environment's from then on, and a
 * reload would keep it whatever the file says now.
 */
const fromDotEnv = new WeakMap<NodeJS.ProcessEnv, Map<string, Map<string, string>>>();

/** The largest `.env` read, as for the config file. */
const MAX_DOTENV_BYTES = 4 * 1024 * 1024;

/**
 * Loads KEY=VALUE lines from `file` when it exists; variables already set in the environment win. Read again (a
 * reload), the file is what it says now: a variable it set takes its new value, and is unset when its line is gone
 * (or the file is), unless something else has changed it since.
 * Returns why a file that is there cannot be read (`cannot read .env (EACCES)`), changing nothing then: the config
 * loader makes that a config error. It used to be taken silently for a file without variables (at start-up every
 * `${VAR:-default}` took its default), and a FIFO was waited on for ever.
 */
export function loadDotEnv(file: string, env: NodeJS.ProcessEnv = process.env): string | undefined {
  const read = readDotEnv(file);
  if (typeof read === 'string') return `cannot read ${basename(file)} (${read})`;
  const { pairs: lines, references } = read;
  const files = fromDotEnv.get(env) ?? new Map<string, Map<string, string>>();
  const before = files.get(file) ?? new Map<string, string>();
  // docker compose expands ${VAR} in a .env value (not in a single-quoted one); this reader does not, so such a value
  // was its literal text: `ADMIN_TOKEN=${CI_ADMIN_TOKEN}` gave the admin API the token "${CI_ADMIN_TOKEN}", known to
  // anyone who reads the file. Such a line, when it applies (the real environment does not set its key), is refused
  // where its value is used: by a config placeholder naming it (expandVariables), or here for the variables the
  // gateway reads itself. Not for every line: the file is docker compose's too, and a line for another service
  // (`POSTGRES_URL=postgres://app:${DB_PASSWORD}@db/app`) that nothing here reads stopped start-up for nothing.
  const unexpanded = new Map<string, UnexpandedLine>();
  for (const [key, ref] of references) {
    if (env[key] !== undefined && env[key] !== before.get(key)) continue;
    const message =
      `${basename(file)} line ${ref.line}: the value of ${key} refers to \${${ref.variable}}, which a .env value does not expand: ` +
      `set ${key} in the environment, or single-quote the value to mean the text as written`;
    if (GATEWAY_READS.has(key)) return message;
    unexpanded.set(key, { value: ref.value, message });
  }
  UNEXPANDED.set(env, unexpanded);
  fromDotEnv.set(env, files);
  const now = new Map<string, string>();
  // A key given twice: its last line wins, as in a shell, docker compose and dotenv (replacing a value by appending a
  // line did nothing while the first line won).
  for (const [key, value] of new Map(lines)) {
    if (env[key] === undefined || env[key] === before.get(key)) {
      env[key] = value;
      now.set(key, value);
    }
  }
  for (const [key, value] of before) if (!now.has(key) && env[key] === value) delete env[key];
  files.set(file, now);
  return undefined;
}

/**
 * The state of `env` as .env reads have left it: the function returned puts it back, the variables a later read set,
 * changed or unset and what loadDotEnv remembers of them alike. For a reload that is refused: its .env's values
 * stayed in process.env, where the plugins, a later `${VAR}` and the next reload's own .env read saw a config that
 * was never applied (and, had only the variables been put back, that read would have taken them for the real
 * environment's and left them alone).
 */
export function dotEnvCheckpoint(env: NodeJS.ProcessEnv = process.env): () => void {
  const values: Readonly<Record<string, string | undefined>> = { ...env };
  const files = fromDotEnv.get(env);
  const savedFiles = files === undefined ? undefined : new Map([...files].map(([file, vars]) => [file, new Map(vars)]));
  const savedUnexpanded = UNEXPANDED.get(env);
  return () => {
    // Only what a .env read may have touched since: the variables a file set then or sets now.
    const touched = new Set<string>();
    for (const vars of [...(savedFiles?.values() ?? []), ...(fromDotEnv.get(env)?.values() ?? [])]) {
      for (const name of vars.keys()) touched.add(name);
    }
    for (const name of touched) {
      const value = values[name];
      if (value === undefined) delete env[name];
      else env[name] = value;
    }
    if (savedFiles === undefined) fromDotEnv.delete(env);
    else fromDotEnv.set(env, savedFiles);
    if (savedUnexpanded === undefined) UNEXPANDED.delete(env);
    else UNEXPANDED.set(env, savedUnexpanded);
  };
}

/** The variables the gateway reads from the environment itself (not through a config placeholder). */
const GATEWAY_READS: ReadonlySet<string> = new Set(['PORTCULLIS_CONFIG', 'PORTCULLIS_DATA_DIR', 'LOG_LEVEL']);

/** A .env line in force whose value refers to a variable: its value as set, and the config error for using it. */
interface UnexpandedLine {
  readonly value: string;
  readonly message: string;
}

/** By environment, the .env lines of its last read that refer to a variable (loadDotEnv), by key. */
const UNEXPANDED = new WeakMap<NodeJS.ProcessEnv, ReadonlyMap<string, UnexpandedLine>>();

/**
 * Makes `copy`, a copy of `env`'s variables that a config will be expanded from (cluster-config.ts's snapshot), know
 * the .env lines of `env` that refer to a variable, so a placeholder naming one is refused there too.
 */
export function shareDotEnvLines(env: NodeJS.ProcessEnv, copy: NodeJS.ProcessEnv): void {
  const lines = UNEXPANDED.get(env);
  if (lines !== undefined) UNEXPANDED.set(copy, lines);
}

/** A config placeholder names a variable whose .env line refers to another, which a .env value does not expand. */
export class DotEnvReferenceError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'DotEnvReferenceError';
  }
}

/** A `${NAME` in a .env value that docker compose would expand (unquoted or double-quoted). */
const DOTENV_REFERENCE = /\$\{([A-Za-z_][A-Za-z0-9_]*)/;

/** What a .env file holds: its pairs in order, and the keys whose last line refers to a variable (line from 1). */
interface DotEnvLines {
  readonly pairs: Array<[string, string]>;
  readonly references: Map<string, { readonly line: number; readonly variable: string; readonly value: string }>;
}

/** The file's KEY=VALUE pairs in order (none when there is no file), or why a file that is there cannot be read. */
function readDotEnv(file: string): DotEnvLines | string {
  let text: string;
  try {
    text = readRegularFile(file, MAX_DOTENV_BYTES, 'larger than 4 MiB').toString('utf8');
  } catch (err) {
    if (!(err instanceof UnreadableFile)) throw err;
    if (err.why !== 'ENOENT') return err.why;
    // No .env: no variables. A symlink whose target is missing (a secret mount not there yet) is not "no file".
    return isSymlink(file) ? 'ENOENT: a symlink to nothing' : { pairs: [], references: new Map() };
  }
  const pairs: Array<[string, string]> = [];
  const references: DotEnvLines['references'] = new Map();
  const lines = text.split(/\r?\n/);
  for (let index = 0; index < lines.length; index++) {
    const line = lines[index]!;
    if (line.trimStart().startsWith('#')) continue;
    const match = ENV_LINE.exec(line);
    if (!match) continue;
    const key = match[1]!;
    const first = index;
    let raw = match[2]!;
    if (isQuoted(raw) && unescapedQuoteAt(raw, raw[0]!, 1) === -1) {
      // A quote with no unescaped match on its line goes on to the first line that has one, as docker compose reads
      // it (a PEM pasted as it is); what follows that quote on its line is dropped. One never closed is an error, as
      // in compose: taken as written, the quote became part of a secret. A line that holds its closing quote stays
      // one line, whatever follows the quote (`"abc"#note`).
      const quote = raw[0]!;
      let closed = false;
      while (!closed && index + 1 < lines.length) {
        const next = lines[++index]!;
        const at = unescapedQuoteAt(next, quote, 0);
        closed = at !== -1;
        raw += `\n${closed ? next.slice(0, at + 1) : next}`;
      }
      if (!closed) return `line ${first + 1}: the quote opening ${key}'s value is never closed`;
    }
    const value = dotEnvValue(raw);
    pairs.push([key, value]);
    // A `$${` is compose's escape of a literal `${`; a single-quoted value is never expanded.
    const reference = raw.startsWith("'") ? null : DOTENV_REFERENCE.exec(value.replaceAll('$${', ''));
    if (reference === null) references.delete(key);
    else references.set(key, { line: first + 1, variable: reference[1]!, value });
  }
  return { pairs, references };
}

/** Where `quote` first appears in `text` from `from` on, not escaped by a backslash (as `\"` is); -1 when it does not. */
function unescapedQuoteAt(text: string, quote: string, from: number): number {
  for (let i = from; i < text.length; i++) {
    if (text[i] === '\\') i++;
    else if (text[i] === quote) return i;
  }
  return -1;
}

function isQuoted(raw: string): boolean {
  return raw[0] === '"' || raw[0] === "'";
}

/**
 * Where a quoted value's closing quote is: the last one followed by nothing or a comment, so a quote inside the
 * value stays (`"a"b"` is a"b); -1 when there is none.
 */
function closingQuoteAt(raw: string): number {
  const quote = raw[0];
  for (let end = raw.length - 1; end > 0; end--) {
    if (raw[end] === quote && /^(?:\s+#.*)?$/.test(raw.slice(end + 1))) return end;
  }
  return -1;
}

/**
 * A value's text (its line, or lines for a quoted one), as docker compose and dotenv read it: `#` after a blank
 * starts a comment (`PORT=8080 # proxy` is 8080; `a#b` keeps its `#`), and a value in quotes is what they enclose, a
 * comment after them aside (`"two words" # note`). The comment used to be part of the value: a port was
 * "8080 # proxy", a secret had the note appended. (readDotEnv refuses a quote never closed.)
 */
function dotEnvValue(raw: string): string {
  if (isQuoted(raw)) {
    const end = closingQuoteAt(raw);
    if (end !== -1) return unescapeQuoted(raw.slice(1, end), raw[0]!);
    return raw;
  }
  return raw.replace(/\s+#.*$/, '');
}

/**
 * Escapes inside quotes, as docker compose reads them: in double quotes `\n`, `\r`, `\t`, `\\` and `\"`; in single
 * quotes only `\'`. Any other backslash stays as written (`"C:\dir"` keeps it). Without this a PEM or a multi-line
 * value written `"-----BEGIN...\n..."`, as compose and dotenv users write them, reached the gateway with literal `\n`s.
 */
function unescapeQuoted(inner: string, quote: string): string {
  if (!inner.includes('\\')) return inner;
  if (quote === "'") return inner.replaceAll("\\'", "'");
  return inner.replace(/\\([nrt"\\])/g, (_, c: string) => DOUBLE_QUOTED_ESCAPES[c]!);
}

const DOUBLE_QUOTED_ESCAPES: Readonly<Record<string, string>> = { n: '\n', r: '\r', t: '\t', '"': '"', '\\': '\\' };

function isSymlink(file: string): boolean {
  try {
    return lstatSync(file).isSymbolicLink();
  } catch {
    return false;
  }
}

/** An unset variable without a default: the config cannot be completed. */
export class MissingVariableError extends Error {
  constructor(readonly variable: string) {
    super(`environment variable ${variable} is not set and has no default`);
    this.name = 'MissingVariableError';
  }
}

/**
 * Replaces ${VAR} and ${VAR:-default} in a config value, once YAML has read it. An empty variable takes the default,
 * as in the shell. `$${VAR}` is the literal `${VAR}`, as in docker compose: without it no value could hold a `${`
 * (a plugin's template such as `"${method} ${path}"` was refused as unset variables); a `$$` before anything but a
 * placeholder stays as written (`pa$$word`).
 * Throws MissingVariableError for ${VAR} with VAR unset.
 */
export function expandVariables(text: string, env: NodeJS.ProcessEnv = process.env, budget?: ExpansionBudget): string {
  const replace = (whole: string, escaped: string | undefined, name: string, op: string | undefined, fallback: string | undefined) => {
    if (escaped !== undefined) return whole.slice(1);
    if (op !== undefined && op !== ':-') throw new UnsupportedPlaceholderError(name, op);
    // `${A:-${B}}` is read as `${A:-${B}` (a default ends at the first "}") and a "}": it gave the text "${B}".
    if (fallback?.includes('${')) throw new NestedPlaceholderError(name);
    const value = env[name];
    // Its .env line refers to a variable (loadDotEnv): its literal text is no value to use, default or not.
    const unexpanded = UNEXPANDED.get(env)?.get(name);
    if (unexpanded !== undefined && unexpanded.value === value) throw new DotEnvReferenceError(unexpanded.message);
    const expanded = value !== undefined && (value !== '' || fallback === undefined) ? value : fallback;
    if (expanded === undefined) throw new MissingVariableError(name);
    if (budget !== undefined) {
      budget.left -= expanded.length;
      if (budget.left < 0) throw new ExpansionTooLargeError();
    }
    return expanded;
  };
  return text.replace(PLACEHOLDER, replace);
}

/** `${NAME` or `${NAME:-default` that runs to the end of a value: a placeholder never closed. */
const UNCLOSED = /\$\{([A-Za-z_][A-Za-z0-9_]*)(?::?[-?+=][^}]*)?$/;

/**
 * Throws UnclosedPlaceholderError when `value` ends in a placeholder that was never closed. Unquoted, YAML ends a
 * value at " #" (a comment), so `${A:-a b #c}` was the text `${A:-a b`, kept as written.
 */
export function checkClosedPlaceholders(value: string): void {
  const unclosed = UNCLOSED.exec(value.replace(PLACEHOLDER, ''));
  if (unclosed !== null) throw new UnclosedPlaceholderError(unclosed[1]!);
}

/** A value ending in `${NAME…` with no "}". */
export class UnclosedPlaceholderError extends Error {
  constructor(readonly variable: string) {
    super(`a placeholder (\${${variable}}) has no closing "}" in its value (unquoted, " #" starts a comment: quote the value)`);
    this.name = 'UnclosedPlaceholderError';
  }
}

/** A placeholder in one of docker compose's other forms (`:?`, `?`, `-`, `:+`, `+`) or the shell's `=`, `:=`. */
export class UnsupportedPlaceholderError extends Error {
  constructor(
    readonly variable: string,
    readonly operator: string,
  ) {
    // The text after the operator is left out: it may be a default secret.
    super(
      `\${${variable}${operator}…} is not supported: placeholders are \${VAR} (an error when VAR is unset) and \${VAR:-default}; ` +
        'write $${ for a literal "${"',
    );
    this.name = 'UnsupportedPlaceholderError';
  }
}

/** A default holding a placeholder: defaults are literal, and end at the first "}". */
export class NestedPlaceholderError extends Error {
  constructor(readonly variable: string) {
    super(`the default of \${${variable}} holds a placeholder: defaults are literal text, and cannot hold "}" or "\${"`);
    this.name = 'NestedPlaceholderError';
  }
}

/** Characters that placeholders may still add to a config; expandVariables() spends it. */
export interface ExpansionBudget {
  left: number;
}

/** Placeholders whose values add up to more than the budget (the same variable many times over). */
export class ExpansionTooLargeError extends Error {
  constructor() {
    super('placeholders expand to more than 16 MiB of text');
    this.name = 'ExpansionTooLargeError';
  }
}

/** Config text with its placeholders swapped for tokens YAML cannot misread, and the way back for a scalar's value. */
export interface HiddenPlaceholders {
  readonly text: string;
  /**
   * The value with each token put back as the placeholder it stood for (unchanged when it holds none). `source` is
   * the scalar as written in the tokenized text: a token is put back only as often as it stands there literally, so
   * an escape in a double-quoted value (`"\x70cvar0x0x"`) that spells a token never becomes a placeholder.
   */
  restore(value: string, source: string): string;
}

/**
 * Characters YAML reads differently inside a scalar (a quote, an escape, a line break, the " #" of a comment): a
 * placeholder holding one stays in the text as written, since its token would bring it back unread (`\t` or `''`
 * as typed). Such a placeholder still works wherever it did before; only its default can hold these characters.
 */
const READ_BY_YAML = /["'\\\r\n]|[ \t]#/;

/**
 * Swaps each ${VAR} and ${VAR:-default} for a token of letters and digits, before the text is parsed. In a flow
 * collection `{`, `}`, `,`, `[` and `]` are indicators, so `port: ${PORT}` there is not YAML; a token is a plain
 * scalar (or part of one) in every style, and the same number of lines. Values are expanded after parsing, from
 * the placeholders restore() puts back: a variable's value never reaches the parser.
 */
export function hidePlaceholders(text: string): HiddenPlaceholders {
  const stem = unusedStem(text);
  const hidden: string[] = [];
  const tokenized = text.replace(PLACEHOLDER, (whole: string) => {
    if (READ_BY_YAML.test(whole)) return whole;
    hidden.push(whole);
    return `${stem}${hidden.length - 1}x`;
  });
  const token = new RegExp(`${stem}(\\d+)x`, 'g');
  return {
    text: tokenized,
    restore: (value, source) => {
      if (hidden.length === 0) return value;
      const left = new Map<string, number>();
      return value.replace(token, (whole: string, index: string) => {
        const allowed = left.get(whole) ?? source.split(whole).length - 1;
        if (allowed === 0) return whole;
        left.set(whole, allowed - 1);
        return hidden[Number(index)] ?? whole;
      });
    },
  };
}

/**
 * A token stem found nowhere in `text`, so every match of it after the swap is a token. It starts with the only
 * "p" it holds, so no stem can straddle a token and the text beside it.
 */
function unusedStem(text: string): string {
  let n = 0;
  while (text.includes(`pcvar${n}x`)) n++;
  return `pcvar${n}x`;
}
