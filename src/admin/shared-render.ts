// One render shared by the admin reads that arrive together. GET /metrics renders the whole registry's text and
// GET /api/status the dashboard's JSON, on the one event loop that also proxies; each request rendered its own, so a
// client sending many at once (250 connections pipelining /metrics and reading nothing) made the gateway render
// thousands of times in a row, and a proxied request waited seconds behind them. Prometheus scrapes every 15 s or so,
// a dashboard every 2 s: nothing needs two renders of the same thing at the same moment.

/** How the requests that arrive while a render runs are answered. */
export type SharedRenderMode =
  /**
   * They wait for the next render, started once the running one ends, and share it: every answer is rendered after
   * its request arrived, so it holds everything counted before (a scrape right after a request sees that request).
   */
  | 'after-arrival'
  /** They share the running render: a snapshot taken a moment before they arrived (the dashboard's status). */
  | 'join-running';

/**
 * Wraps `render` so that at most one run is under way and at most one is waiting, whatever the number of requests.
 * A run starts on the loop's next turn (setImmediate) rather than at once: every request of the connections read in
 * the same turn shares it; a render made only of synchronous work would otherwise be over before the next request
 * arrived, and nothing would ever be shared. Nothing is kept once a run has answered its requests: the next request
 * gets a new render. A rejection goes to every request that shared the run, and the next request renders anew.
 */
export function sharedRender<T>(render: () => Promise<T>, mode: SharedRenderMode): () => Promise<T> {
  /** The run under way, if any (started: its render has been called). */
  let running: Promise<T> | undefined;
  /** The run requests join: not started yet (waiting for its turn, or for the running one to end). */
  let waiting: Promise<T> | undefined;
  return () => {
    if (waiting !== undefined) return waiting;
    if (mode === 'join-running' && running !== undefined) return running;
    const before = running;
    const start = async (): Promise<T> => {
      if (before !== undefined) await before.then(noop, noop);
      await new Promise<void>((resolve) => setImmediate(resolve));
      // From here a new request starts (or waits for) the next run: this one may already have read what it counts.
      waiting = undefined;
      running = run;
      try {
        return await render();
      } finally {
        if (running === run) running = undefined;
      }
    };
    const run: Promise<T> = start();
    waiting = run;
    return run;
  };
}

function noop(): void {}

/**
 * sharedRender per key (a listing's query): requests with the same key share runs as above, different keys run on
 * their own. A key is forgotten once no request waits on it, so what is kept is bounded by the requests under way.
 */
export function sharedRenderByKey<T>(render: (key: string) => Promise<T>, mode: SharedRenderMode): (key: string) => Promise<T> {
  const entries = new Map<string, { readonly run: () => Promise<T>; waiters: number }>();
  return (key) => {
    let entry = entries.get(key);
    if (entry === undefined) entries.set(key, (entry = { run: sharedRender(() => render(key), mode), waiters: 0 }));
    const mine = entry;
    mine.waiters++;
    const answer = mine.run();
    const done = (): void => {
      // No request waits on any run of this key: none is under way or waiting (each has at least one request).
      if (--mine.waiters === 0 && entries.get(key) === mine) entries.delete(key);
    };
    answer.then(done, done);
    return answer;
  };
}

/**
 * A read dropped at its turn because no client waits for it any more (concurrencyLimit's `wanted`): there is no one
 * to answer, so the handler sends nothing and logs nothing.
 */
export class ReadAbandonedError extends Error {
  constructor() {
    super('admin read abandoned: its client left');
    this.name = 'ReadAbandonedError';
  }
}

/**
 * At most `limit` of the calls given to it run at once; the others wait their turn, first come first served. For
 * admin reads that differ (each listing's own query, one user by id), which sharing cannot merge: they may take no
 * more than `limit` of a pool others wait on. A call whose `wanted` says no at its turn (its client left while it
 * waited) is not run but rejected with ReadAbandonedError, and the turn passes on: after a store outage the reads of
 * clients long gone each took the store up to its statement timeout, one pair after another, ahead of the reads of
 * clients still waiting, and each held its request in memory until then.
 */
export function concurrencyLimit(limit: number): <T>(work: () => Promise<T>, wanted?: () => boolean) => Promise<T> {
  let active = 0;
  const queue: (() => void)[] = [];
  return async <T>(work: () => Promise<T>, wanted?: () => boolean): Promise<T> => {
    if (active >= limit) await new Promise<void>((resolve) => queue.push(resolve));
    else active++;
    try {
      if (wanted !== undefined && !wanted()) throw new ReadAbandonedError();
      return await work();
    } finally {
      // The slot goes straight to the next caller waiting (active unchanged), else it is freed.
      const next = queue.shift();
      if (next !== undefined) next();
      else active--;
    }
  };
}
