// Reads a file the config depends on (the config file, .env) without ever waiting: only a regular file is read.
import { closeSync, constants, fstatSync, openSync, readSync } from 'node:fs';

/** Why a file could not be read: a Node error code (ENOENT, EACCES, EISDIR…) or a phrase. */
export class UnreadableFile extends Error {
  constructor(readonly why: string) {
    super(why);
    this.name = 'UnreadableFile';
  }
}

/**
 * The bytes of `path`, a regular file (or a symlink to one) of at most `maxBytes`; else throws UnreadableFile. The file
 * is opened with O_NONBLOCK: a FIFO is then opened without waiting for a writer, and refused. A blocking read of one
 * with no writer held check-config and start for ever, and a reload stopped the gateway's event loop.
 */
export function readRegularFile(path: string, maxBytes: number, tooLarge: string): Buffer {
  let fd: number;
  try {
    fd = openSync(path, constants.O_RDONLY | (constants.O_NONBLOCK ?? 0));
  } catch (err) {
    throw new UnreadableFile((err as NodeJS.ErrnoException).code ?? 'unreadable');
  }
  try {
    const stat = fstatSync(fd);
    if (!stat.isFile()) throw new UnreadableFile('not a regular file');
    if (stat.size > maxBytes) throw new UnreadableFile(tooLarge);
    // Read to the end, not to stat.size: a file being written may grow meanwhile; still no more than the bound.
    let buffer = Buffer.alloc(Math.min(stat.size, maxBytes) + 1);
    let length = 0;
    for (;;) {
      if (length === buffer.length) {
        if (length > maxBytes) throw new UnreadableFile(tooLarge);
        const grown = Buffer.alloc(maxBytes + 1);
        buffer.copy(grown, 0, 0, length);
        buffer = grown;
      }
      const n = readSync(fd, buffer, length, buffer.length - length, null);
      if (n === 0) return buffer.subarray(0, length);
      length += n;
    }
  } catch (err) {
    if (err instanceof UnreadableFile) throw err;
    throw new UnreadableFile((err as NodeJS.ErrnoException).code ?? 'unreadable');
  } finally {
    closeSync(fd);
  }
}
