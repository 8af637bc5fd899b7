// The access-log file (`logging.access_log_file`): opened for appending, reopened on SIGUSR1 after a rotation.
import { constants, fstatSync, openSync } from 'node:fs';
import { ConfigError } from '../config/load.js';
import { LineWriter } from './line-writer.js';

/** Owner read/write, group read: log shippers usually run in the file's group. */
const FILE_MODE = 0o640;

/**
 * Append, create, and never wait: O_NONBLOCK. A FIFO given as the path (a log shipper's named pipe) makes a blocking
 * open wait for a reader, on the main thread: start-up hung without a word, and a SIGUSR1 reopen stopped the whole
 * gateway, every request included, until something opened the FIFO for reading. Without a reader the open now fails
 * at once (ENXIO): start-up stops with its one config-error line, a reopen keeps the old file and logs its warning.
 * With a reader that stops reading, writes fail with EAGAIN (the writer keeps its lines, bounded, and retries)
 * instead of holding a libuv thread, and the stop, for ever. On a regular file the flag changes nothing.
 */
const OPEN_FLAGS = constants.O_WRONLY | constants.O_APPEND | constants.O_CREAT | constants.O_NONBLOCK;

/** The file cannot be opened at start-up: a config problem, printed as `logging.access_log_file: cannot open …`. */
export class AccessLogFileError extends ConfigError {
  constructor(path: string, readonly code: string) {
    super(`logging.access_log_file: cannot open ${path} (${code})`);
    this.name = 'AccessLogFileError';
  }
}

/**
 * A buffered line writer appending to `path`. `reopen()` is the logrotate convention nginx uses: after the file
 * was renamed, SIGUSR1 makes the gateway create it again under the configured name; lines written before the
 * switch land whole in the old file, later ones in the new file (see LineWriter.reopen).
 */
export class AccessLogFile {
  readonly writer: LineWriter;
  readonly #path: string;

  constructor(path: string) {
    this.#path = path;
    const fd = openAppend(path);
    // A FIFO (or a socket) is read by one reader from every process that writes to it: a cluster's workers each open
    // it, and a shipper's named pipe may have other writers. A pipe keeps a write whole only up to PIPE_BUF, and a
    // non-blocking one takes part of a larger write when it is nearly full, the rest later: another writer's bytes
    // then land inside a line. So each write holds whole lines within PIPE_BUF, as to a cluster's shared stdout.
    // A regular file needs none of that (O_APPEND writes are never interleaved) and keeps large writes.
    this.writer = new LineWriter(fd, { destination: 'access_log_file', shared: isPipe(fd) });
  }

  /**
   * Closes the current file and opens `path` again (creating it); a failure keeps the old file and calls
   * `onFailed` with the error code (EACCES, EISDIR, ENOSPC…), never a message (it may quote the path's parts).
   */
  reopen(onFailed?: (code: string) => void): void {
    this.writer.reopen(
      () => openSync(this.#path, OPEN_FLAGS, FILE_MODE),
      (err) => onFailed?.((err as NodeJS.ErrnoException).code ?? 'unknown'),
    );
  }

  /** Writes what is buffered (synchronously); the descriptor is released by the process exit. */
  end(): void {
    this.writer.end();
  }
}

function openAppend(path: string): number {
  try {
    return openSync(path, OPEN_FLAGS, FILE_MODE);
  } catch (err) {
    throw new AccessLogFileError(path, (err as NodeJS.ErrnoException).code ?? 'unknown');
  }
}

/** A FIFO or a socket: a write of more than PIPE_BUF bytes can reach the reader with other writers' bytes inside. */
function isPipe(fd: number): boolean {
  try {
    const stat = fstatSync(fd);
    return stat.isFIFO() || stat.isSocket();
  } catch {
    return false;
  }
}
