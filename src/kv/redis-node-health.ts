// Which Redis Cluster nodes cannot take commands now, from node-redis's per-node connection events. A command for a
// failing node's slots fails at once instead of waiting on a connection that is not there.

/** A node as node-redis's cluster events name it. */
export interface NodeAddress {
  readonly host: string;
  readonly port: number;
}

const addressOf = (node: NodeAddress): string => `${node.host}:${node.port}`;

export class NodeHealth {
  /** Nodes whose last connection attempt failed (refused, timed out, closed) and that have not been ready since. */
  readonly #failed = new Set<string>();
  /**
   * When a connection that is not ready yet was accepted (performance.now(): a wall clock stepped back kept a frozen
   * node's connection "young" for as long as the step): a node that accepts and never answers is frozen.
   */
  readonly #connectingSince = new Map<string, number>();
  readonly #handshakeTimeoutMs: number;
  readonly #now: () => number;

  /**
   * `handshakeTimeoutMs`: how long an accepted connection may go unanswered before its node counts as failing.
   * `now`: the monotonic clock (a test passes its own; node:test's mock timers do not move performance.now()).
   */
  constructor(handshakeTimeoutMs: number, now: () => number = () => performance.now()) {
    this.#handshakeTimeoutMs = handshakeTimeoutMs;
    this.#now = now;
  }

  failed(node: NodeAddress): void {
    this.#failed.add(addressOf(node));
  }

  connecting(node: NodeAddress): void {
    const address = addressOf(node);
    if (!this.#connectingSince.has(address)) this.#connectingSince.set(address, this.#now());
  }

  ready(node: NodeAddress): void {
    const address = addressOf(node);
    this.#failed.delete(address);
    this.#connectingSince.delete(address);
  }

  /** True while no node is failing or waiting on an unanswered connection: no command needs a reachability check. */
  get quiet(): boolean {
    return this.#failed.size === 0 && this.#connectingSince.size === 0;
  }

  /** True when `address` ("host:port") failed its last attempt, or has left a connection unanswered too long. */
  failing(address: string): boolean {
    if (this.#failed.has(address)) return true;
    const since = this.#connectingSince.get(address);
    return since !== undefined && this.#now() - since > this.#handshakeTimeoutMs;
  }
}
