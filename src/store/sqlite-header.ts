// What a SQLite database file's 100-byte header says of it, read without SQLite: `check-config` judges the store start
// would open (not a database, cut short, a newer schema) and never opens it, so nothing is created, locked or written.
import { closeSync, openSync, readSync, statSync } from 'node:fs';
import { newerSchemaWords } from './user-store.js';

const HEADER_BYTES = 100;
const MAGIC = Buffer.from('SQLite format 3\0', 'latin1');

/**
 * Why start would refuse the database file at `file` (schema version `latest` being this build's), in a few words
 * after "the user store at <file>", or undefined: no file, an empty one (start makes the schema), a sound header,
 * or not a regular file (left to start: reading a FIFO would wait).
 */
export function sqliteHeaderProblem(file: string, latest: number): string | undefined {
  const stats = statSync(file, { throwIfNoEntry: false });
  if (stats === undefined || !stats.isFile() || stats.size === 0) return undefined;
  const header = readHeader(file);
  if (header.length < HEADER_BYTES || !header.subarray(0, MAGIC.length).equals(MAGIC)) return 'is not a SQLite database (SQLITE_NOTADB)';
  const userVersion = header.readInt32BE(60);
  if (userVersion > latest) return newerSchemaWords(userVersion, latest);
  if (shorterThanHeader(header, stats.size) && !hasWal(file)) return 'is corrupt (SQLITE_CORRUPT): shorter than its header says';
  return undefined;
}

function readHeader(file: string): Buffer {
  const fd = openSync(file, 'r');
  try {
    const buffer = Buffer.alloc(HEADER_BYTES);
    const read = readSync(fd, buffer, 0, HEADER_BYTES, 0);
    return buffer.subarray(0, read);
  } finally {
    closeSync(fd);
  }
}

/**
 * The page count times the page size is past the file's end. The page count is only trusted while "version-valid-for"
 * (offset 92) equals the change counter (offset 24), as SQLite trusts it.
 */
function shorterThanHeader(header: Buffer, size: number): boolean {
  const raw = header.readUInt16BE(16);
  const pageSize = raw === 1 ? 65_536 : raw;
  const pages = header.readUInt32BE(28);
  if (pageSize < 512 || (pageSize & (pageSize - 1)) !== 0 || header.readUInt32BE(92) !== header.readUInt32BE(24)) return false;
  return pages * pageSize > size;
}

/** A -wal with frames in it: a checkpoint cut short may have left the file short, which SQLite completes at open. */
function hasWal(file: string): boolean {
  return (statSync(`${file}-wal`, { throwIfNoEntry: false })?.size ?? 0) > 0;
}
