// Whether the SQLite files a connection opened are still the ones at their paths. better-sqlite3 holds them open, so
// a database file deleted or replaced under a running gateway (rm, a backup restored by rename, another gateway's file
// moved over it) was read and written as if nothing had happened: every write went to an inode no one would open
// again, lost at the next start (users registered, log-outs confirmed). A -wal or -shm deleted split the log: the
// gateway wrote to one other processes no longer saw. Once one of them is gone the store refuses every step. A -shm
// that cannot be written (immutable, a read-only mount) is refused while it lasts: writing its mapping was a SIGBUS.
import { accessSync, closeSync, constants, fstatSync, ftruncateSync, openSync, realpathSync, statSync } from 'node:fs';

/** Which of the store's files went. */
export type SqliteFilePart = 'database' | 'wal' | 'shm';

/** How a file went: deleted, replaced by another file, or (the -shm) cut shorter than SQLite has it mapped. */
export type StoreFileLoss = 'FILE_DELETED' | 'FILE_REPLACED' | 'FILE_TRUNCATED';

/**
 * The database file, its -wal or -shm deleted (FILE_DELETED) or replaced by another file (FILE_REPLACED), or the
 * -shm truncated (FILE_TRUNCATED: SQLite's mapping of it then reaches past its end, where a read is a SIGBUS).
 */
export class StoreFileLostError extends Error {
  /** The database file's path (the one an operator knows), whichever part went. */
  readonly file: string;
  readonly part: SqliteFilePart;
  readonly code: StoreFileLoss;

  constructor(file: string, part: SqliteFilePart, code: StoreFileLoss) {
    super(`the user store's ${part === 'database' ? 'database file' : `-${part} file`} was ${code.slice(5).toLowerCase()}`);
    this.name = 'StoreFileLostError';
    this.file = file;
    this.part = part;
    this.code = code;
  }
}

/**
 * The -shm file cannot be written at its path now (EPERM: immutable; EROFS: a read-only mount; EACCES). SQLite writes
 * it through a shared memory mapping, where a refused write is no error code but a SIGBUS that ends the process.
 */
export class StoreFileUnwritableError extends Error {
  readonly code: string;

  constructor(code: string) {
    super(`the user store's -shm file cannot be written (${code})`);
    this.name = 'StoreFileUnwritableError';
    this.code = code;
  }
}

interface Held {
  readonly part: SqliteFilePart;
  readonly path: string;
  /** dev:ino once seen; a -wal or -shm is made by SQLite at the first read or write, so it is taken when it appears. */
  identity: string | undefined;
  /** The largest size seen: SQLite grows the -shm in 32 KiB steps and never shrinks it while a connection is open. */
  size: number;
}

/** `file` with every symbolic link resolved, as SQLite opened it a moment ago; `file` itself when that fails (gone). */
function realPathOf(file: string): string {
  try {
    return realpathSync(file);
  } catch {
    return file;
  }
}

/** dev:ino and size of the file at `path`, or undefined when there is none. */
function statAt(path: string): { readonly identity: string; readonly size: number } | undefined {
  const stats = statSync(path, { throwIfNoEntry: false });
  return stats === undefined ? undefined : { identity: `${stats.dev}:${stats.ino}`, size: stats.size };
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
    // SQLite follows symbolic links when it opens a database and names the -wal and -shm after the target: a
    // portcullis.db linked to a file on another volume has them beside that file, never beside the link.
    const real = realPathOf(file);
    this.#held = [
      { part: 'database', path: real, identity: statAt(real)?.identity, size: 0 },
      { part: 'wal', path: `${real}-wal`, identity: undefined, size: 0 },
      { part: 'shm', path: `${real}-shm`, identity: undefined, size: 0 },
    ];
    this.check();
  }

  /**
   * Why the store may not be used now: the loss of a file (for good), or a -shm that cannot be written at its path
   * (until it can). Asked before each step, reads too: a reader writes its read mark into the -shm.
   */
  refusal(): StoreFileLostError | StoreFileUnwritableError | undefined {
    return this.check() ?? this.#shmUnwritable();
  }

  /** access(2), not the mode bits: it answers EPERM for an immutable file and EROFS on a read-only mount, to root too. */
  #shmUnwritable(): StoreFileUnwritableError | undefined {
    const shm = this.#held[2]!;
    if (shm.identity === undefined) return undefined;
    try {
      accessSync(shm.path, constants.W_OK);
      return undefined;
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      // Gone meanwhile: the next check() reports the loss.
      if (code === 'ENOENT') return undefined;
      return new StoreFileUnwritableError(typeof code === 'string' && /^[A-Z0-9_]{1,20}$/.test(code) ? code : 'EUNKNOWN');
    }
  }

  /**
   * Gives the -shm back the length SQLite has mapped, when the file it mapped is still at its path but was cut shorter
   * (FILE_TRUNCATED): closing the connection checkpoints through that mapping, and past the file's end that is a SIGBUS,
   * so the stop an operator makes to recover ended the process by a signal. The bytes come back as zeros, which SQLite
   * reads as a wal-index to rebuild from the -wal (its own recovery, as after a crash), so the close checkpoints what
   * the -wal holds. Opened and compared by descriptor, so a file put at the path meanwhile is never touched.
   */
  restoreShmLength(): void {
    const shm = this.#held[2]!;
    if (shm.identity === undefined) return;
    let fd: number | undefined;
    try {
      fd = openSync(shm.path, constants.O_RDWR | constants.O_NOFOLLOW | constants.O_NONBLOCK);
      const stats = fstatSync(fd);
      if (`${stats.dev}:${stats.ino}` === shm.identity && stats.size < shm.size) ftruncateSync(fd, shm.size);
    } catch {
      // Gone, replaced or not writable: the mapped file is then whole, or nothing here can make it so.
    } finally {
      if (fd !== undefined) closeSync(fd);
    }
  }

  /**
   * Whether SQLite may close the connection. Closing the last connection to the file checkpoints the -wal into the
   * database through the -shm mapping, then deletes the -wal and -shm at their paths. Not when the -shm cannot be
   * written (the checkpoint's write to the mapping is a SIGBUS), nor when the -wal or -shm at its path is another file
   * than the one this connection opened: deleted and made again by another connection to the same database, whose
   * committed rows may be in that -wal alone (its writer crashed), which the close deleted. Safe when the database
   * file itself moved (deleted, replaced): SQLite then sees it (SQLITE_FCNTL_HAS_MOVED) and neither checkpoints nor
   * deletes. Safe when the -wal and -shm paths are empty: the checkpoint puts this connection's committed rows, which
   * only its -wal held, into the database. Judged from the paths now, not from the first loss check() keeps.
   */
  safeToClose(): boolean {
    if (this.#shmUnwritable() !== undefined) return false;
    const [database, ...logs] = this.#held;
    if (lossOf(database!, statAt(database!.path)) !== undefined) return true;
    return logs.every((held) => {
      const now = statAt(held.path);
      // Never seen: made by the connection's last step, after the check before it (`portcullis migrate` closes so).
      return now === undefined || held.identity === undefined || now.identity === held.identity;
    });
  }

  /** The loss, when one of the files went (first seen now or before); undefined while they are all there. */
  check(): StoreFileLostError | undefined {
    if (this.#lost !== undefined) return this.#lost;
    for (const held of this.#held) {
      const now = statAt(held.path);
      const loss = lossOf(held, now);
      if (loss !== undefined) {
        this.#lost = new StoreFileLostError(this.#file, held.part, loss);
        return this.#lost;
      }
      held.identity ??= now?.identity;
      if (now !== undefined) held.size = Math.max(held.size, now.size);
    }
    return undefined;
  }
}

/** How `held` went, judged by what is at its path `now`; undefined while it is the file it was. */
function lossOf(held: Held, now: { readonly identity: string; readonly size: number } | undefined): StoreFileLoss | undefined {
  if (held.identity === undefined) return undefined;
  if (now === undefined) return 'FILE_DELETED';
  if (now.identity !== held.identity) return 'FILE_REPLACED';
  // The -wal is cut back by SQLite itself (a checkpoint's reset, journal_size_limit); only the -shm must not shrink.
  if (held.part === 'shm' && now.size < held.size) return 'FILE_TRUNCATED';
  return undefined;
}
