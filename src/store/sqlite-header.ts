// What a SQLite database file's 100-byte header says of it, read without SQLite: `check-config` judges the store start
// would open (not a database, cut short, a newer schema) and never opens it, so nothing is created, locked or written.
import { closeSync, fstatSync, openSync, readSync, statSync } from 'node:fs';
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
  const seen = steadyHeader(file);
  if (seen === undefined) return undefined;
  const { header, size, walFrames } = seen;
  if (header.length < HEADER_BYTES || !header.subarray(0, MAGIC.length).equals(MAGIC)) return 'is not a SQLite database (SQLITE_NOTADB)';
  // A -wal's last committed page 1 is newer than the file's (a newer build killed before it checkpointed): SQLite
  // reads that one, and so does this.
  const userVersion = walPageOne(file)?.readInt32BE(60) ?? header.readInt32BE(60);
  if (userVersion > latest) return newerSchemaWords(userVersion, latest);
  if (shorterThanHeader(header, size) && !walFrames) return 'is corrupt (SQLITE_CORRUPT): shorter than its header says';
  return undefined;
}

/** The header, the file's size and whether a -wal holds frames, seen together: the header the same before and after. */
interface SteadyHeader {
  readonly header: Buffer;
  readonly size: number;
  readonly walFrames: boolean;
}

/**
 * The header, size and -wal of a file a running gateway may be checkpointing right now. A checkpoint writes page 1
 * (the new page count) first, then the pages past the old end (or cuts the file, after a VACUUM), then empties the
 * -wal: a size taken apart from the header called a healthy file "shorter than its header says". Read as header,
 * -wal, size, header again, and kept only when both headers are the same (page 1 not rewritten meanwhile); undefined
 * when the file never held still (being written: start judges it).
 */
function steadyHeader(file: string): SteadyHeader | undefined {
  const fd = openSync(file, 'r');
  try {
    for (let attempt = 0; attempt < 5; attempt++) {
      const header = readHeader(fd);
      const walFrames = hasWal(file);
      const size = fstatSync(fd).size;
      if (readHeader(fd).equals(header)) return { header, size, walFrames };
    }
    return undefined;
  } finally {
    closeSync(fd);
  }
}

function readHeader(fd: number): Buffer {
  const buffer = Buffer.alloc(HEADER_BYTES);
  const read = readSync(fd, buffer, 0, HEADER_BYTES, 0);
  return buffer.subarray(0, read);
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

const WAL_HEADER_BYTES = 32;
const FRAME_HEADER_BYTES = 24;

/**
 * The first 100 bytes of page 1 as the -wal's last committed frame of it holds them, or undefined (no -wal, none
 * there, or a -wal SQLite would not use). Frames count while their salts are the header's and their running checksum
 * holds, as SQLite's recovery counts them; only frames up to the last commit frame are committed.
 */
function walPageOne(file: string): Buffer | undefined {
  let fd: number;
  try {
    fd = openSync(`${file}-wal`, 'r');
  } catch {
    return undefined;
  }
  try {
    const size = fstatSync(fd).size;
    const header = Buffer.alloc(WAL_HEADER_BYTES);
    if (size < WAL_HEADER_BYTES || readSync(fd, header, 0, WAL_HEADER_BYTES, 0) < WAL_HEADER_BYTES) return undefined;
    const magic = header.readUInt32BE(0);
    if ((magic & 0xfffffffe) !== 0x377f0682) return undefined;
    const bigEndian = (magic & 1) === 1;
    const pageSize = header.readUInt32BE(8) === 1 ? 65_536 : header.readUInt32BE(8);
    if (pageSize < 512 || pageSize > 65_536 || (pageSize & (pageSize - 1)) !== 0) return undefined;
    let sum = walChecksum(header.subarray(0, 24), bigEndian, [0, 0]);
    if (sum[0] !== header.readUInt32BE(24) || sum[1] !== header.readUInt32BE(28)) return undefined;
    const frame = Buffer.alloc(FRAME_HEADER_BYTES + pageSize);
    let pending: Buffer | undefined;
    let committed: Buffer | undefined;
    for (let at = WAL_HEADER_BYTES; at + frame.length <= size; at += frame.length) {
      if (readSync(fd, frame, 0, frame.length, at) < frame.length) break;
      if (frame.readUInt32BE(8) !== header.readUInt32BE(16) || frame.readUInt32BE(12) !== header.readUInt32BE(20)) break;
      sum = walChecksum(frame.subarray(FRAME_HEADER_BYTES), bigEndian, walChecksum(frame.subarray(0, 8), bigEndian, sum));
      if (sum[0] !== frame.readUInt32BE(16) || sum[1] !== frame.readUInt32BE(20)) break;
      if (frame.readUInt32BE(0) === 1) pending = Buffer.from(frame.subarray(FRAME_HEADER_BYTES, FRAME_HEADER_BYTES + HEADER_BYTES));
      // A commit frame (the database's size after it, non-zero) makes what came before it count.
      if (frame.readUInt32BE(4) !== 0) committed = pending;
    }
    return committed;
  } finally {
    closeSync(fd);
  }
}

/** SQLite's WAL checksum of `data` (a multiple of 8 bytes) continued from `[s0, s1]`, in the -wal's byte order. */
function walChecksum(data: Buffer, bigEndian: boolean, [s0, s1]: readonly [number, number]): [number, number] {
  let a = s0;
  let b = s1;
  for (let i = 0; i < data.length; i += 8) {
    a = (a + (bigEndian ? data.readUInt32BE(i) : data.readUInt32LE(i)) + b) >>> 0;
    b = (b + (bigEndian ? data.readUInt32BE(i + 4) : data.readUInt32LE(i + 4)) + a) >>> 0;
  }
  return [a, b];
}
