// Runs an exit once what the process wrote to stdout or stderr has left it. Node writes them synchronously to files
// and terminals, but to a pipe asynchronously on POSIX (a supervisor's, a container runtime's, a test's): a line
// written just before process.exit() or a re-raised signal is lost whenever the pipe is full, its reader behind.

/**
 * Calls `done` once everything written to `stream` so far is out (a stream that failed counts as done), or after
 * `boundMs` at most when given: an exit that must not wait on a reader that never reads.
 */
export function whenFlushed(stream: NodeJS.WritableStream, done: () => void, boundMs?: number): void {
  let called = false;
  const finish = (): void => {
    if (called) return;
    called = true;
    if (bound !== undefined) clearTimeout(bound);
    done();
  };
  // Not unref'd: the exit is the process's next step, and nothing else may be left to keep it alive meanwhile.
  const bound = boundMs === undefined ? undefined : setTimeout(finish, boundMs);
  // An empty write's callback runs after every write queued before it.
  try {
    stream.write('', () => finish());
  } catch {
    finish(); // the stream is already destroyed (the reader went away): nothing more can reach it
  }
}
