// The argon2 hashing processes (src/auth/hash-child.ts) an in-process gateway of this test process started: found in
// /proc so a test can pause (SIGSTOP: every hash waits, the queue fills), resume or kill exactly its own.
import { readdirSync, readFileSync } from 'node:fs';
import { waitFor } from './wait.js';

/** Pids of this process's hashing children (hash-child in their command line), from /proc (Linux). */
export function hashChildren(): Set<number> {
  const pids = readdirSync('/proc/self/task').flatMap((tid) =>
    readFileSync(`/proc/self/task/${tid}/children`, 'utf8').trim().split(' ').filter(Boolean).map(Number),
  );
  return new Set(
    pids.filter((pid) => {
      try {
        return readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes('hash-child');
      } catch {
        return false; // already gone
      }
    }),
  );
}

/** The one hashing child started since `before` was taken; throws unless there is exactly one. */
export function newHashChild(before: ReadonlySet<number>): number {
  const fresh = [...hashChildren()].filter((pid) => !before.has(pid));
  if (fresh.length !== 1) throw new Error(`expected one new hashing process, found ${fresh.length}`);
  return fresh[0]!;
}

/** Every process below this one (children, grandchildren…), from /proc (Linux). */
function descendants(pid = process.pid): number[] {
  let tasks: string[];
  try {
    tasks = readdirSync(`/proc/${pid}/task`);
  } catch {
    return [];
  }
  const children = tasks.flatMap((tid) => {
    try {
      return readFileSync(`/proc/${pid}/task/${tid}/children`, 'utf8').trim().split(' ').filter(Boolean).map(Number);
    } catch {
      return [];
    }
  });
  return children.flatMap((child) => [child, ...descendants(child)]);
}

function isHashChild(pid: number): boolean {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes('hash-child');
  } catch {
    return false; // already gone
  }
}

/**
 * The hashing process of a CLI run started meanwhile (a grandchild, not one of this process's own children), once
 * it exists: a test pauses it (SIGSTOP) to hold the CLI mid-hash, or kills it.
 */
export async function cliHashChild(): Promise<number> {
  const own = new Set(descendants().filter(isHashChild));
  let found: number | undefined;
  await waitFor(() => {
    found = descendants().find((pid) => !own.has(pid) && isHashChild(pid));
    return found !== undefined;
  }, "the CLI's hashing process", 20_000, 5);
  return found!;
}
