// Runs argon2id in a child process at the lowest CPU priority (hash-child.ts). In the gateway process argon2 would
// run on libuv's thread pool at the same priority as the event loop: on a busy core a login storm then adds its
// hashing time to proxied requests' latency (p99 2.1x under flat-out logins, issue 15). A thread's priority cannot
// be lowered from JavaScript without also lowering the pool's other work (WebCrypto verifies every access token
// there), hence a process of its own. It is started on first use, so a gateway that never hashes never pays for it.
import { fork, type ChildProcess } from 'node:child_process';
import type * as argon2 from 'argon2';

/** What PasswordHasher needs from argon2: the two operations that cost CPU. */
export interface Argon2Engine {
  hash(password: string, options: argon2.HashOptions & { raw?: false }): Promise<string>;
  /** Rejects on a malformed stored hash. */
  verify(hash: string, password: string): Promise<boolean>;
}

/** argon2 in this process, on libuv's thread pool (PORTCULLIS_HASH_IN_PROCESS=1; used to measure the difference). */
export async function inProcessEngine(): Promise<Argon2Engine> {
  const argon2 = await import('argon2');
  return { hash: (password, options) => argon2.hash(password, options), verify: (hash, password) => argon2.verify(hash, password) };
}

interface Pending {
  resolve(value: string | boolean): void;
  reject(err: Error): void;
  /** The process the call was sent to: only its end affects the call. */
  child: ChildProcess;
  /** What was sent, kept to send it again to a replacement process. */
  readonly message: Record<string, unknown>;
  /** Already sent again once: a second lost process fails the call. */
  resent: boolean;
}

/**
 * The hashing process could not be started: fork() failed for want of this process's descriptors, processes or
 * memory (EMFILE, ENFILE, EAGAIN, ENOMEM), or could not exec (E2BIG, ENOENT). Nothing was hashed; the call may be
 * made again, and starts a new process.
 */
export class HashProcessStartError extends Error {
  readonly code: string;
  constructor(code: string) {
    super(`password hashing process could not start (${code})`);
    this.name = 'HashProcessStartError';
    this.code = code;
  }
}

/**
 * The hashing process ended (or its channel broke) before answering, twice for the same call: the process and its
 * replacement were both lost (the kernel killing them for memory, say), or the engine was closed. Nothing says the
 * input was wrong; the call may be made again.
 */
export class HashProcessLostError extends Error {
  constructor(reason: string) {
    super(reason);
    this.name = 'HashProcessLostError';
  }
}

/**
 * The child-process engine. One process per gateway process, restarted if it dies. A call the dead process held is
 * sent once more to its replacement: hashing is pure, so the second answer is the one the first would have been.
 * Failed at once, a login in flight when the kernel's OOM killer took the process (it holds argon2's memory, the
 * likeliest target) refused the right password with 401, and a register answered 500.
 */
export class HashProcess implements Argon2Engine {
  #child: ChildProcess | undefined;
  /** Processes close() ended: their calls fail rather than start a new process. */
  readonly #closed = new WeakSet<ChildProcess>();
  readonly #pending = new Map<number, Pending>();
  #nextId = 0;

  hash(password: string, options: argon2.HashOptions & { raw?: false }): Promise<string> {
    return this.#call({ op: 'hash', password, options }) as Promise<string>;
  }

  verify(hash: string, password: string): Promise<boolean> {
    return this.#call({ op: 'verify', hash, password }) as Promise<boolean>;
  }

  /** Stops the child (it also exits by itself when this process goes away). */
  close(): void {
    if (this.#child !== undefined) this.#closed.add(this.#child);
    this.#child?.disconnect();
    this.#child = undefined;
  }

  #call(message: Record<string, unknown>): Promise<string | boolean> {
    return new Promise((resolve, reject) => {
      this.#send({ resolve, reject, message, resent: false });
    });
  }

  /** Sends `call` to the current process, starting one if there is none. */
  #send(call: Omit<Pending, 'child'>): void {
    let child: ChildProcess;
    try {
      child = this.#child ?? this.#start();
    } catch (err) {
      // The spawn failures node throws rather than reports (ENOMEM: the host out of memory; E2BIG: an environment
      // too large to exec): taken for a mismatch, the right password was refused with 401 for as long as it lasted.
      call.reject(new HashProcessStartError(String((err as { code?: unknown }).code ?? 'unknown')));
      return;
    }
    // A fork that failed for want of descriptors (EMFILE) has no pid and no channel; node reports it as an 'error'
    // event on the next tick. Unheard, that event was an uncaught exception: the whole gateway stopped at the first
    // login of a descriptor spike.
    if (child.pid === undefined) {
      if (this.#child === child) this.#child = undefined;
      child.once('error', (err: NodeJS.ErrnoException) => call.reject(new HashProcessStartError(err.code ?? 'unknown')));
      return;
    }
    const id = this.#nextId++;
    this.#pending.set(id, { ...call, child });
    // The channel keeps this process alive only while an answer is awaited. Ref'd at every send (it is idempotent):
    // calls sent on to a replacement arrive with others still pending, and a ref taken only on the first pending
    // call left the replacement's channel unref'd, so a CLI exited (code 13) with its calls unanswered.
    child.channel?.ref();
    child.send({ id, ...call.message }, (err) => {
      if (err) this.#lost(id, child, 'password hashing process unavailable');
    });
  }

  /** The process holding call `id` is gone or unreachable: send the call again once, or fail it. */
  #lost(id: number, child: ChildProcess, reason: string): void {
    const pending = this.#pending.get(id);
    if (pending === undefined || pending.child !== child) return;
    const current = this.#child === child;
    if (current) this.#child = undefined;
    if (pending.resent || this.#closed.has(child)) {
      this.#settle(id, undefined, new HashProcessLostError(reason));
    } else {
      this.#pending.delete(id);
      if (this.#pending.size === 0) child.channel?.unref();
      this.#send({ resolve: pending.resolve, reject: pending.reject, message: pending.message, resent: true });
    }
    // Dropped with its channel still open (a send to it failed): unended, it would stay alive and idle as long as
    // this process. Its 'disconnect' sends its other calls on as for any lost process.
    if (current && child.connected) child.disconnect();
  }

  #start(): ChildProcess {
    // From the sources (tsx) the child is TypeScript too; from dist/ it is plain JavaScript. tsx is named by its
    // resolved URL: `--import tsx` is resolved from the working directory, so a gateway or CLI run from the sources
    // anywhere but the checkout lost its hashing process at once (every register 500, every login 401).
    const fromSource = import.meta.url.endsWith('.ts');
    const child = fork(new URL(fromSource ? './hash-child.ts' : './hash-child.js', import.meta.url), [], {
      execArgv: fromSource ? ['--import', import.meta.resolve('tsx')] : [],
      stdio: ['ignore', 'ignore', 'inherit', 'ipc'],
      serialization: 'json',
    });
    // Neither the process nor its channel may keep the gateway alive.
    child.unref();
    child.channel?.unref();
    child.on('message', (reply: { id: number; value?: string | boolean; error?: true }) => {
      this.#settle(reply.id, reply.value, reply.error ? new Error('argon2 refused the input') : undefined);
    });
    // The channel's end, not only 'exit', fails what is awaited: the process is unref'd, so once its channel closes
    // nothing may hold the event loop until the exit is reported, and a CLI would end with its action neither done
    // nor failed (node's exit code 13, no message). No answer can come without the channel anyway.
    // Only this process's calls: its 'exit' can come after a new process took calls (the channel closed first).
    const gone = (): void => {
      if (this.#child === child) this.#child = undefined;
      for (const [id, pending] of [...this.#pending]) {
        if (pending.child === child) this.#lost(id, child, 'password hashing process exited');
      }
    };
    child.once('disconnect', gone);
    child.once('exit', gone);
    // Any later 'error' of the child (a signal it could not be sent) fails what it holds, never the gateway.
    child.on('error', gone);
    this.#child = child;
    return child;
  }

  #settle(id: number, value: string | boolean | undefined, err: Error | undefined): void {
    const pending = this.#pending.get(id);
    if (pending === undefined) return;
    this.#pending.delete(id);
    if (this.#pending.size === 0) {
      pending.child.channel?.unref();
      this.#child?.channel?.unref();
    }
    if (err !== undefined || value === undefined) pending.reject(err ?? new Error('empty reply'));
    else pending.resolve(value);
  }
}
