// A wall clock a test can step under a running process (test/helpers/clock-offset-import.mjs with
// PORTCULLIS_TEST_CLOCK_OFFSET_FILE): `env` goes into the spawned process's environment, `step(ms)` sets the offset
// from the real clock (absolute, not added: step(-600_000) then step(0) goes back to the real time), `remove()` deletes
// the file's directory. Only Date.now() and `new Date()` of that process move; its performance.now() and timers do not.
import { mkdtempSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const CLOCK_IMPORT = new URL('./clock-offset-import.mjs', import.meta.url).pathname;
/** The helper re-reads the file at most every 2 ms; waiting this long after a write makes every later reading see it. */
const SEEN_AFTER_MS = 20;

export interface SteppedClock {
  readonly env: NodeJS.ProcessEnv;
  /** Sets the process's wall clock `offsetMs` from the real one; resolves once the process reads it. */
  step(offsetMs: number): Promise<void>;
  remove(): void;
}

export function steppedClock(initialOffsetMs = 0): SteppedClock {
  const dir = mkdtempSync(join(tmpdir(), 'portcullis-clock-'));
  const file = join(dir, 'offset');
  let n = 0;
  const write = (offsetMs: number): void => {
    // Whole or not at all: a read never sees half a number.
    const tmp = join(dir, `offset.${n++}`);
    writeFileSync(tmp, String(offsetMs));
    renameSync(tmp, file);
  };
  write(initialOffsetMs);
  return {
    env: {
      NODE_OPTIONS: `${process.env.NODE_OPTIONS ?? ''} --import ${CLOCK_IMPORT}`.trim(),
      PORTCULLIS_TEST_CLOCK_OFFSET_FILE: file,
    },
    async step(offsetMs) {
      write(offsetMs);
      await new Promise((resolve) => setTimeout(resolve, SEEN_AFTER_MS));
    },
    remove() {
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
