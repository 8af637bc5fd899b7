// Whether the SQLite files a connection opened are still the ones at their paths. better-sqlite3 holds them open, so
// a database file deleted or replaced under a running gateway (rm, a backup restored by rename, another gateway's file
// moved over it) was read and written as if nothing had happened: every write went to an inode no one would open
// again, lost at the next start (users registered, log-outs confirmed). A -wal or -shm deleted split the log: the
// gateway wrote to one other processes no longer saw. Once one of them is gone the store refuses every step.
import { statSync } from 'node:fs';

/** Which of the store's files went. */
export type SqliteFilePart = 'database' | 'wal' | 'shm';

/** The database file, its -wal or -shm deleted (FILE_DELETED) or replaced by another file (FILE_REPLACED). */
export class StoreFileLostError extends Error {
  /** The database file's path (the one an operator knows), whichever part went. */
  readonly file: string;
  readonly part: SqliteFilePart;
  readonly code: 'FILE_DELETED' | 'FILE_REPLACED';

  constructor(file: string, part: SqliteFilePart, code: 'FILE_DELETED' | 'FILE_REPLACED') {
    super(`the user store's ${part === 'database' ? 'database file' : `-${part} file`} was ${code === 'FILE_DELETED' ? 'deleted' : 'replaced'}`);
    this.name = 'StoreFileLostError';
    this.file = file;
    this.part = part;
    this.code = code;
  }
}

interface Held {
  readonly part: SqliteFilePart;
  readonly path: string;
  /** dev:ino once seen; a -wal or -shm is made by SQLite at the first read or write, so it is taken when it appears. */
  identity: string | undefined;
}

/** dev:ino of the file at `path`, or undefined when there is none. */
function identityAt(path: string): string | undefined {
  const stats = statSync(path, { throwIfNoEntry: false });
  return stats === undefined ? undefined : `${stats.dev}:${stats.ino}`;
}

/**
 * Watches the database file (taken at construction, right after the connection opened it) and its -wal and -shm.
 * A connection in WAL mode keeps both until it closes, and SQLite deletes or recreates neither while any connection
 * is open, so one gone or with another inode was done from outside. Once lost, always lost: the connection can never
 * again write where the path leads; the gateway opens the file there when it restarts.
 */
export class SqliteFileGuard {
  readonly #file: string;
  readonly #held: Held[];
  #lost: StoreFileLostError | undefined;

  constructor(file: string) {
    this.#file = file;
    this.#held = [
      { part: 'database', path: file, identity: identityAt(file) },
      { part: 'wal', path: `${file}-wal`, identity: undefined },
      { part: 'shm', path: `${file}-shm`, identity: undefined },
    ];
    this.check();
  }

  /** The loss, when one of the files went (first seen now or before); undefined while they are all there. */
  check(): StoreFileLostError | undefined {
    if (this.#lost !== undefined) return this.#lost;
    for (const held of this.#held) {
      const now = identityAt(held.path);
      if (held.identity === undefined) {
        held.identity = now;
      } else if (now !== held.identity) {
        this.#lost = new StoreFileLostError(this.#file, held.part, now === undefined ? 'FILE_DELETED' : 'FILE_REPLACED');
        return this.#lost;
      }
    }
    return undefined;
  }
}
