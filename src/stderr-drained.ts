// Runs an exit once what the process wrote on stderr has left it. Node writes stderr synchronously to files and
// terminals, but to a pipe asynchronously on POSIX (a supervisor's or a container runtime's): a line written just
// before process.exit() or a re-raised signal is lost whenever the pipe is full, its reader behind.

/** Calls `then` at once when stderr holds nothing unwritten, else once it drains, or after `boundMs` at most. */
export function whenStderrDrained(boundMs: number, then: () => void): void {
  if (process.stderr.writableLength === 0) {
    then();
    return;
  }
  let done = false;
  const finish = (): void => {
    if (done) return;
    done = true;
    clearTimeout(bound);
    process.stderr.off('drain', finish);
    then();
  };
  // Not unref'd: the exit is the process's next step, and nothing else may be left to keep it alive meanwhile.
  const bound = setTimeout(finish, boundMs);
  process.stderr.once('drain', finish);
}
