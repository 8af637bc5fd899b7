// A buffered, asynchronous writer of whole log lines to a file descriptor: the destination of every log line.
import { closeSync, writeSync, writev } from 'node:fs';
import { flushAtExit } from './exit-flush.js';

/** Options; every field has a default. */
export interface LineWriterOptions {
  /** Bytes gathered before a write is issued. Default 64 KiB. */
  readonly chunk?: number;
  /** Longest time a line waits in the buffer on an idle gateway. Default 200 ms. */
  readonly flushIntervalMs?: number;
  /** Bytes buffered while the descriptor does not keep up; lines beyond it are dropped and counted. Default 16 MiB. */
  readonly maxBuffered?: number;
  /**
   * The descriptor is shared with other processes writing lines (a cluster's stdout): each write then holds whole
   * lines and at most PIPE_BUF bytes, the most a pipe keeps in one piece between writers. Larger writes reach the
   * reader cut into pieces with other processes' bytes between them. Default false (64 KiB writes).
   */
  readonly shared?: boolean;
  /** Which of the process's log destinations this is, for the count of dropped lines. Default "stdout". */
  readonly destination?: LogDestination;
  /**
   * Once end() ran, the longest the writer waits for the descriptor to take what is left before it gives the rest up
   * (counted as dropped). Default 5 s.
   */
  readonly endBoundMs?: number;
}

/** Where the gateway's log lines go: stdout (pino's lines, and the access log without a file), or the access-log file. */
export type LogDestination = 'stdout' | 'access_log_file';

/** What LineWriter.watchFailures tells: the first failure of an episode, and its end. */
export interface FailureWatch {
  failed(code: string): void;
  recovered(dropped: number): void;
}
export const LOG_DESTINATIONS: readonly LogDestination[] = ['stdout', 'access_log_file'];

/**
 * Lines every writer of the process dropped since start, by destination (`portcullis_log_lines_dropped_total`): the
 * one sign of lost lines that does not travel through the destination that lost them. A stdout nobody reads (a log
 * shipper that stalled, a blocked `docker logs` driver) never takes the "Log Lines Dropped" line either.
 */
const droppedTotals: Record<LogDestination, number> = { stdout: 0, access_log_file: 0 };

/** Lines dropped so far by the writers of `destination` in this process. */
export function logLinesDropped(destination: LogDestination): number {
  return droppedTotals[destination];
}

/** Counts a line dropped by a destination that is no LineWriter (the pretty transport: logger.ts). */
export function countDroppedLine(destination: LogDestination): void {
  droppedTotals[destination]++;
}

/**
 * How long a writer that was ended waits for a descriptor that takes nothing. The stop of a gateway waits for its
 * last lines (a slow reader of a shared stdout still gets a worker's Gateway Stopped), but a reader that never reads
 * again (a stalled log shipper, a FIFO held open and never read) must not keep the process from exiting: the rest
 * is given up after this bound.
 */
export const END_BOUND_MS = 5_000;

/**
 * DEL and the C1 controls (U+007F-U+009F). JSON allows them raw in strings, and JSON.stringify and pino write them so,
 * but a terminal showing the log (`tail -f`, `docker logs`) can read U+009B as the start of an escape sequence, as
 * it reads ESC (which JSON escapes). Client text reaches log lines (a refused request target over HTTP/2, where the
 * path may hold any Latin-1 byte), so every line is written with these escaped.
 */
const TERMINAL_CONTROL = /[\u007f-\u009f]/;
const TERMINAL_CONTROLS = /[\u007f-\u009f]/g;

/** `\u00XX` for one of TERMINAL_CONTROLS: the same JSON string value, in ASCII. */
function escapeControl(c: string): string {
  return `\\u00${c.charCodeAt(0).toString(16)}`;
}

/** `\\u00XX`: in a JSON string, the six characters `\u00XX`, for a reader that shows values rather than JSON. */
function showControl(c: string): string {
  return `\\\\u00${c.charCodeAt(0).toString(16)}`;
}

/**
 * A JSON line whose DEL and C1 controls are replaced for a reader that parses it and prints the values (pino-pretty,
 * the "pretty" format on a terminal): each becomes the visible text `\u00XX` rather than the character itself.
 */
export function showTerminalControls(line: string): string {
  return TERMINAL_CONTROL.test(line) ? line.replace(TERMINAL_CONTROLS, showControl) : line;
}

/** POSIX's PIPE_BUF on Linux: a write to a pipe of at most this many bytes is never interleaved with another's. */
const PIPE_BUF = 4096;

/** The fewest bytes left in a buffer worth filling after a flush took its front; with less, a new one is taken. */
const MIN_TAIL = 4096;

/**
 * Encodes each line into a byte buffer as it is written and sends the filled buffers with one `fs.writev` at a
 * time, so lines never interleave and stay in order. Measured at about 1 µs for a request's three access lines
 * (bench/micro.ts, the file write included) against 6 µs through pino.destination({sync:false}) (sonic-boom 4).
 * pino writes here too (it accepts any object with `write(string)`), so application logs and access logs share one
 * ordered stream.
 *
 * Bytes rather than a string gathered for the write, for two reasons:
 * - a short write (a pipe to a slow reader) can end inside a multi-byte UTF-8 character; the rest must be sent as
 *   bytes, since re-decoding it as text turns the split character into replacement characters;
 * - a string of a hundred requests' lines is a rope of thousands of young objects spread over the heap, which the
 *   write had to walk and encode on the main thread at once (about 300 µs per 64 KiB in the gateway, measured);
 *   a line encoded as it is written is still in the cache.
 */
export class LineWriter {
  #fd: number;
  readonly #chunk: number;
  readonly #maxBuffered: number;
  /** options.shared: one buffer (at most PIPE_BUF bytes of whole lines, unless one line is longer) per write. */
  readonly #shared: boolean;
  readonly #destination: LogDestination;
  readonly #endBoundMs: number;
  /**
   * When end() ran, plus #endBoundMs, on performance.now(): past it, what the descriptor has not taken is given up
   * (0: not ending). Monotonic: a wall clock stepped back (NTP, a restored snapshot) must not hold the stop that long.
   */
  #giveUpAt = 0;
  readonly #timer: NodeJS.Timeout;
  /** Encoded lines waiting for the descriptor, oldest first, each buffer ending on a line boundary; their total. */
  #queue: Buffer[] = [];
  #queued = 0;
  /** Where the next line is encoded, and how many of its bytes are used. */
  #current: Buffer;
  #used = 0;
  #writing = false;
  /** Bytes handed to the running write. */
  #inFlight = 0;
  #dropped = 0;
  /**
   * Bytes that left the buffers since start (written, or lost to a failed write): the stream position of the next
   * byte to be sent. With `#reportEnd`, it tells whether a failed write lost the last drop report.
   */
  #sent = 0;
  /** A drop report in the buffers not yet written: its count, and the stream position just after it (-1: none). */
  #reportCount = 0;
  #reportEnd = -1;
  /** claim() queued a full buffer: the next commit() or write() starts writing it. */
  #flushDue = false;
  /** The queue starts with the unwritten tail of a line (after a short write): no reopen may happen before it. */
  #partial = false;
  /** end() or flushSync() ran: what is left is written without waiting for the timer, and keeps the process alive. */
  #ending = false;
  /** close() ran: the descriptor is closed once nothing is left to write (then #fd is -1). */
  #closing = false;
  /** close()'s promise and its resolver: settled once the descriptor is closed. */
  #closed: Promise<void> | undefined = undefined;
  #resolveClosed: (() => void) | undefined = undefined;
  /** A reopen asked for (SIGUSR1), done at the next line boundary: the opener of the new descriptor. */
  #reopen: (() => number) | undefined = undefined;
  /** Told when that opener throws (the old descriptor is kept). */
  #reopenFailed: ((err: unknown) => void) | undefined = undefined;
  /** watchFailures(): told when writes begin to fail, and when one succeeds again. */
  #failureWatch: FailureWatch | undefined = undefined;
  /** Writes are failing (the code of the first failure), and the destination's dropped total when they began. */
  #failing: { readonly code: string; readonly droppedBefore: number } | undefined = undefined;

  constructor(fd: number, options: LineWriterOptions = {}) {
    this.#fd = fd;
    this.#shared = options.shared ?? false;
    this.#destination = options.destination ?? 'stdout';
    this.#endBoundMs = options.endBoundMs ?? END_BOUND_MS;
    this.#chunk = this.#shared ? PIPE_BUF : (options.chunk ?? 65_536);
    this.#maxBuffered = options.maxBuffered ?? 16 * 1024 * 1024;
    this.#current = Buffer.allocUnsafeSlow(this.#chunk);
    this.#timer = setInterval(() => this.flush(), options.flushIntervalMs ?? 200);
    this.#timer.unref();
    // An exit the gateway's own stop did not run lost the lines still buffered (up to 200 ms of them): node:cluster
    // ends a worker at once, exit 0, when its primary dies (a `kill -9` of the main pid), and the Request Completed
    // lines of requests it had answered were lost.
    flushAtExit(this);
  }

  /** The exit's flush (exit-flush.ts): what can be written synchronously now. */
  flushAtExit(): void {
    this.flushSync();
  }

  /**
   * Tells `watch` when writes to the descriptor begin to fail (ENOSPC, EIO, EFBIG; not a full pipe's EAGAIN, which
   * keeps the lines) and when one succeeds again, with the lines dropped meanwhile: once per episode, however many
   * writes fail. The drop report is written to the failing descriptor itself, so without this a full disk under the
   * access-log file left the process log silent for as long as it lasted.
   */
  watchFailures(watch: FailureWatch): void {
    this.#failureWatch = watch;
  }

  #noteFailure(code: string | undefined): void {
    if (this.#failing !== undefined) return;
    this.#failing = { code: code ?? 'unknown', droppedBefore: droppedTotals[this.#destination] };
    this.#failureWatch?.failed(this.#failing.code);
  }

  #noteSuccess(): void {
    if (this.#failing === undefined) return;
    const dropped = droppedTotals[this.#destination] - this.#failing.droppedBefore;
    this.#failing = undefined;
    this.#failureWatch?.recovered(dropped);
  }

  /**
   * Appends one or more complete lines (each ending in "\n"). Never blocks; the write happens later. DEL and C1
   * controls are written escaped (TERMINAL_CONTROL): inside a JSON string, the only place JSON lets them be, that is
   * the same value. (Lines encoded in place through claim() are ASCII without controls: line-bytes.ts.)
   */
  write(lines: string): boolean {
    if (this.#closing) return false;
    if (TERMINAL_CONTROL.test(lines)) lines = lines.replace(TERMINAL_CONTROLS, escapeControl);
    // Bytes being written count too: a descriptor that stalls must not let the buffers grow past the limit.
    if (this.#queued + this.#used + this.#inFlight >= this.#maxBuffered) {
      this.#dropped++;
      droppedTotals[this.#destination]++;
      return false;
    }
    if (this.#append(lines) || this.#flushDue) {
      this.#flushDue = false;
      this.flush();
    }
    return true;
  }

  /**
   * Room for one line of at most `bound` bytes, to be encoded in place (ByteSink: the access log's fast path): its
   * start in `claimedBuffer`, or -1 when the line should go through write() instead (longer than a quarter of a
   * chunk, or the buffers are full, where write() counts the drop). A buffer that had no room left is queued, and
   * written from the next commit() or write() on, as write() does (flushing now could append to the claimed room).
   */
  claim(bound: number): number {
    if (this.#closing) return -1;
    if (bound > this.#chunk / 4 || this.#queued + this.#used + this.#inFlight >= this.#maxBuffered) return -1;
    if (this.#used + bound > this.#current.length) {
      this.#seal();
      if (this.#current.length < bound) this.#current = Buffer.allocUnsafeSlow(this.#chunk);
      this.#flushDue = true;
    }
    return this.#used;
  }

  /** Where claim() gave room. */
  get claimedBuffer(): Buffer {
    return this.#current;
  }

  /** The claimed line is encoded up to `end`. */
  commit(end: number): void {
    this.#used = end;
    if (this.#flushDue) {
      this.#flushDue = false;
      this.flush();
    }
  }

  /** Encodes `lines` after what is buffered; true when a filled buffer was queued (then it should be written). */
  #append(lines: string): boolean {
    // UTF-8 takes at most 3 bytes per UTF-16 unit: a bound that needs no second pass over the line.
    if (this.#used + lines.length * 3 <= this.#current.length) {
      this.#used += this.#current.write(lines, this.#used);
      return false;
    }
    const bytes = Buffer.byteLength(lines);
    if (this.#used + bytes <= this.#current.length) {
      this.#used += this.#current.write(lines, this.#used);
      return false;
    }
    this.#seal();
    if (this.#shared && bytes > this.#chunk && lines.indexOf('\n') < lines.length - 1) {
      // Several lines that together pass PIPE_BUF: each goes its own way, so only a line longer than PIPE_BUF by
      // itself can be written in more than one piece.
      let queued = false;
      for (let start = 0; start < lines.length; ) {
        const end = lines.indexOf('\n', start) + 1 || lines.length;
        queued = this.#append(lines.slice(start, end)) || queued;
        start = end;
      }
      return queued;
    }
    if (bytes > this.#chunk / 4) {
      // A long line travels in a buffer of its own size: copied into the shared one, it could leave most of a
      // buffer unused, and the memory held would no longer follow `maxBuffered`.
      this.#enqueue(Buffer.from(lines));
    } else {
      if (this.#current.length < bytes) this.#current = Buffer.allocUnsafeSlow(this.#chunk);
      this.#used = this.#current.write(lines, 0);
    }
    return true;
  }

  /** Starts writing what is buffered, unless a write is already running (its callback continues). */
  flush(): void {
    if (this.#writing || this.#fd < 0) return;
    if (this.#reopen !== undefined && !this.#partial) this.#swapDescriptor();
    this.#reportDrops();
    // Shared: what the current buffer holds waits while full buffers are queued (each write then sends a full
    // PIPE_BUF rather than the few lines that came during the last write); the timer or end() sends it.
    if (!this.#shared || this.#queue.length === 0 || this.#ending) this.#seal();
    if (this.#queue.length === 0) return;
    let out: Buffer[];
    if (this.#partial && this.#reopen !== undefined) {
      // Finish only the half-written line on the old descriptor; everything after it belongs to the new one. Every
      // queued buffer ends on a line boundary, so the line's end is in the first one.
      const first = this.#queue[0]!;
      const end = first.indexOf(NEWLINE) + 1;
      out = [first.subarray(0, end)];
      if (end === first.length) this.#queue.shift();
      else this.#queue[0] = first.subarray(end);
      this.#queued -= end;
    } else if (this.#shared) {
      // Every queued buffer holds whole lines within a chunk of PIPE_BUF (a longer line has one to itself, which no
      // pipe can keep whole): one per write, the rest after it. A write of at most PIPE_BUF is never short on a pipe.
      out = [this.#queue.shift()!];
      this.#queued -= out[0]!.length;
    } else {
      out = this.#queue;
      this.#queue = [];
      this.#queued = 0;
    }
    this.#writing = true;
    this.#inFlight = byteLength(out);
    writev(this.#fd, out, this.#afterWrite);
  }

  /**
   * Lines refused since the last report: one warning line after what is buffered, once there is room for it (a
   * descriptor that stays stalled gets no growing series of reports; the count adds up until it can be written).
   */
  #reportDrops(): void {
    // One report on its way at a time: a write that fails to deliver it puts its count back (#lost).
    if (this.#dropped === 0 || this.#reportEnd !== -1 || this.#queued + this.#used + this.#inFlight >= this.#maxBuffered) return;
    this.#append(`{"level":40,"time":${Date.now()},"service":"portcullis","dropped":${this.#dropped},"msg":"Log Lines Dropped"}\n`);
    this.#reportCount = this.#dropped;
    this.#reportEnd = this.#sent + this.#inFlight + this.#queued + this.#used;
    this.#dropped = 0;
  }

  /** `bytes` more bytes of the stream are written. */
  #delivered(bytes: number): void {
    this.#sent += bytes;
    if (this.#reportEnd !== -1 && this.#sent >= this.#reportEnd) this.#reportEnd = -1;
  }

  /**
   * A failed write lost `buffers` (whole lines, but for the tail of a half-written line at their start), which came
   * after `ahead` bytes it kept: their lines are counted as dropped, and a drop report among them gives its count
   * back instead of counting as one line.
   */
  #lost(buffers: readonly Buffer[], ahead = 0): void {
    const bytes = byteLength(buffers);
    let lines = 0;
    for (const b of buffers) lines += countLines(b);
    const from = this.#sent + ahead;
    // The lines of requests and events lost (the drop report among them is none of those).
    let real = lines;
    if (this.#reportEnd > from && this.#reportEnd <= from + bytes) {
      lines += this.#reportCount - 1;
      real--;
      this.#reportEnd = -1;
    }
    droppedTotals[this.#destination] += real;
    this.#dropped += lines;
    this.#sent += bytes;
  }

  readonly #afterWrite = (err: NodeJS.ErrnoException | null, written: number, sent: Buffer[]): void => {
    this.#written(err, written, sent);
    this.#closeIfIdle();
  };

  #written(err: NodeJS.ErrnoException | null, written: number, sent: Buffer[]): void {
    this.#writing = false;
    this.#inFlight = 0;
    if (err) {
      if (err.code === 'EAGAIN') {
        if (this.#pastEndBound()) {
          // Ended, and the descriptor has not taken the rest within the bound (a reader that never reads): given
          // up, so that the process can exit.
          this.#abandon(sent);
          return;
        }
        // A non-blocking pipe that is full: keep the lines, in order, and try again shortly.
        this.#requeue(sent);
        const retry = setTimeout(() => this.flush(), 10);
        if (!this.#ending) retry.unref(); // once ending, the retry keeps the process alive until written or given up
        return;
      }
      if (this.#ending) {
        // Ending, and the descriptor fails: the report of the drops would fail (and be counted, and reported) in
        // turn, forever, and keep the process from exiting. What is left is given up.
        this.#abandon(sent);
        return;
      }
      this.#noteFailure(err.code);
      // A full disk (ENOSPC, EFBIG) or a closed stdout: the lines are lost and counted. But the rest of a line half
      // written by a short write before the failure is kept, and sent first once the descriptor takes bytes again:
      // dropped, the next line written would be appended to the torn half, one line that is no JSON in place of
      // two. Not when a reopen waits for it: the new file starts clean, the old one ends with the torn half.
      if (this.#partial && this.#reopen === undefined) {
        const first = sent[0]!;
        const end = first.indexOf(NEWLINE) + 1;
        this.#requeue([first.subarray(0, end)]);
        this.#lost(end === first.length ? sent.slice(1) : [first.subarray(end), ...sent.slice(1)], end);
        return; // the flush timer tries again
      }
      this.#lost(sent);
    } else if (written < byteLength(sent)) {
      // A short write: the rest goes first next time; it may start inside a line, even inside a character.
      this.#noteSuccess();
      this.#delivered(written);
      if (this.#pastEndBound()) {
        this.#abandon(unwritten(sent, written)); // a reader too slow to take the rest within the bound
        return;
      }
      this.#requeue(unwritten(sent, written));
      this.#partial = true;
      this.flush();
      return;
    } else {
      this.#noteSuccess();
      this.#delivered(written);
    }
    this.#partial = false;
    if (this.#reopen !== undefined) {
      this.flush();
      return;
    }
    // Buffers filled during the write go now; a partly filled one (or a drop report) waits for the timer, unless the
    // writer is ending.
    if (this.#queue.length > 0 || (this.#ending && (this.#used > 0 || this.#dropped > 0))) this.flush();
  }

  /**
   * Switches to a new descriptor (log rotation: the file was renamed, `open` creates it again). Runs once no write
   * is running and no line is half written, so every line lands whole in the old file or the new one; lines
   * written meanwhile wait in the buffer. The old descriptor is closed. If `open` throws, the old one is kept and
   * `onFailed` is told.
   */
  reopen(open: () => number, onFailed?: (err: unknown) => void): void {
    if (this.#closing) return; // closed for good: a new file would never be closed
    this.#reopen = open;
    this.#reopenFailed = onFailed;
    this.flush();
  }

  #swapDescriptor(): void {
    const open = this.#reopen!;
    this.#reopen = undefined;
    let next: number;
    try {
      next = open();
    } catch (err) {
      // Cannot create the new file (permissions, disk): keep writing to the old one rather than lose lines.
      this.#reopenFailed?.(err);
      return;
    }
    const old = this.#fd;
    this.#fd = next;
    try {
      closeSync(old);
    } catch {
      // already closed: nothing to do
    }
  }

  /** Ended more than endBoundMs ago: a descriptor that still does not take everything is given up. */
  #pastEndBound(): boolean {
    return this.#ending && performance.now() >= this.#giveUpAt;
  }

  /**
   * Gives up what is left to write, `unsent` (a failed write's buffers) first: ending, with a descriptor that fails or
   * takes nothing within the bound. Its lines are counted as dropped; the drop report among them is not one.
   */
  #abandon(unsent: readonly Buffer[]): void {
    this.#seal();
    let lines = 0;
    for (const b of unsent) lines += countLines(b);
    for (const b of this.#queue) lines += countLines(b);
    if (this.#reportEnd !== -1) lines--; // a report not yet delivered is among them
    droppedTotals[this.#destination] += Math.max(0, lines);
    this.#queue = [];
    this.#queued = 0;
    this.#used = 0;
    this.#dropped = 0;
    this.#reportEnd = -1;
    this.#partial = false;
  }

  /** Moves the filled part of the current buffer to the queue; the rest of it is filled next, when large enough. */
  #seal(): void {
    if (this.#used === 0) return;
    this.#enqueue(this.#current.subarray(0, this.#used));
    const rest = this.#current.length - this.#used;
    // (Shared, the chunk is PIPE_BUF itself: a quarter of it is worth filling.)
    const minTail = this.#shared ? this.#chunk / 4 : MIN_TAIL;
    this.#current = rest >= minTail ? this.#current.subarray(this.#used) : Buffer.allocUnsafeSlow(this.#chunk);
    this.#used = 0;
  }

  #enqueue(b: Buffer): void {
    this.#queued += b.length;
    const last = this.#queue.length - 1;
    const tail = this.#queue[last];
    const adjacent = tail !== undefined && tail.buffer === b.buffer && tail.byteOffset + tail.length === b.byteOffset;
    // (Buffer.from puts short lines in a shared pool, so two long lines can be adjacent: never past a chunk when shared.)
    if (adjacent && (!this.#shared || tail.length + b.length <= this.#chunk)) {
      // The next region of the same buffer (flushes that found the descriptor busy): one region, not one per flush,
      // so a descriptor that stalls does not collect a growing list to send at every retry.
      this.#queue[last] = Buffer.from(b.buffer, tail.byteOffset, tail.length + b.length);
      return;
    }
    this.#queue.push(b);
  }

  /** Puts buffers that could not be written back at the front of the queue. */
  #requeue(buffers: Buffer[]): void {
    this.#queue = buffers.concat(this.#queue);
    this.#queued += byteLength(buffers);
  }

  /**
   * Writes everything now, synchronously (shutdown, fatal errors). Whatever cannot go synchronously (a write is
   * running, or a non-blocking pipe is full) follows asynchronously instead, in order, and keeps the process alive
   * until it is written, or until endBoundMs has passed: then the rest is given up and counted.
   */
  flushSync(): void {
    if (!this.#ending) {
      this.#ending = true;
      this.#giveUpAt = performance.now() + this.#endBoundMs;
    }
    // A write is running: writing now would land out of order (or inside its line). Its callback writes the rest.
    if (this.#writing || this.#fd < 0) return;
    // Twice: a drop report that found the buffers full in the first pass has room in the second.
    for (let pass = 0; pass < 2; pass++) {
      this.#reportDrops();
      this.#seal();
      while (this.#queue.length > 0) {
        const first = this.#queue[0]!;
        let written: number;
        try {
          written = writeSync(this.#fd, first);
        } catch (err) {
          if ((err as NodeJS.ErrnoException).code === 'EAGAIN') this.flush(); // the pipe is full: go on asynchronously
          else this.#abandon([]); // stdout already closed: nothing left to tell
          return;
        }
        this.#queued -= written;
        this.#delivered(written);
        // A buffer ends on a line boundary: only a short write leaves a line half written (no reopen before its end).
        this.#partial = written < first.length;
        if (this.#partial) this.#queue[0] = first.subarray(written);
        else this.#queue.shift();
      }
    }
  }

  /** Nothing is left to write and no write is running: every line was written, or dropped and counted. */
  get settled(): boolean {
    return !this.#writing && this.#queue.length === 0 && this.#used === 0;
  }

  /** Stops the idle flush timer and writes what is left. */
  end(): void {
    clearInterval(this.#timer);
    this.flushSync();
  }

  /**
   * end(), then the descriptor is closed once what is left has been written (at once, unless a write is running or
   * a full pipe makes the rest go asynchronously). For a descriptor of the writer's own (an access-log file) in a
   * process that goes on: an embedded gateway's close() left it open. Lines written after close() are dropped, and
   * the closed number is never written to again (the kernel may hand it to another file). Resolves once the
   * descriptor is closed: a write still running when close() is called ends later, and a caller that went on at once
   * (an embedded gateway's close()) still held the file.
   */
  close(): Promise<void> {
    this.#closing = true;
    this.#closed ??= new Promise<void>((resolve) => (this.#resolveClosed = resolve));
    this.end();
    this.#closeIfIdle();
    return this.#closed;
  }

  #closeIfIdle(): void {
    if (!this.#closing || this.#writing || this.#queue.length > 0 || this.#used > 0) return;
    if (this.#fd >= 0) {
      const fd = this.#fd;
      this.#fd = -1;
      try {
        closeSync(fd);
      } catch {
        // already closed: nothing to do
      }
    }
    this.#resolveClosed?.();
  }
}

const NEWLINE = 0x0a;

function byteLength(buffers: readonly Buffer[]): number {
  let n = 0;
  for (const b of buffers) n += b.length;
  return n;
}

/** What a short write of `written` bytes left of `buffers`. */
function unwritten(buffers: readonly Buffer[], written: number): Buffer[] {
  let i = 0;
  while (written >= buffers[i]!.length) written -= buffers[i++]!.length;
  return [buffers[i]!.subarray(written), ...buffers.slice(i + 1)];
}

/** UTF-8 never uses the newline byte inside a multi-byte character, so counting newline bytes counts lines. */
function countLines(b: Buffer): number {
  let n = 0;
  for (let i = b.indexOf(NEWLINE); i !== -1; i = b.indexOf(NEWLINE, i + 1)) n++;
  return n;
}
