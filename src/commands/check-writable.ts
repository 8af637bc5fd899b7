// `check-config`: the paths start-up opens or creates for writing, checked without writing anything. Start-up opens
// the access-log file for appending and, with auth on, creates the data dir and the SQLite store and the generated
// JWT secret in it; a path it cannot write stops the gateway, so check-config must refuse it too, with start-up's
// message where start-up has one of its own. Nothing is created here: the access checks (access(2)) only ask.
import { accessSync, constants, lstatSync, readlinkSync, statSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { ConfigError } from '../config/config-error.js';
import type { Config } from '../config/schema.js';

/** Throws the ConfigError start-up would stop with for a path it cannot write; `dataDir` as start-up resolves it. */
export async function checkWritablePaths(config: Config, dataDir: string): Promise<void> {
  const accessLog = config.logging.access_log_file;
  if (accessLog !== '') {
    const code = fileWriteProblem(accessLog);
    // AccessLogFileError's text (observability/access-log-file.ts), which start-up prints.
    if (code !== undefined) throw new ConfigError(`logging.access_log_file: cannot open ${accessLog} (${code})`);
  }
  // Only the auth feature uses the data dir (features.ts): with auth off, start-up never touches it.
  if (!config.middleware.auth.enabled) return;
  if (config.database.url === '') {
    // Imported only here: the store module loads better-sqlite3's native binding.
    const { SQLITE_FILE_NAME } = await import('../store/sqlite.js');
    const code = dirCreateProblem(dataDir) ?? existingFileWriteProblem(join(dataDir, SQLITE_FILE_NAME));
    // Start-up fails here with the bare mkdir or SQLite error: no message of its own to repeat, so name the setting.
    if (code !== undefined) throw new ConfigError(`PORTCULLIS_DATA_DIR: cannot write the user store in ${dataDir} (${code})`);
    // What the file holds, as start-up would judge it on opening (not a database, cut short, a newer schema).
    const file = join(dataDir, SQLITE_FILE_NAME);
    const [{ sqliteHeaderProblem }, { sqliteMigrations }] = await Promise.all([import('../store/sqlite-header.js'), import('../store/migrations/sqlite.js')]);
    const problem = sqliteHeaderProblem(file, sqliteMigrations.at(-1)?.version ?? 0);
    if (problem !== undefined) throw new ConfigError(`PORTCULLIS_DATA_DIR: the user store at ${file} ${problem}`);
  }
  if (config.jwt.algorithm === 'HS256' && config.jwt.secret === '') {
    const { SECRET_FILE_NAME, readGeneratedSecret } = await import('../auth/keys.js');
    const file = join(dataDir, SECRET_FILE_NAME);
    // Read and judged as start-up reads it (its ConfigError: unreadable, not a regular file, too short); only when
    // there is none is one written, which needs the data dir.
    if (readGeneratedSecret(file) !== undefined) return;
    const writeCode = dirCreateProblem(dataDir);
    if (writeCode !== undefined) throw new ConfigError(`jwt.secret: empty, and the generated secret cannot be written in ${dataDir} (${writeCode})`);
  }
}

/**
 * Why open(path, 'a') would fail, as its error code, or undefined. An existing file must be writable and not a
 * directory; an absent one is created, which needs its directory to exist and be writable and searchable.
 */
function fileWriteProblem(path: string): string | undefined {
  try {
    if (statSync(path).isDirectory()) return 'EISDIR';
    return accessProblem(path, constants.W_OK);
  } catch (err) {
    const code = errCode(err);
    if (code !== 'ENOENT') return code;
  }
  // A dangling symlink: open(path, 'a') creates its target, in the target's directory (which it does not create).
  return dirWriteProblem(dirname(danglingTarget(path) ?? path));
}

/**
 * The path a symlink at `path` ends at, each link resolved against its own directory (a chain of them followed, as
 * open(2) follows it, up to its 40 links), or undefined for no symlink.
 */
function danglingTarget(path: string): string | undefined {
  let at = path;
  for (let hops = 0; hops < 40; hops++) {
    try {
      if (!lstatSync(at).isSymbolicLink()) break;
    } catch {
      break; // the end of the chain: a path that does not exist
    }
    at = resolve(dirname(at), readlinkSync(at));
  }
  return at === path ? undefined : at;
}

/**
 * For a file start-up opens only if it is there (the SQLite store, created otherwise): writable when present. A
 * symlink to nothing is there too: SQLite opens it, creating its target, and start-up failed on a target directory
 * that does not exist where check-config said ok.
 */
function existingFileWriteProblem(path: string): string | undefined {
  return exists(path) || danglingTarget(path) !== undefined ? fileWriteProblem(path) : undefined;
}

/**
 * Why mkdir(dir, { recursive: true }) followed by writing in it would fail, or undefined: the directory itself when it
 * exists, else its nearest existing ancestor, must be a writable, searchable directory.
 */
function dirCreateProblem(dir: string): string | undefined {
  for (let at = dir; ; at = dirname(at)) {
    if (exists(at) || dirname(at) === at) return dirWriteProblem(at);
  }
}

function dirWriteProblem(dir: string): string | undefined {
  try {
    if (!statSync(dir).isDirectory()) return 'ENOTDIR';
  } catch (err) {
    return errCode(err);
  }
  return accessProblem(dir, constants.W_OK | constants.X_OK);
}

/** Present in any form (a dangling path component is ENOTDIR, which mkdir and open report too: "present" here). */
function exists(path: string): boolean {
  try {
    statSync(path);
    return true;
  } catch (err) {
    return errCode(err) !== 'ENOENT';
  }
}

function accessProblem(path: string, mode: number): string | undefined {
  try {
    accessSync(path, mode);
    return undefined;
  } catch (err) {
    return errCode(err);
  }
}

function errCode(err: unknown): string {
  return (err as NodeJS.ErrnoException).code ?? 'unknown';
}
