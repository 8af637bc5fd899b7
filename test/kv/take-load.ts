// The silence false-alarm tests' load: closed-loop workers each sending one take at a time, counting what Redis
// decided and what failed by cause, so a test can tell the failures a pause causes from those of an ended connection.

export interface TakeLoad {
  /** Takes decided so far. */
  readonly decided: number;
  /** Failed takes by cause: the error's cause's message, else `Name: message`. */
  readonly failures: Map<string, number>;
  /** Stops the workers and waits for their last takes. */
  stop(): Promise<void>;
}

/**
 * Starts `workers` workers; worker w's i-th take is `take(bucket(w, i))`, the next sent once it settled and a
 * setImmediate passed.
 */
export function startTakeLoad(take: (bucket: string) => Promise<unknown>, workers: number, bucket: (worker: number, i: number) => string): TakeLoad {
  let stopped = false;
  let decided = 0;
  const failures = new Map<string, number>();
  const running: Array<Promise<void>> = [];
  for (let w = 0; w < workers; w++) {
    running.push((async () => {
      for (let i = 0; !stopped; i++) {
        await take(bucket(w, i)).then(
          () => void decided++,
          (err: unknown) => {
            const cause = (err as { cause?: { message?: string } }).cause?.message ?? `${(err as Error).name}: ${(err as Error).message}`;
            failures.set(cause, (failures.get(cause) ?? 0) + 1);
          },
        );
        await new Promise((r) => setImmediate(r));
      }
    })());
  }
  return {
    get decided() {
      return decided;
    },
    failures,
    async stop() {
      stopped = true;
      await Promise.all(running);
    },
  };
}
