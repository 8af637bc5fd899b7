// A multi-worker gateway's processes, from /proc (Linux): its workers' pids, whether a process lives, and the end of
// every process of a gateway started in its own process group (stopped ones included).
import { readdirSync, readFileSync } from 'node:fs';
import type { GatewayProcess } from './gateway.js';

/**
 * The primary's workers, lowest pid (the first forked) first: its children that run the same command (not tsx's
 * esbuild service, when the sources run through tsx).
 */
export function workerPids(primary: number): number[] {
  const command = (pid: number): string => {
    try {
      return readFileSync(`/proc/${pid}/cmdline`, 'utf8');
    } catch {
      return ''; // exited meanwhile
    }
  };
  let tasks: string[];
  try {
    tasks = readdirSync(`/proc/${primary}/task`);
  } catch {
    return []; // the primary is gone
  }
  return tasks
    .flatMap((tid) => {
      try {
        return readFileSync(`/proc/${primary}/task/${tid}/children`, 'utf8').trim().split(' ').filter(Boolean).map(Number);
      } catch {
        return [];
      }
    })
    .filter((pid) => command(pid).includes('portcullis.js'))
    .sort((a, b) => a - b);
}

/** Every child of process `pid` (a primary's workers, a gateway's hashing process), from /proc; throws once it is gone. */
export function childrenOf(pid: number): number[] {
  return readdirSync(`/proc/${pid}/task`).flatMap((tid) =>
    readFileSync(`/proc/${pid}/task/${tid}/children`, 'utf8').trim().split(' ').filter(Boolean).map(Number),
  );
}

/** Whether process `pid` exists (a reaped one does not). */
export function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/**
 * Ends every process of a gateway spawned with `group: true`, whatever state it is in: SIGCONT for a stopped one,
 * then SIGKILL to the whole group (the primary may have exited and left workers behind), then the primary's
 * cleanup (temp files).
 */
export async function endGroup(gw: GatewayProcess): Promise<void> {
  for (const signal of ['SIGCONT', 'SIGKILL'] as const) {
    try {
      process.kill(-gw.child.pid!, signal);
    } catch {
      // no process left in the group
    }
  }
  await gw.cleanup();
}
