// The access-log file (`logging.access_log_file`): opened for appending, reopened on SIGUSR1 after a rotation.
import { constants, openSync } from 'node:fs';
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
    this.writer = new LineWriter(openAppend(path), { destination: 'access_log_file' });
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
