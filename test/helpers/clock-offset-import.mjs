// Loaded into a spawned `portcullis` with `node --import <this file>` (NODE_OPTIONS): the whole process reads a wall
// clock PORTCULLIS_TEST_CLOCK_OFFSET_MS ahead (negative: behind), as a host whose clock is off does: Date.now() and
// `new Date()` move, performance.now() (monotonic, never compared across hosts) does not. With
// PORTCULLIS_TEST_CLOCK_FROZEN=1 the wall clock also stands still at the time the process started (plus the offset):
// everything it does happens in one millisecond. With PORTCULLIS_TEST_CLOCK_OFFSET_FILE the offset can move while the
// process runs, as a clock stepped by NTP, a resumed laptop or a restored snapshot does: the file holds a further
// offset in ms (a decimal number; missing or empty: 0), added to the fixed one and re-read at most every
// REREAD_MS of monotonic time, so a test steps the clock by writing the file (test/helpers/clock-step.ts writes it
// whole, by rename). Timers are not affected. Test-only: nothing in src reads these variables. Plain JavaScript so
// that it loads before tsx does.
import { readFileSync } from 'node:fs';

const offset = Number(process.env.PORTCULLIS_TEST_CLOCK_OFFSET_MS ?? '0');
if (!Number.isFinite(offset)) throw new Error('clock-offset-import.mjs: PORTCULLIS_TEST_CLOCK_OFFSET_MS is not a number');
const offsetFile = process.env.PORTCULLIS_TEST_CLOCK_OFFSET_FILE || undefined;
/** How stale the file's offset may be: a step is seen by every reading of the clock from 2 ms after it is written. */
const REREAD_MS = 2;

let fileOffset = 0;
let fileReadAt = -Infinity;

/** The file's offset, read again when the last read is older than REREAD_MS; a file that is not a number is ignored. */
function currentFileOffset() {
  const at = performance.now();
  if (at - fileReadAt < REREAD_MS) return fileOffset;
  fileReadAt = at;
  let text = '';
  try {
    text = readFileSync(offsetFile, 'utf8').trim();
  } catch {
    // no file yet: no further offset
  }
  const read = text === '' ? 0 : Number(text);
  if (Number.isFinite(read)) fileOffset = read;
  return fileOffset;
}

const totalOffset = offsetFile === undefined ? () => offset : () => offset + currentFileOffset();

const RealDate = Date;
const frozenAt = RealDate.now();
const realNow = process.env.PORTCULLIS_TEST_CLOCK_FROZEN === '1' ? () => frozenAt : RealDate.now.bind(RealDate);

class OffsetDate extends RealDate {
  constructor(...args) {
    if (args.length === 0) super(realNow() + totalOffset());
    else super(...args);
  }

  static now() {
    return realNow() + totalOffset();
  }
}

globalThis.Date = OffsetDate;
