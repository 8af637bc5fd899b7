// `check-config` ends its process once its verdict is out. It imports and runs plugin code (create(), close()), and
// that code may leave something behind that keeps node's event loop alive: a create() past plugin_load_timeout whose
// promise still waits on a timer or a connection, a client or interval an instance opened and its close() did not
// end. Waiting for those to go away by themselves would make a command that has already answered hang for as long as
// they last (a minute, or for ever), which a deploy script or CI step calling it cannot tell from a check still
// running.

/** Calls `done` once everything written to `stream` so far is out (a stream that failed counts as done). */
function whenFlushed(stream: NodeJS.WriteStream, done: () => void): void {
  // An empty write's callback runs after every write queued before it. Pipes and files are written synchronously on
  // Linux and macOS, so this is one tick there; a pipe elsewhere (Windows) may still be draining.
  try {
    stream.write('', () => done());
  } catch {
    done(); // the stream is already destroyed (the reader went away): nothing more can reach it
  }
}

/**
 * Ends the process with `code` once check-config's verdict (`config ok: …` on stdout, or the error on stderr) has been
 * flushed, whatever plugin code left running. Called after the verdict is written (main()'s `finally`).
 */
export function exitWithVerdict(code: number): void {
  whenFlushed(process.stdout, () => whenFlushed(process.stderr, () => process.exit(code)));
}
