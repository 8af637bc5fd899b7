// Config reloads one at a time, the newest file winning. Each reload reads the file when it starts, so a reload asked
// for while one runs must not start beside it (it could commit first, then be overwritten by the older one): it waits
// for the running one and then reads the file. Any number of requests made meanwhile share that one next reload,
// since it reads the file after all of them.

/** How a request was served: it started a run, queued the next run, or joined the run already queued. */
export type Turn = 'started' | 'queued' | 'joined';

const ignore = (): void => undefined;

export class CoalescingQueue<T> {
  readonly #run: () => Promise<T>;
  #running: Promise<T> | undefined;
  /** The run that starts when the running one ends; undefined until someone asks for it. */
  #next: Promise<T> | undefined;

  constructor(run: () => Promise<T>) {
    this.#run = run;
  }

  /** Asks for a run that starts no earlier than now; `result` is that run's outcome. */
  request(): { readonly turn: Turn; readonly result: Promise<T> } {
    if (this.#next !== undefined) return { turn: 'joined', result: this.#next };
    if (this.#running === undefined) return { turn: 'started', result: this.#start() };
    this.#next = this.#running.then(ignore, ignore).then(() => {
      this.#next = undefined; // from here on, a request comes after this run's start: it queues the one after
      return this.#start();
    });
    return { turn: 'queued', result: this.#next };
  }

  #start(): Promise<T> {
    const running = this.#run();
    this.#running = running;
    void running.then(ignore, ignore).then(() => {
      if (this.#running === running) this.#running = undefined;
    });
    return running;
  }
}
