// Loaded into a spawned `portcullis` with `node --import <this file>` (NODE_OPTIONS): the whole process reads a wall
// clock PORTCULLIS_TEST_CLOCK_OFFSET_MS ahead (negative: behind), as a host whose clock is off does: Date.now() and
// `new Date()` move, performance.now() (monotonic, never compared across hosts) does not. With
// PORTCULLIS_TEST_CLOCK_FROZEN=1 the wall clock also stands still at the time the process started (plus the offset):
// everything it does happens in one millisecond. Timers are not affected. Test-only: nothing in src reads these
// variables. Plain JavaScript so that it loads before tsx does.
const offset = Number(process.env.PORTCULLIS_TEST_CLOCK_OFFSET_MS ?? '0');
if (!Number.isFinite(offset)) throw new Error('clock-offset-import.mjs: PORTCULLIS_TEST_CLOCK_OFFSET_MS is not a number');

const RealDate = Date;
const frozenAt = RealDate.now();
const realNow = process.env.PORTCULLIS_TEST_CLOCK_FROZEN === '1' ? () => frozenAt : RealDate.now.bind(RealDate);

class OffsetDate extends RealDate {
  constructor(...args) {
    if (args.length === 0) super(realNow() + offset);
    else super(...args);
  }

  static now() {
    return realNow() + offset;
  }
}

globalThis.Date = OffsetDate;
