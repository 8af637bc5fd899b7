// SQLite connections that must never be closed: the process's exit releases their descriptors instead. Closing the
// last connection to a file in WAL mode checkpoints the -wal into the database through the -shm mapping, then deletes
// the -wal and -shm at their paths. With the -shm unwritable (immutable, a read-only mount) the checkpoint's write to
// the mapping is a SIGBUS that ends the process; with the -wal or -shm deleted or replaced under the connection, the
// files it deletes are another's: a new store's, or one whose writer crashed, its committed rows in that -wal alone.
// The kernel closing the descriptors does neither: the -wal stays for the next opener to recover, as after a crash.
import type Database from 'better-sqlite3';

/** Referenced here so no collection finalizes one (better-sqlite3's destructor closes the connection). */
const leftOpen = new Set<Database.Database>();

/**
 * Ends the process from its 'exit' event. process.exit() never returns, so the listeners after this one (an embedding
 * application's, added once the gateway stopped) are run here first, in their order, as node would have; and it
 * exits with process.exitCode as the listeners left it (one may set it as the process exits), not with the code the
 * event began with.
 */
function exitNow(code: number): void {
  const listeners = process.listeners('exit');
  for (const listener of listeners.slice(listeners.indexOf(exitNow) + 1)) listener.call(process, code);
  process.exit();
}

/**
 * Keeps `db` open until the process exits, and makes that exit skip Node's environment teardown, where
 * better-sqlite3's cleanup hook closes every connection still open (and SQLite's close does what this avoids). A
 * process that ends by process.exit() skips the teardown already; one whose event loop runs dry (a gateway stopped
 * with nothing left open, a CLI command) ends through its 'exit' event, where process.exit() ends it at once, with the
 * code node would have exited with, once every other 'exit' listener ran (exitNow).
 */
export function leaveOpenUntilExit(db: Database.Database): void {
  if (leftOpen.size === 0) process.on('exit', exitNow);
  leftOpen.add(db);
}
