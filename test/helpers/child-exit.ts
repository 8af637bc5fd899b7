// A child process's end as a test should read it: its exit code once its output has been read too.
import type { ChildProcess } from 'node:child_process';
import { once } from 'node:events';

/**
 * Resolves with the child's exit code and signal once it has exited and its stdout and stderr pipes have ended. Node
 * emits 'exit' before the parent has read all of the output: a line written just before the exit (a worker's
 * "Gateway Stopped", a CLI's last line) can still be in the pipe. The wait for the pipes is bounded (2 s by
 * default), since a process left behind, such as an orphaned worker or grandchild, can hold them open.
 */
export function childExit(
  child: ChildProcess,
  pipeBoundMs = 2_000,
): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
  const pipes = [child.stdout, child.stderr].filter((p) => p !== null).map((p) => once(p, 'close'));
  const outputEnded = Promise.all(pipes).catch(() => undefined);
  return new Promise((resolve) =>
    child.once('exit', (code, signal) => {
      const bound = new Promise((done) => setTimeout(done, pipeBoundMs).unref());
      void Promise.race([outputEnded, bound]).then(() => resolve({ code, signal }));
    }),
  );
}
