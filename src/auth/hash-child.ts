// The password-hashing process (see hash-process.ts): runs argon2id at the lowest CPU priority, so that a login
// storm never takes CPU from proxying in the gateway process. Messages: { id, op: 'hash' | 'verify', ... } → { id, value } | { id, error }.
import * as argon2 from 'argon2';
import { readdirSync } from 'node:fs';
import { setPriority } from 'node:os';

/**
 * Lowers every thread of this process to nice 19. On Linux a nice value is per thread, and libuv's pool threads
 * (where argon2 runs) may already exist (the module loader reads files through them), so each thread is set by its
 * id; a thread created later inherits the value of its creator.
 */
function lowerPriority(): void {
  try {
    for (const tid of readdirSync('/proc/self/task')) setPriority(Number(tid), 19);
  } catch {
    // not Linux, or not permitted: hashing still happens outside the gateway process
  }
}
lowerPriority();
let lowered = false;

type Request =
  | { id: number; op: 'hash'; password: string; options: argon2.HashOptions & { raw?: false } }
  | { id: number; op: 'verify'; hash: string; password: string };

async function answer(request: Request): Promise<string | boolean> {
  return request.op === 'hash' ? argon2.hash(request.password, request.options) : argon2.verify(request.hash, request.password);
}

process.on('message', (request: Request) => {
  answer(request).then(
    (value) => {
      // Once more after the first hash, for pool threads that the first call started.
      if (!lowered) lowerPriority();
      lowered = true;
      process.send?.({ id: request.id, value });
    },
    // Only the fact of failure travels (a malformed stored hash): never the input.
    () => process.send?.({ id: request.id, error: true }),
  );
});
// The gateway went away (stopped or crashed): nothing left to hash for.
process.on('disconnect', () => process.exit(0));
