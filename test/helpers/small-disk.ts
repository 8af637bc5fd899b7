// A 64 KiB tmpfs for tests of a gateway whose access-log disk fills up (ENOSPC): mounted when called (as root, as CI
// runs), unmounted and removed in node:test's `after`, after the test's own cleanups.
import { after } from 'node:test';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createClient, type TestClient } from './http.js';

export interface SmallDisk {
  /** Where the tmpfs is mounted. */
  readonly mountPoint: string;
  /** A client for the test, closed first in `after`. */
  readonly client: TestClient;
  /** Run in reverse order in `after` once the client is closed, before the unmount: gateways, backends. */
  readonly cleanups: Array<() => Promise<void>>;
}

/** Mounts a 64 KiB tmpfs on a new directory named from `prefix` in the temp dir; call at a test file's top level. */
export function smallDisk(prefix: string): SmallDisk {
  const client = createClient();
  const mountPoint = mkdtempSync(join(tmpdir(), prefix));
  execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=64k', 'tmpfs', mountPoint]);
  const cleanups: Array<() => Promise<void>> = [];
  after(async () => {
    await client.close();
    for (const cleanup of cleanups.reverse()) await cleanup();
    execFileSync('umount', [mountPoint]);
    rmSync(mountPoint, { recursive: true, force: true });
  });
  return { mountPoint, client, cleanups };
}
